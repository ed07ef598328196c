"""The project's graph, loaded once per pytest process.

Inside one module's pytest run several hooks ask for it (the plugin's export and report,
the closure guard's two hooks); on a course of a hundred modules each load is ~15 ms of
a child whose whole run is ~0.1 s. A pytest process is short-lived and graph.toml does
not change under a run that started from it, so the first load serves the process."""
from __future__ import annotations

from pathlib import Path

from orchestrator.core.graph import GraphError, ModuleGraph, load

_LOADED: dict[Path, ModuleGraph | GraphError] = {}


def graph_of(root: Path) -> ModuleGraph | None:
    """The graph at `root`, or None when `root` has no graph.toml (a plain project);
    raises GraphError (every time it is asked) when graph.toml is bad."""
    if root not in _LOADED:
        if not (root / "graph.toml").is_file():
            return None
        try:
            _LOADED[root] = load(root)
        except GraphError as e:
            _LOADED[root] = e
    found = _LOADED[root]
    if isinstance(found, GraphError):
        raise found
    return found
