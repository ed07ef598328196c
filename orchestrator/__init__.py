"""A Bazel-style test orchestrator for progressive curricula, driven by graph.toml."""
