"""Longest remaining path first: the order in which doit should pick ready test targets.

A module's priority is its own recorded duration plus the longest chain of
dependents still to run after it. With two workers, starting the long chain
(tensor -> autograd -> attention -> transformer -> ...) early and filling the other
worker with short independent branches keeps the run close to its critical path.

A target that starts when every other one of the run has ended or waits on it runs
alone (runs_alone, from the targets Progress saw end): the machine is its own, and the
xdist policy may give it every core (runner.xdist_workers). `simulate` plays a run out
from durations, for the benchmark's count of the modules that policy would choose.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable

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


Priority = tuple[float, float]


def priorities(graph: ModuleGraph, took: dict[str, float], strict: bool) -> dict[str, Priority]:
    """{module: (its remaining path, the part of that path after it)}: the dispatch order,
    highest first. Between equal paths the module with more waiting behind it starts first:
    a short module whose dependents carry the path before a long one that ends it. Equal
    paths are common on a fresh clone, where durations are guesses by size class: TinyTorch
    cold, 09_spatial (medium, ending its chain) and 11_embeddings (small, before 13 and 17)
    tie at 26, and starting 09 first held the critical path back 1.6 s."""
    path = remaining_path(graph, took, strict)
    return {m: (p, p - took[m]) for m, p in path.items()}


def dispatch_order(graph: ModuleGraph, priority: dict[str, Priority]):
    """The sort key of modules in dispatch order: highest priority first, then curriculum
    order (what the run command's ready queue does, doit_run.PriorityReady)."""
    return lambda m: (-priority[m][0], -priority[m][1], graph[m].index)


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




def beside(graph: ModuleGraph, module_id: str, considered: Iterable[str],
           finished: set[str], failed: set[str], strict: bool) -> list[str]:
    """The targets of the run that may still run while `module_id`'s, starting now, does:
    those the run considers that have not finished (passed, failed, cached), are not
    blocked by a failure and do not wait, directly or not, on this one."""
    done = set(finished) | {module_id}
    for failure in failed:
        done.update(graph.waiting_on(failure, strict))
    done.update(graph.waiting_on(module_id, strict))
    return [m for m in considered if m not in done]


def runs_alone(graph: ModuleGraph, module_id: str, considered: Iterable[str],
               finished: set[str], failed: set[str], strict: bool) -> bool:
    """Whether `module_id`'s test target, starting now, has the machine to itself: nothing
    can start beside it until it ends (the tail of a run: the last long module, its deps
    all done)."""
    return not beside(graph, module_id, considered, finished, failed, strict)


class Progress:
    """Which test targets of a run have finished, as the campaign sees them end (doit's
    threads call in): what `runs_alone` needs when a target starts. Until told otherwise
    (`consider`) a run considers every module; a target whose end the campaign never sees
    (a task that crashed in doit) counts unfinished, so a module then never runs alone:
    the safe side, plain pytest."""

    def __init__(self, graph: ModuleGraph, strict: bool):
        self.graph, self.strict = graph, strict
        self.considered: list[str] = list(graph.modules)
        self.finished: set[str] = set()
        self.failed: set[str] = set()
        self._lock = threading.Lock()

    def consider(self, module_ids: Iterable[str]) -> None:
        """The run's test targets: the selected ones and every one they depend on."""
        with self._lock:
            self.considered = [m for m in module_ids if m in self.graph.modules]

    def finish(self, module_id: str, failed: bool = False) -> None:
        """A target ended: passed, cached, failed (its dependents are then blocked), or
        never to run (its export failed: failed too)."""
        with self._lock:
            self.finished.add(module_id)
            if failed:
                self.failed.add(module_id)

    def beside(self, module_id: str) -> list[str]:
        with self._lock:
            return beside(self.graph, module_id, self.considered, set(self.finished),
                          set(self.failed), self.strict)

    def alone(self, module_id: str) -> bool:
        return not self.beside(module_id)


def simulate(graph: ModuleGraph, took: dict[str, float], workers: int,
             strict: bool = False) -> dict[str, bool]:
    """A cold run of every test target played out on `workers` workers from durations
    alone, dispatched as the run command does (`priorities`, then curriculum order):
    {module: whether it runs alone}, in the order they start. For the benchmark, which
    asks how many modules the xdist policy would give workers."""
    priority = priorities(graph, took, strict)
    deps = {m.id: set(graph.test_deps(m.id, strict=strict)) for m in graph}
    finished: set[str] = set()
    running: list[tuple[float, str]] = []         # (end, module)
    started: dict[str, bool] = {}
    now = 0.0
    while len(finished) < len(deps):
        ready = sorted((m for m in deps if m not in started and deps[m] <= finished),
                       key=dispatch_order(graph, priority))
        for module_id in ready[:max(workers, 1) - len(running)]:
            started[module_id] = runs_alone(graph, module_id, list(deps), finished, set(),
                                            strict)
            running.append((now + took[module_id], module_id))
        running.sort()
        now = running[0][0]
        while running and running[0][0] <= now:
            finished.add(running.pop(0)[1])
    return started
