"""A doit reporter that speaks in test targets, like Bazel's test summary.

One line per test target as it finishes:
  PASSED 03_layers (48 tests) in 1.2s
  (cached) PASSED 01_tensor (31 tests)
  FAILED 04_losses: 2 of 31 failed            (then the failing test ids)
  BLOCKED 05_autograd (by 04_losses)
and a summary: `Executed k out of N test targets: p passed, f failed, b blocked, c cached`,
then the exit code doit returns and what it means.
Every line comes from the stored result of the target, never from assumption.
"""
from __future__ import annotations

import threading
from pathlib import Path

from doit.exceptions import TaskFailed, UnmetDependency

from . import status, store

MAX_FAILURES_SHOWN = 10
EXIT_MEANINGS = {0: "every requested target passed", 1: "a target failed",
                 2: "a target was blocked by a failure, or an error occurred"}


def target_of(task) -> str | None:
    """'test:03_layers' -> '03_layers'; None for other tasks."""
    basename, _, name = task.name.partition(":")
    return name if basename == "test" and name else None


class Reporter:
    desc = "test-target summary (orchestrator)"

    def __init__(self, outstream, options):
        self.out = outstream
        self.root = Path.cwd()
        self.lock = threading.Lock()
        self.selected: list[str] = []
        self.status: dict[str, str] = {}           # target -> passed/failed/blocked/cached
        self.blocked_by: dict[str, list[str]] = {}
        self.flaky = 0
        self.kinds: set[str] = set()                 # "failed" (TaskFailed) / "error" (the rest)

    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()

    # --- doit's reporter interface -------------------------------------------------
    def initialize(self, tasks, selected_tasks):
        wanted, stack = set(), list(selected_tasks)
        while stack:
            name = stack.pop()
            if name in wanted or name not in tasks:
                continue
            wanted.add(name)
            stack.extend(tasks[name].task_dep)
        self.selected = [target_of(tasks[n]) for n in tasks if n in wanted and target_of(tasks[n])]

    def get_status(self, task):
        pass

    def execute_task(self, task):
        pass

    def skip_uptodate(self, task):
        target = target_of(task)
        if target:
            self.status[target] = "cached"
            result = store.load(self.root, target)
            tests = f" ({result.counts.get('passed', 0)} tests)" if result else ""
            self.write(f"(cached) PASSED {target}{tests}\n")

    def skip_ignore(self, task):
        target = target_of(task)
        if target:
            self.status[target] = "ignored"
            self.write(f"IGNORED {target}\n")

    def add_success(self, task):
        target = target_of(task)
        if target:
            self.status[target] = "passed"
            result = store.load(self.root, target)
            took = f"in {result.duration:.1f}s"
            if result.flaky:
                self.flaky += 1
                self.write(f"FLAKY {target} ({len(result.flaky)} of {len(result.tests)} tests "
                           f"passed only on a retry) {took}\n")
                for nodeid in result.flaky:
                    self.write(f"    flaky: {nodeid}\n")
            else:
                self.write(f"PASSED {target} ({result.counts.get('passed', 0)} tests) {took}\n")

    def add_failure(self, task, fail):
        target = target_of(task)
        self.kinds.add("failed" if isinstance(fail, TaskFailed) else "error")
        if isinstance(fail, UnmetDependency):
            return self._blocked(task, target, fail)
        if target is None:
            return self.write(f"FAILED {task.name}: {fail.message.strip() or fail.get_name()}\n")
        self.status[target] = "failed"
        result = store.load(self.root, target)
        if result is None or result.passed:  # the action itself crashed
            return self.write(f"FAILED {target}: {fail.get_msg().strip()}\n")
        lines = [f"FAILED {target}: {result.reason} in {result.duration:.1f}s"]
        for failure in result.failures[:MAX_FAILURES_SHOWN]:
            lines.append(f"    {failure['nodeid']}: {failure['message'].splitlines()[0][:200]}")
        if len(result.failures) > MAX_FAILURES_SHOWN:
            lines.append(f"    ... and {len(result.failures) - MAX_FAILURES_SHOWN} more")
        lines.append(f"    log: {result.log}")
        self.write("\n".join(lines) + "\n")

    def cleanup_error(self, exception):
        self.write(exception.get_msg())

    def runtime_error(self, msg):
        self.kinds.add("error")
        self.write(f"ERROR: {msg}\n")

    def teardown_task(self, task):
        pass

    def complete_run(self):
        if not self.selected:
            return
        status.record_run(self.root, {t: s for t, s in self.status.items() if s != "ignored"})
        counts = {s: sum(1 for v in self.status.values() if v == s)
                  for s in ("passed", "failed", "blocked", "cached")}
        executed = counts["passed"] + counts["failed"]
        self.write(f"Executed {executed} out of {len(self.selected)} test targets: "
                   f"{counts['passed']} passed, {counts['failed']} failed, "
                   f"{counts['blocked']} blocked, {counts['cached']} cached"
                   + (f" ({self.flaky} of the passed flaky)" if self.flaky else "") + "\n")
        self.write(f"exit code {self.exit_code()}: {EXIT_MEANINGS[self.exit_code()]}\n")

    def exit_code(self) -> int:
        """What doit will return, by its own rule: any task error (a blocked target is
        one) gives 2, else any failed task 1, else 0."""
        return 2 if "error" in self.kinds else 1 if "failed" in self.kinds else 0

    # --- helpers ------------------------------------------------------------------
    def _blocked(self, task, target, fail):
        causes = []
        for dep in fail.message.split():
            dep_target = dep.partition(":")[2] if dep.startswith("test:") else dep
            causes += self.blocked_by.get(dep_target, [dep_target])
        causes = sorted(set(causes)) or ["a failed dependency"]
        if target is None:
            return
        self.status[target] = "blocked"
        self.blocked_by[target] = causes
        self.write(f"BLOCKED {target} (by {', '.join(causes)})\n")
