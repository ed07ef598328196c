"""The last run as CI reads it: GitHub annotations, a step-summary table, and (through
junit.py, imported only when asked for) the merged JUnit XML.

    after_run(root, statuses, blocked_by, junit=...)   the reporter, at the end of a doit run
    orchestrator report [--junit FILE] [--github]       later, from the store and last_run.json

Under GitHub Actions (GITHUB_ACTIONS=true) each failure becomes an `::error` workflow
command on stdout (file and line where known: the module source line the student wrote,
sourcemap.py) and a Markdown table is appended to the file named by
$GITHUB_STEP_SUMMARY: counts as tally.py words them, then the root causes and failures
(verdict.py). Every line comes from a stored result.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.cache.store import Result
from orchestrator.cache.tally import Tally
from orchestrator.core.state import StateDir
from orchestrator.report.run_targets import Target, gather
from orchestrator.report.run_targets import from_last_run as from_last_run  # `report` reads it
from orchestrator.report.status import RECORDED, State
from orchestrator.run import verdict

MAX_ANNOTATIONS_PER_TARGET = 10     # GitHub shows 10 errors per step anyway


# --- GitHub Actions ---------------------------------------------------------------------
def escape_data(value: str) -> str:
    """A workflow command's message (GitHub's documented escaping, as @actions/core)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A workflow command's property value: the message escaping plus ':' and ','."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties) -> str:
    """`::error file=app.js,line=1,title=T::message` (properties with no value are left out)."""
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items()
                     if v not in (None, ""))
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def github_annotations(targets: list[Target], prefix: str = "") -> list[str]:
    """One `::error` per failure of a failed target (file and line where known; `prefix`
    is the project's folder inside the repository), else one naming the target's reason."""
    lines = []
    for target in targets:
        if target.status is not State.FAILED:
            continue
        result = target.result
        if result is None:
            lines.append(workflow_command("error", "no stored result of this run (see the "
                                          "doit output)", title=f"FAILED {target.module}"))
            continue
        failures = verdict.failures(result)[:MAX_ANNOTATIONS_PER_TARGET]
        for failure in failures:
            path, _, line = failure.where.rpartition(":")
            path = path or failure.nodeid.split("::")[0]
            lines.append(workflow_command(
                "error", "\n".join([failure.message, *failure.trail]),
                file=prefix + path if path.endswith(".py") else None,
                line=line or None,
                title=f"FAILED {target.module}: {failure.nodeid}"))
        if not failures:
            lines.append(workflow_command("error", result.reason,
                                          title=f"FAILED {target.module}"))
    return lines


def repository_prefix(root: Path, env: Mapping[str, str]) -> str:
    """'' or 'sub/dir/': the project's place inside $GITHUB_WORKSPACE, which annotation
    paths are relative to."""
    workspace = env.get("GITHUB_WORKSPACE")
    if not workspace:
        return ""
    try:
        inside = Path(root).resolve().relative_to(Path(workspace).resolve()).as_posix()
    except ValueError:
        return ""
    return "" if inside == "." else inside + "/"


def summary_markdown(targets: list[Target]) -> str:
    """The run as a Markdown table (module, status, tests, duration), then its failures."""
    counts = {s: sum(1 for t in targets if t.status is s) for s in RECORDED}
    executed = counts[State.PASSED] + counts[State.FAILED]
    lines = [f"### Executed {executed} out of {len(targets)} test targets: "
             f"{counts[State.PASSED]} passed, {counts[State.FAILED]} failed, "
             f"{counts[State.BLOCKED]} blocked, {counts[State.CACHED]} cached", "",
             "| module | status | tests | duration |", "| --- | --- | --- | --- |"]
    failing = []
    for target in targets:
        lines.append("| " + " | ".join(md(cell) for cell in row(target)) + " |")
        if target.status is State.FAILED and target.result is not None:
            failing += [(target.module, f) for f in verdict.failures(target.result)]
    causes = verdict.root_causes({t.module: t.blocked_by for t in targets
                                  if t.status is State.BLOCKED},
                                 {t.module for t in targets if t.status is State.FAILED},
                                 {t.module: t.result for t in targets})
    if causes:
        lines += ["", f"**Root causes**: {md(causes)}"]
    if failing:
        lines += ["", "**Failures**", ""]
        for module, failure in failing[:MAX_ANNOTATIONS_PER_TARGET * 5]:
            lines.append(f"- {md(module)}: `{failure.nodeid.replace('`', '')}`"
                         + (f" ({md(failure.where)})" if failure.where else "")
                         + f": {md(failure.headline)}")
        if len(failing) > MAX_ANNOTATIONS_PER_TARGET * 5:
            lines.append(f"- ... and {len(failing) - MAX_ANNOTATIONS_PER_TARGET * 5} more")
    return "\n".join(lines) + "\n"


def row(target: Target) -> tuple[str, str, str, str]:
    r = target.result
    if target.status is State.BLOCKED:
        by = ", ".join(target.blocked_by) or "a failed dependency"
        return target.module, f"BLOCKED (by {by})", "-", "-"
    if r is None:
        return target.module, target.status.upper(), "no stored result", "-"
    if target.status is State.FAILED:
        return target.module, "FAILED", r.reason, f"{r.duration:.1f}s"
    tests = Tally.of(r).phrase(reasons=True)
    if target.status is State.CACHED:
        return target.module, "(cached) PASSED", tests, f"0s (reused a {r.duration:.1f}s run)"
    status = f"FLAKY ({len(r.flaky)} passed on a retry)" if r.flaky else "PASSED"
    return target.module, status, tests, f"{r.duration:.1f}s"


def md(value: str) -> str:
    """Text for a Markdown table cell: no HTML, no column breaks, one line."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(value.replace("|", "\\|").split())


def github(targets: list[Target], root: Path, env: Mapping[str, str],
           write: Callable[[str], object]) -> str:
    """Annotations through `write`; the table appended to $GITHUB_STEP_SUMMARY.
    Returns '' or the one-line problem with the summary file."""
    for line in github_annotations(targets, repository_prefix(root, env)):
        write(line + "\n")
    summary = env.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return "GITHUB_STEP_SUMMARY is not set: no step summary written"
    try:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(summary_markdown(targets) + "\n")
    except OSError as e:
        return f"cannot append the step summary to {summary}: {e.strerror}"
    return ""


# --- the end of a doit run -----------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A report after_run could not make. `refused`: one the user asked for (junit=FILE),
    so the run fails with exit 3; otherwise a warning (GitHub's step summary)."""
    message: str
    refused: bool = False

    def __str__(self) -> str:
        return self.message


def after_run(root: Path, statuses: Mapping[str, State | str],
              blocked_by: Mapping[str, list[str]],
              junit: str | Path | None = None,
              results: Mapping[str, Result | None] | None = None,
              env: Mapping[str, str] | None = None,
              write: Callable[[str], object] | None = None) -> list[Problem]:
    """What a doit run does at its end: the JUnit XML to `junit` (relative to `root`; its
    folder is created, as pytest's --junitxml does) if asked, and under GitHub Actions the
    annotations (through `write`) and the step summary. Never raises for a file it cannot
    write: returns the problems."""
    env = os.environ if env is None else env
    if not junit and env.get("GITHUB_ACTIONS") != "true":
        return []          # nothing asked for: a no-op run reads no stored result for it
    write = write or sys.stdout.write
    targets = gather(Path(root), statuses, blocked_by, results=results)
    problems = []
    if junit:
        problem = write_junit_report(Path(root) / junit, targets)
        StateDir(Path(root)).record_written(Path(root) / junit)
        if problem:
            problems.append(Problem(f"cannot write the JUnit report {junit}: {problem}", True))
    if env.get("GITHUB_ACTIONS") == "true":
        problem = github(targets, Path(root), env, write)
        if problem:
            problems.append(Problem(problem))
    return problems


def write_junit_report(path: Path, targets: list[Target]) -> str:
    """Write the JUnit XML to `path`, creating its folder; '' or what went wrong."""
    # imported here, not at the top: every doit run ends in after_run, and the XML
    # library is needed only when a JUnit report was asked for
    from orchestrator.report.junit import write_junit
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_junit(path, targets)
    except (FileExistsError, NotADirectoryError) as e:
        blocking = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()),
                        None)
        return (f"{blocking.name} is a file, not a folder" if blocking
                else e.strerror or str(e))
    except OSError as e:
        return e.strerror or str(e)
    return ""
