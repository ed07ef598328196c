"""What `orchestrator status` and `orchestrator why` say about a stored result: whether
the next run reuses it (for a blocked target: what blocks it, then the same once that
passes) and, if not, which inputs changed or what failed (with the command that reruns
the failures); its age; the rows of a table, padded to columns."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:     # status.py and what it imports load only when `why` explains
    from orchestrator.report.status import TargetState


def explain(state: TargetState, root: Path | None = None,
            blocked_by: Sequence[str] = ()) -> list[str]:
    """What `why` says: the answer first, then the changed inputs, or for a failed result
    its failures (the place to look, the exception) and, given `root`, a rerun command.
    A blocked target says what blocks it (`blocked_by`: status.blockers), then what the
    next run does with it once that passes."""
    from orchestrator.report.status import State
    r, target = state.result, f"test:{state.module}"
    if state.state is State.BLOCKED:
        return blocked(state, root, blocked_by)
    if r is None:
        return [f"{target} will run: it has no stored result ({state.state})"]
    when = f"{age(r.finished)} ago, {r.duration:.1f}s"
    if state.reusable:
        return [f"{target} will reuse its result: passed {when}; none of its "
                f"{len(r.inputs)} inputs changed"]
    if r.passed and r.undeclared and not state.changes:
        return [f"{target} will re-run: its last pass ({when}) read what graph.toml rules "
                "out for it, so it is never reused:"] + \
            [f"  read     {u['file']}, but {u['why']}" for u in r.undeclared]
    if r.passed:
        head = (f"{target} will re-run: {len(state.changes)} input(s) changed since it passed "
                f"({when}):")
    else:
        head = (f"{target} will re-run: its last run failed ({r.reason}, {when}); failed runs "
                "are never reused")
        if state.changes:
            head += f". Changed since the last pass: {len(state.changes)}"
        elif not state.ever_passed:
            head += ". It never passed"
    lines = [head] + [f"  {kind:8} {name}" for name, kind in state.changes]
    return lines + ([] if r.passed else failed_lines(r, root))


def blocked(state: TargetState, root: Path | None, by: Sequence[str]) -> list[str]:
    """`why` of a target the last run blocked: the failed modules upstream that block it
    (`by`; none when they no longer fail), then `why` of the target as if unblocked."""
    from orchestrator.report.status import State
    r, target = state.result, f"test:{state.module}"
    if r is None:
        lines = [f"{target} will run: it has no stored result"]
    else:
        # a current pass (the result the next run would reuse) is the one with no changes
        # and no undeclared read; else a pass since changed, or a failure, is re-run
        current = r.passed and not r.undeclared and not state.changes
        unblocked = State.PASSED if current else State.STALE if r.passed else State.FAILED
        lines = explain(replace(state, state=unblocked), root)
    if by:
        lines[0] = (f"{target} is blocked: {', '.join(by)} failed. Once "
                    f"{'it passes' if len(by) == 1 else 'they pass'}, {lines[0]}")
    else:
        lines[0] = (f"{target} was blocked in the last run; nothing it builds on has a "
                    f"failed result now: {lines[0]}")
    return lines


def failed_lines(result, root: Path | None, limit: int = 5) -> list[str]:
    """`why`'s lines for a failed result: each failure (its test, where, the exception)
    and a rerun command for them all."""
    from orchestrator.run import verdict
    found = verdict.failures(result)
    lines = [f"  failed   {f.nodeid}" + (f" at {f.where}" if f.where else "") +
             f": {f.headline}" for f in found[:limit]]
    if len(found) > limit:
        lines.append(f"  ...      and {len(found) - limit} more")
    if found and root is not None:
        lines.append("  rerun    " + verdict.rerun_command(
            root, [f.nodeid for f in found[:limit]], verdict.pytest_args_of(result)))
    return lines


def age(timestamp: float) -> str:
    import time
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
