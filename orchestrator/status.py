"""The state of every test target now, from stored results, the last run and current keys.

  passed     last result passed, ran in the last run, inputs unchanged
  cached     last result passed, reused in the last run, inputs unchanged
  failed     last result failed: tests failed, or pytest left some not run (-x,
             --maxfail, an interrupt), or another Cause (failed results are never reused)
  blocked    not run in the last run because something it builds on failed
  never run  no result stored
  stale      last result passed but its inputs changed since: the next run re-runs it
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import keys
from .files import atomic_write
from .graph import ModuleGraph
from .state import StateDir
from .store import Result, Store

STATES = ("passed", "cached", "failed", "blocked", "never run", "stale")


@dataclass
class TargetState:
    module: str
    state: str
    result: Result | None            # the result the next run reuses, else the latest
    changes: list[tuple[str, str]] = field(default_factory=list)  # since the last pass
    ever_passed: bool = False

    @property
    def reusable(self) -> bool:
        return self.state in ("passed", "cached")


def last_run_path(root: Path) -> Path:
    return StateDir(root).last_run


def record_run(root: Path, statuses: dict[str, str]) -> None:
    """Merge the statuses of the run that just finished into last_run.json."""
    path = last_run_path(root)
    merged = {**load_last_run(root), **statuses}
    atomic_write(path, json.dumps({"finished": time.time(), "targets": merged}, indent=1))


def load_last_run(root: Path) -> dict[str, str]:
    try:
        return json.loads(last_run_path(root).read_text(encoding="utf-8"))["targets"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}


def target_state(graph: ModuleGraph, module_id: str, pytest_args=(),
                 last_run: dict[str, str] | None = None) -> TargetState:
    """What the next run with `pytest_args` will do with the target, and why."""
    last_run = load_last_run(graph.root) if last_run is None else last_run
    results = Store(graph.root, repair=False).results(module_id)
    ran_as = last_run.get(module_id)
    if not results:
        return TargetState(module_id, "blocked" if ran_as == "blocked" else "never run", None)
    declared = keys.declared(graph, graph[module_id], list(pytest_args), prospective=True)

    def now(result: Result) -> dict[str, str]:
        return {**declared, **keys.current(graph, result.observed)}

    hit = next((r for r in results if r.reusable and keys.digest(now(r)) == r.key), None)
    last_pass = hit or next((r for r in results if r.passed), None)
    changes = keys.changes(last_pass.inputs, now(last_pass)) if last_pass else []
    if ran_as == "blocked":
        state = "blocked"
    elif hit is not None:
        state = "cached" if ran_as == "cached" else "passed"
    elif not results[0].passed:
        state = "failed"
    else:
        state = "stale"
    return TargetState(module_id, state, hit or results[0], changes, last_pass is not None)


def all_states(graph: ModuleGraph, pytest_args=()) -> dict[str, TargetState]:
    last_run = load_last_run(graph.root)
    return {m.id: target_state(graph, m.id, pytest_args, last_run) for m in graph}
