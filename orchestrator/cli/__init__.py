"""The `orchestrator` command line and `orchestrator watch`."""
