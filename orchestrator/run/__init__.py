"""One module's pytest run: launching, the warm server, the reaper, observation, the plugin
inside pytest."""
