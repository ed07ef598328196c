"""The course and its project on disk: graph.toml, exports, the tree, files, digests,
the state dir."""
