"""Longest remaining path first: the order in which doit should pick ready test targets.

A module's priority is its own recorded duration plus the longest chain of
dependents still to run after it. With two workers, starting the long chain
(tensor -> autograd -> attention -> transformer -> ...) early and filling the other
worker with short independent branches keeps the run close to its critical path.
"""
from __future__ import annotations

from . import store
from .graph import ModuleGraph

UNKNOWN_DURATION = 1.0   # never run: assume a small module


def durations(graph: ModuleGraph) -> dict[str, float]:
    found = {}
    for module in graph:
        result = store.load(graph.root, module.id)
        found[module.id] = result.duration if result else UNKNOWN_DURATION
    return found


def remaining_path(graph: ModuleGraph, took: dict[str, float], strict: bool) -> dict[str, float]:
    """{module: its duration + the longest path of test targets waiting on it}."""
    waiting_on: dict[str, list[str]] = {m.id: [] for m in graph}
    for module in graph:
        for dep in graph.test_deps(module.id, strict=strict):
            waiting_on[dep].append(module.id)
    path: dict[str, float] = {}
    for module in reversed(list(graph)):          # dependents come later in the file
        after = max((path[d] for d in waiting_on[module.id]), default=0.0)
        path[module.id] = took[module.id] + after
    return path


