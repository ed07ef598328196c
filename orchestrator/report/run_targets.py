"""The targets of a run as its reports read them: what happened to each and the stored
result that says so, gathered once for ci_report.py (annotations, the step summary) and
junit.py (the XML), which both build on it and on nothing of each other's."""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.cache.store import Result, Store
from orchestrator.report.status import RECORDED, State, load_last_run
from orchestrator.report.status import blocked_by as nearest_failed
from orchestrator.run import verdict


@dataclass
class Target:
    """One test target of the run: what happened to it and the result that says so."""
    module: str
    status: State                    # one of status.RECORDED: passed, cached, failed, blocked
    result: Result | None            # None: blocked, or no stored result was found
    blocked_by: list[str] = field(default_factory=list)


# --- gathering ------------------------------------------------------------------------
def gather(root: Path, statuses: Mapping[str, State | str],
           blocked_by: Mapping[str, list[str]], order: list[str] | None = None,
           results: Mapping[str, Result | None] | None = None) -> list[Target]:
    """The run's targets, in `order` (default: by module number), each with its result.
    `results` overrides the lookup (the reporter's cache hits); a state no run records
    (status.RECORDED) is left out. A state may be given as its word (last_run.json's)."""
    store = Store(root, repair=False)
    results = results or {}
    known = {m: State(s) for m, s in statuses.items() if s in RECORDED}
    rank = {m: i for i, m in enumerate(order or [])}
    targets = []
    for module in sorted(known, key=lambda m: (rank.get(m, len(rank)), number(m), m)):
        status = known[module]
        result = None
        if status is not State.BLOCKED:
            result = results.get(module) or result_of(store, module, status)
        targets.append(Target(module, status, result, list(blocked_by.get(module, []))))
    return targets


def result_of(store: Store, module: str, status: State) -> Result | None:
    """The stored result the run's status speaks of: a failure is the newest failed
    result; a pass the newest passing one; a cache hit the passing one the run last
    reused (Store.lookup touches it, so its file is the most recently used)."""
    if status is State.CACHED:
        return next((r for r in store.recently_used(module) if r.passed), None)
    found = store.results(module)
    if status is State.FAILED:
        return next((r for r in found if not r.passed), None)
    return next((r for r in found if r.passed), None)


def number(module: str) -> int:
    match = re.match(r"\d+", module)
    return int(match.group()) if match else sys.maxsize


def from_last_run(graph) -> list[Target]:
    """The targets recorded in last_run.json, in curriculum order; a blocked target is
    blocked by the failed targets it waits for."""
    statuses = {m: s for m, s in load_last_run(graph.root).items() if m in graph.modules}
    blocked_by = {m: blockers(graph, m, statuses) for m, s in statuses.items()
                  if s is State.BLOCKED}
    return gather(graph.root, statuses, blocked_by, order=list(graph.modules))


def blockers(graph, module: str, statuses: Mapping[str, State]) -> list[str]:
    """The failed targets `module` waited for in the last run (status.blocked_by), by its
    declared deps or, when the run was in strict order, by every earlier module:
    last_run.json keeps statuses, not what blocked whom."""
    for strict in (None, True):
        failed = nearest_failed(graph, module, statuses.get, strict=strict)
        if failed:
            return failed
    return []


# --- a failure's place and first line (the summary, and junit.py) ---------------------
def location(entry: Mapping) -> str:
    """'path:line' where the failure was raised, or ''."""
    if entry.get("path") and entry.get("line") is not None:
        return f"{entry['path']}:{entry['line']}"
    return ""


def first_line(message: str) -> str:
    """The headline of a stored failure message: its type and first words, never a bare
    'AssertionError: ' (verdict.summarize)."""
    return verdict.headline(verdict.summarize(message))[:500]
