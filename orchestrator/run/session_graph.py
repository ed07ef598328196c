"""The project's graph, loaded once per pytest process, and once per warm server.

Inside one module's pytest run several hooks ask for it (the plugin's export and report,
the closure guard's two hooks); on a course of a hundred modules each load is ~5 ms of
a child whose whole run is ~0.06 s. The warm server loads it before it forks a child
(`warm`), so a child inherits it instead of parsing graph.toml again.

A loaded graph is reused only while graph.toml is the same file, unchanged (inode, size,
modification and change times): a graph.toml edited during a run is read again by the
next child, as a fresh `pytest` would read it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.core.graph import GRAPH_FILE, GraphError, ModuleGraph, load

Signature = tuple[int, int, int, int]
_LOADED: dict[Path, tuple[Signature, ModuleGraph | GraphError]] = {}


def graph_of(root: Path) -> ModuleGraph | None:
    """The graph at `root`, or None when `root` has no graph.toml (a plain project);
    raises GraphError (every time it is asked) when graph.toml is bad."""
    found = _current(root)
    if isinstance(found, GraphError):
        raise found
    return found


def warm(root: Path) -> None:
    """Load the graph at `root` now, if there is one, so that what forks later has it."""
    _current(root)


def _current(root: Path) -> ModuleGraph | GraphError | None:
    signature = _signature(root / GRAPH_FILE)
    if signature is None:
        _LOADED.pop(root, None)
        return None
    known = _LOADED.get(root)
    if known is None or known[0] != signature:
        try:
            known = (signature, load(root))
        except GraphError as e:
            known = (signature, e)
        _LOADED[root] = known
    return known[1]


def _signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
