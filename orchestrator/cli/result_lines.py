"""What `orchestrator status` and `orchestrator why` say about a stored result: whether
the next run reuses it and, if not, which inputs changed or what failed (with the command
that reruns the failures); its age; the rows of a table, padded to columns."""
from __future__ import annotations

from pathlib import Path


def explain(state, root: Path | None = None) -> list[str]:
    """What `why` says: the answer first, then the changed inputs, or for a failed result
    its failures (the place to look, the exception) and, given `root`, a rerun command."""
    r, target = state.result, f"test:{state.module}"
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
