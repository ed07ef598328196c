"""Longest remaining path first: the order in which doit should pick ready test targets.

A module's priority is its own recorded duration plus the longest chain of
dependents still to run after it. With two workers, starting the long chain
(tensor -> autograd -> attention -> transformer -> ...) early and filling the other
worker with short independent branches keeps the run close to its critical path.
"""
from __future__ import annotations

from orchestrator.cache.store import Store
from orchestrator.core.graph import ModuleGraph


def durations(graph: ModuleGraph) -> dict[str, float]:
    """Recorded durations; a module never run is guessed from its declared size."""
    found, store = {}, Store(graph.root, repair=False)
    for module in graph:      # the most recently used result: the one a no-op reads anyway
        result = next(store.recently_used(module.id), None)
        found[module.id] = result.duration if result else guess(module)
    return found


def guess(module) -> float:
    """A module never run: its size class, scaled like the timeouts (small 1, medium 5,
    large 15). Only the order of the guesses matters, and a fresh clone has nothing
    better: without them every module looks alike and ties go to curriculum order,
    which starts short side branches before the long chain."""
    return module.timeout / 60


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


