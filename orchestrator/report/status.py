"""The state of every test target now, from stored results, the last run and current keys.

  passed     last result passed, ran in the last run, inputs unchanged
  cached     last result passed, reused in the last run, inputs unchanged
  failed     last result failed: tests failed, or pytest left some not run (-x,
             --maxfail, an interrupt), or another Cause (failed results are never reused)
  blocked    not run in the last run because something it builds on failed
  never run  no result stored
  stale      last result passed but its inputs changed since: the next run re-runs it

"Last" is the result the last run used (the most recently written or reused one, with
the pytest arguments that run had, which last_run.json keeps), so `why` and `status`
agree with the line the run printed: a `(cached) PASSED` that reused an older pass is
that pass, not the failure stored between them.

State is the one owner of these words: the reporter settles each target of a run in one,
last_run.json keeps them (their values, so an older file still loads), and every view
reads them from here.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from orchestrator.cache import keys
from orchestrator.cache.store import Result, Store
from orchestrator.core.files import atomic_write
from orchestrator.core.graph import ModuleGraph
from orchestrator.core.state import StateDir


class State(StrEnum):
    """A test target's state (see the module docstring). A StrEnum: its str() and format()
    are the word itself, as `status`, `why`, the graph and last_run.json show it."""
    PASSED = "passed"
    CACHED = "cached"
    FAILED = "failed"
    BLOCKED = "blocked"
    NEVER_RUN = "never run"
    STALE = "stale"

    @property
    def reusable(self) -> bool:
        """The next run reuses the target's result."""
        return self in (State.PASSED, State.CACHED)


# What a run settles a target in, and last_run.json records: never run and stale are
# judged later, from the store and the keys.
RECORDED = (State.PASSED, State.CACHED, State.FAILED, State.BLOCKED)


@dataclass
class TargetState:
    module: str
    state: State
    result: Result | None            # the result the next run reuses, else the latest
    changes: list[tuple[str, str]] = field(default_factory=list)  # since the last pass
    ever_passed: bool = False

    @property
    def reusable(self) -> bool:
        return self.state.reusable


def last_run_path(root: Path) -> Path:
    return StateDir(root).last_run


def record_run(root: Path, statuses: Mapping[str, State], pytest_args=()) -> None:
    """Merge the statuses of the run that just finished, and the pytest arguments it ran
    them with, into last_run.json (each state as its word)."""
    path = last_run_path(root)
    data = _last_run(root)
    targets = {m: State(s).value for m, s in {**load_last_run(root), **statuses}.items()}
    args = {**data.get("pytest_args", {}), **{m: list(pytest_args) for m in statuses}}
    atomic_write(path, json.dumps({"finished": time.time(), "targets": targets,
                                   "pytest_args": args}, indent=1))


def _last_run(root: Path) -> dict:
    try:
        data = json.loads(last_run_path(root).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_last_run(root: Path) -> dict[str, State]:
    """{module: its state in the last run that reached it}; a word that names no state a
    run records is left out, as if that run had not reached the module."""
    targets = _last_run(root).get("targets")
    if not isinstance(targets, dict):
        return {}
    return {m: State(s) for m, s in targets.items() if s in RECORDED}


def last_pytest_args(root: Path, module_id: str) -> list[str]:
    """The pytest arguments of the last run that reached the module ([]: none, or unknown)."""
    args = _last_run(root).get("pytest_args")
    found = args.get(module_id) if isinstance(args, dict) else None
    return found if isinstance(found, list) and all(isinstance(a, str) for a in found) else []


def target_state(graph: ModuleGraph, module_id: str, pytest_args=None,
                 last_run: Mapping[str, State] | None = None) -> TargetState:
    """What the next run with `pytest_args` (None: those of the last run that reached the
    module) will do with the target, and why."""
    last_run = load_last_run(graph.root) if last_run is None else last_run
    if pytest_args is None:
        pytest_args = last_pytest_args(graph.root, module_id)
    store = Store(graph.root, repair=False)
    latest = next(store.recently_used(module_id), None)    # what the last run used
    ran_as = last_run.get(module_id)
    if latest is None:
        return TargetState(module_id,
                           State.BLOCKED if ran_as is State.BLOCKED else State.NEVER_RUN, None)
    results = store.results(module_id)
    declared = keys.declared(graph, graph[module_id], list(pytest_args), prospective=True)

    def now(result: Result) -> dict[str, str]:
        return keys.valued_now(graph, declared, result)

    hit = next((r for r in [latest, *results] if keys.is_hit(graph, declared, r)), None)
    last_pass = hit or (latest if latest.passed else None) or \
        next((r for r in results if r.passed), None)
    changes = keys.changes(last_pass.inputs, now(last_pass)) if last_pass else []
    if ran_as is State.BLOCKED:
        state = State.BLOCKED
    elif hit is not None:
        state = State.CACHED if ran_as is State.CACHED else State.PASSED
    elif not latest.passed:
        state = State.FAILED
    else:
        state = State.STALE
    return TargetState(module_id, state, hit or latest, changes, last_pass is not None)


def all_states(graph: ModuleGraph, pytest_args=None) -> dict[str, TargetState]:
    """Every target's state (pytest_args None: each with its last run's arguments)."""
    last_run = load_last_run(graph.root)
    return {m.id: target_state(graph, m.id, pytest_args, last_run) for m in graph}


def blockers(graph: ModuleGraph, states: dict[str, TargetState], module_id: str) -> list[str]:
    """Why `module_id` is blocked: the nearest failed modules upstream (blocked_by)."""
    return blocked_by(graph, module_id, lambda m: states[m].state)


def blocked_by(graph: ModuleGraph, module_id: str, state_of: Callable[[str], State | None],
               strict: bool | None = None) -> list[str]:
    """The nearest failed modules upstream of `module_id`, found by walking its test deps
    through blocked ones (a passed dep blocks nothing), in curriculum order. The one rule
    for what blocks a target: `status`, `why`, the graph page and CI reports ask it."""
    found, seen, todo = set(), set(), list(graph.test_deps(module_id, strict=strict))
    while todo:
        dep = todo.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if state_of(dep) is State.FAILED:
            found.add(dep)
        elif state_of(dep) is State.BLOCKED:
            todo.extend(graph.test_deps(dep, strict=strict))
    return sorted(found, key=lambda m: graph[m].index)


def forget(root: Path, module_id: str) -> int:
    """Drop every stored result of the module, so its next run runs its tests (unless a
    remote cache holds a pass for the same key); how many were removed."""
    folder = StateDir(root).results(module_id)
    removed = 0
    for path in folder.glob("*.json") if folder.is_dir() else []:
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def forgotten(module_id: str, removed: int) -> str:
    """What `orchestrator forget` and `doit forget` say of a module."""
    if not removed:
        return f"test:{module_id}: no stored result to forget"
    return (f"forgot test:{module_id}: {removed} stored result{'s' if removed != 1 else ''} "
            "removed; its next run runs its tests")
