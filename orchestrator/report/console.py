"""A doit reporter that speaks in test targets, like Bazel's test summary.

One line per test target as it finishes, its counts from tally.py:
  PASSED 03_layers (48 tests) in 1.2s
  PASSED 01_tensor (454 tests: 210 passed, 244 skipped) in 3.8s
      244 skipped: PyTorch not installed                (skipped tests, by reason)
  PASSED 01_tensor (22 of 199 selected) in 0.4s       (a -k/-m run: only what it selected)
  (cached) PASSED 01_tensor (31 tests)
  FAILED 04_losses: 2 of 31 failed            (then each failure, verdict.py: its test,
                                               the source line, the exception, a rerun)
  FAILED 04_losses: 1 failed, 30 not run (-x) (tests pytest stopped before: no rerun line)
  FAILED 04_losses: 29 of 31 not run (interrupted)     (fail closed: all that ran passed)
  BLOCKED 05_autograd (by 04_losses)
and a summary: `Executed k out of N test targets: p passed, f failed, b blocked, c cached`,
when failures blocked others the few causes (`1 failing module blocks 16 others: 02_...
(tests/02_.../test_x.py: 1 test)`), then the exit code and what it means
(run_context.Exit). An interrupted run ends with `INTERRUPTED after k of N test targets;
finished results kept`; bad input (pytest's arguments, an unwritable state dir, a JUnit
report that cannot be written) with one line naming it.
Every line comes from the stored result of the target, never from assumption.
Each target settles in a status.State (or Unrecorded: ignored, refused); what went wrong
is a Trouble, and EXIT_OF is the one place a Trouble becomes an exit code.
"""
from __future__ import annotations

import os
import sys
import threading
from enum import Enum
from pathlib import Path

from doit.exceptions import TaskFailed, UnmetDependency

from orchestrator.cache.store import Store
from orchestrator.cache.tally import Tally
from orchestrator.report import ci_report, progress, run_context, status
from orchestrator.report.run_context import Exit
from orchestrator.report.status import State
from orchestrator.run import reaper, verdict

MAX_FAILURES_SHOWN = 10
DETAILED = 3          # failures shown with their message's detail lines and call trail


class Unrecorded(Enum):
    """What the reporter says of a target no run records (last_run.json keeps State only)."""
    IGNORED = "ignored"     # `doit ignore`d
    REFUSED = "refused"     # stopped by the run's bad input


class Trouble(Enum):
    """What went wrong in a run, as the reporter saw it; EXIT_OF gives each its exit code."""
    FAILED = "failed"         # a task failed (TaskFailed): a test target, an export
    BLOCKED = "blocked"       # a test target was blocked by a failure
    ERROR = "error"           # the orchestrator could not run a task (an action crashed)
    BAD_INPUT = "bad input"   # pytest's arguments, an unwritable state dir (RunContext.refuse)
    REPORT = "report"         # the report asked for (junit=FILE) could not be written


# The one place a trouble becomes an exit code; the worst of a run's decides (WORST_FIRST).
EXIT_OF = {Trouble.FAILED: Exit.FAILED, Trouble.BLOCKED: Exit.FAILED, Trouble.ERROR: Exit.ERROR,
           Trouble.BAD_INPUT: Exit.BAD_INPUT, Trouble.REPORT: Exit.BAD_INPUT}
WORST_FIRST = (Exit.INTERRUPTED, Exit.BAD_INPUT, Exit.ERROR, Exit.FAILED)
EXIT_MEANINGS = {Exit.OK: "every requested target passed",
                 Exit.FAILED: "a target failed, or was blocked by a failure",
                 Exit.ERROR: "the orchestrator could not run a target (see above)",
                 Exit.BAD_INPUT: "bad input (see above); nothing was recorded for it",
                 Exit.INTERRUPTED: "interrupted"}


def target_of(task) -> str | None:
    """'test:03_layers' -> '03_layers'; None for other tasks."""
    basename, _, name = task.name.partition(":")
    return name if basename == "test" and name else None


class Reporter:
    desc = "test-target summary (orchestrator)"

    def __init__(self, outstream, options):
        self.out = outstream
        # the campaign dodo.py made, given by the run command (doit_run.py); None under
        # doit's own `run`
        self.campaign = (options or {}).get("campaign")
        self.progress: progress.Progress | None = None  # made when the targets are known
        self.root = self.campaign.root if self.campaign is not None else Path.cwd()
        self.store = Store(self.root)
        self.lock = threading.Lock()
        self.closed = False
        self.selected: list[str] = []
        self.status: dict[str, State | Unrecorded] = {}   # target -> how this run settled it
        self.blocked_by: dict[str, list[str]] = {}
        self.failed_tasks: set[str] = set()        # other than test targets: export:NN
        self.flaky = 0
        self.troubles: set[Trouble] = set()
        self.said_bad_input = False

    def write(self, text: str) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                if self.progress is not None:
                    self.progress.print(text)
                else:
                    self.out.write(text)
                self.out.flush()
            except BrokenPipeError:
                # `doit all | head`: the reader is gone. Stop writing, quietly, and point
                # stdout at /dev/null so the interpreter's final flush cannot complain.
                self.closed = True
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)

    def settle(self, target: str, state: State | Unrecorded) -> None:
        self.status[target] = state
        if state is State.BLOCKED:
            self.troubles.add(Trouble.BLOCKED)
        if self.progress is not None:
            self.progress.finished(target)

    @property
    def context(self):
        return run_context.CURRENT

    # --- doit's reporter interface -------------------------------------------------
    def initialize(self, tasks, selected_tasks):
        wanted = run_context.considered(tasks, selected_tasks)
        targets = (target_of(tasks[n]) for n in tasks if n in wanted)
        self.selected = [t for t in targets if t]
        if self.selected:
            self.progress = self.make_progress()

    def make_progress(self) -> progress.Progress:
        """The live line, estimating from the recorded durations of the selected targets
        only, and the order among them (a target's dependents outside the run cost
        nothing)."""
        campaign = self.campaign
        took: dict[str, float] = {}
        dependents: dict[str, list[str]] = {t: [] for t in self.selected}
        if campaign is not None:
            took = {t: d for t, d in campaign.durations().items() if t in dependents}
            for target in self.selected:
                for dep in campaign.graph.test_deps(target, strict=campaign.strict):
                    if dep in dependents:
                        dependents[dep].append(target)
        return progress.make(self.out, len(self.selected), took, dependents,
                             self.context.workers)

    def get_status(self, task):
        pass

    def execute_task(self, task):
        target = target_of(task)
        if target and self.progress is not None and not self.context.interrupted.is_set():
            self.progress.started(target)
            if self.progress.live is None:       # through write: a closed pipe stays quiet
                self.write(f"RUNNING {target}\n")

    def skip_uptodate(self, task):
        target = target_of(task)
        if target:
            self.settle(target, State.CACHED)
            campaign = self.campaign
            hit = (campaign.hits.get(target) if campaign else None) or self.store.latest(target)
            self.write(f"(cached) {self.passed_line(target, hit)}\n{skip_lines(hit)}")

    def skip_ignore(self, task):
        target = target_of(task)
        if target:
            self.settle(target, Unrecorded.IGNORED)
            self.write(f"IGNORED {target}\n")

    def add_success(self, task):
        target = target_of(task)
        if target and not self.context.interrupted.is_set():
            self.settle(target, State.PASSED)
            result = self.store.latest(target)
            if result is None:       # saved by the task, but unreadable or removed since
                self.write(f"{self.passed_line(target, None)}\n")
                return
            if result.flaky:
                self.flaky += 1
            self.write(f"{self.passed_line(target, result)} in {result.duration:.1f}s"
                       f"{leftovers(result)}\n{skip_lines(result)}")
            for nodeid in result.flaky:
                self.write(f"    flaky: {nodeid}\n")
            for read in result.undeclared:     # keys.undeclared_reads: kept, never reused
                self.write(f"    not cached: {target} read {read['file']}, but {read['why']}\n")

    @staticmethod
    def passed_line(target: str, result) -> str:
        if result is None:
            return f"PASSED {target}"
        if result.flaky:
            return (f"FLAKY {target} ({len(result.flaky)} of {len(result.tests)} tests "
                    "passed only on a retry)")
        return f"PASSED {target} ({Tally.of(result).phrase()})"

    def add_failure(self, task, fail):
        target = target_of(task)
        context = self.context
        if context.interrupted.is_set():
            return                        # the INTERRUPTED line says it all
        if context.bad_input and fail.message == context.bad_input:
            self.troubles.add(Trouble.BAD_INPUT)
            if target:
                self.settle(target, Unrecorded.REFUSED)
            if not self.said_bad_input:
                self.said_bad_input = True
                self.write(f"{context.bad_input}\n")
            return
        if isinstance(fail, UnmetDependency):
            return self._blocked(task, target)
        self.troubles.add(Trouble.FAILED if isinstance(fail, TaskFailed) else Trouble.ERROR)
        if target is None:
            self.failed_tasks.add(task.name)
            return self.write(f"FAILED {task.name}: {fail.message.strip() or fail.get_name()}\n")
        self.settle(target, State.FAILED)
        result = self.store.latest(target)
        if result is None or result.passed:  # the action itself crashed
            self.troubles.add(Trouble.ERROR)
            return self.write(f"FAILED {target}: {fail.get_msg().strip()}\n")
        campaign = self.campaign
        lines = [f"FAILED {target}: {result.reason} in {result.duration:.1f}s{leftovers(result)}"]
        lines += failure_lines(result, campaign.rerun_command if campaign else None)
        lines.append(f"    log: {result.log}")
        self.write("\n".join(lines) + "\n" + skip_lines(result))
        if campaign is not None:      # say now what this blocks; doit only skips them later
            for waiting in campaign.waiting_on(target):
                if waiting in self.selected and waiting not in self.status:
                    self.settle(waiting, State.BLOCKED)
                    self.blocked_by[waiting] = [target]
                    self.write(f"BLOCKED {waiting} (by {target})\n")

    def cleanup_error(self, exception):
        self.write(exception.get_msg())

    def runtime_error(self, msg):
        self.troubles.add(Trouble.ERROR)
        self.write(f"ERROR: {msg}\n")

    def teardown_task(self, task):
        pass

    def complete_run(self):
        if self.progress is not None:
            self.progress.stop()
        if not self.selected:
            return
        statuses = {t: s for t, s in self.status.items() if isinstance(s, State)}
        campaign = self.campaign
        try:   # with the run's pytest arguments: `why` speaks of the result this run used
            status.record_run(self.root, statuses, campaign.pytest_args if campaign else ())
        except OSError:
            pass     # the summary still says what happened; `status` may show older state
        for problem in ci_report.after_run(
                self.root, statuses, self.blocked_by,
                junit=campaign.options.junit if campaign else None,
                results=campaign.hits if campaign else None, write=self.write):
            if problem.refused:        # the report the user asked for is missing: say so
                self.troubles.add(Trouble.REPORT)
                self.write(f"{problem}\n")
            else:
                self.write(f"warning: {problem}\n")
        counts = {s: sum(1 for v in self.status.values() if v is s) for s in status.RECORDED}
        if self.context.interrupted.is_set():
            done = sum(counts.values())
            self.write(f"INTERRUPTED after {done} of {len(self.selected)} test targets; "
                       "finished results kept\n")
            return
        executed = counts[State.PASSED] + counts[State.FAILED]
        self.write(f"Executed {executed} out of {len(self.selected)} test targets: "
                   f"{counts[State.PASSED]} passed, {counts[State.FAILED]} failed, "
                   f"{counts[State.BLOCKED]} blocked, {counts[State.CACHED]} cached"
                   + (f" ({self.flaky} of the passed flaky)" if self.flaky else "") + "\n")
        failed = {t for t, s in self.status.items() if s is State.FAILED}
        causes = verdict.root_causes({t: self.blocked_by.get(t, []) for t, s
                                      in self.status.items() if s is State.BLOCKED}, failed,
                                     {t: self.store.latest(t) for t in failed})
        if causes:
            self.write(causes + "\n")
        code = self.exit_code()
        meaning = EXIT_MEANINGS[code]
        if code is Exit.BAD_INPUT and Trouble.BAD_INPUT not in self.troubles and \
                not self.context.bad_input:
            meaning = "bad input (see above): the results were stored, the report was not"
        self.write(f"exit code {int(code)}: {meaning}\n")

    def exit_code(self) -> Exit:
        """The one place doit's exit code is decided (the run command returns it)."""
        found = {EXIT_OF[trouble] for trouble in self.troubles}
        if self.context.bad_input:         # found by a task; the reporter may not have seen it
            found.add(Exit.BAD_INPUT)
        if self.context.interrupted.is_set():
            found.add(Exit.INTERRUPTED)
        return next((code for code in WORST_FIRST if code in found), Exit.OK)

    # --- helpers ------------------------------------------------------------------
    def _blocked(self, task, target):
        """doit skips a task whose task_dep failed: name the failures it waited on (a
        dependency that was itself blocked passes on what blocked it)."""
        if target is None or self.status.get(target) is State.BLOCKED:   # already said
            return
        causes = []
        for dep in task.task_dep:
            dep_target = dep.partition(":")[2] if dep.startswith("test:") else dep
            if self.status.get(dep_target) is State.FAILED or dep in self.failed_tasks:
                causes.append(dep_target)
            elif self.status.get(dep_target) is State.BLOCKED:
                causes += self.blocked_by.get(dep_target, [])
        causes = sorted(set(causes)) or ["a failed dependency"]
        self.settle(target, State.BLOCKED)
        self.blocked_by[target] = causes
        self.write(f"BLOCKED {target} (by {', '.join(causes)})\n")


def leftovers(result) -> str:
    return f"; {reaper.summary(result.leftovers)}" if result.leftovers else ""


def skip_lines(result) -> str:
    """'    244 skipped: PyTorch not installed' lines (ending in a newline), or ''."""
    if result is None:
        return ""
    return "".join(f"    {line}\n" for line in Tally.of(result).skip_lines())


def failure_lines(result, rerun=None) -> list[str]:
    """Each failure (at most MAX_FAILURES_SHOWN): its test, the place to look and the
    exception's first line; for the first DETAILED, the message's other lines and where
    it was called from or raised; and `rerun(nodeid)`'s command, when given."""
    lines = []
    found = verdict.failures(result)
    for i, failure in enumerate(found[:MAX_FAILURES_SHOWN]):
        where = f" ({failure.where})" if failure.where else ""
        lines.append(f"    {failure.nodeid}{where}: {failure.headline}")
        if i < DETAILED:
            lines += [f"        {line}" for line in failure.details + failure.trail]
        if rerun is not None:
            lines.append(f"      rerun: {rerun(failure.nodeid)}")
    if len(found) > MAX_FAILURES_SHOWN:
        lines.append(f"    ... and {len(found) - MAX_FAILURES_SHOWN} more")
    return lines
