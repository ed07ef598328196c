"""What one `doit` run shares between its run command, its tasks and its reporter.

doit builds the three separately (the command from pyproject's plugin table, the
tasks from dodo.py, the reporter from DOIT_CONFIG), so they meet here: the number of
workers doit was given, whether the run was interrupted, and the first bad input
found while running (bad pytest arguments, an unwritable state dir), which stops
the remaining targets and decides the exit code. The campaign itself is not here:
doit's loader hands it to the run command, which gives it to the reporter
(campaign/doit_run.py).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum


class Exit(IntEnum):
    """`doit`'s exit codes, decided by the reporter from what happened (README table)."""
    OK = 0             # every requested target passed or was cached
    FAILED = 1         # a test target failed or was blocked by a failure
    ERROR = 2          # the orchestrator itself failed (an export, an action that crashed)
    BAD_INPUT = 3      # graph.toml, a task name, a variable, pytest's arguments, the state dir
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


@dataclass
class RunContext:
    workers: int = 1
    interrupted: threading.Event = field(default_factory=threading.Event)
    bad_input: str = ""
    on_interrupt: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(self, message: str) -> bool:
        """Record the run's first bad input; True if this is the first."""
        with self.lock:
            if self.bad_input:
                return False
            self.bad_input = message
            return True

    def interrupt(self) -> None:
        self.interrupted.set()
        for stop in list(self.on_interrupt):
            try:
                stop()
            except Exception:
                pass


CURRENT = RunContext()


def begin(workers: int) -> RunContext:
    """A fresh context for a run that is starting (tests run several in one process)."""
    global CURRENT
    CURRENT = RunContext(workers=max(1, workers))
    return CURRENT


def considered(tasks: dict, selected: list[str]) -> set[str]:
    """The names of the doit tasks a run considers: the selected ones (patterns and
    targets resolved by doit) and every task they depend on, as doit hands them to a
    reporter's `initialize(tasks, selected_tasks)`. The run command tells the campaign;
    the reporter counts its targets from the same set."""
    found: set[str] = set()
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name in found or name not in tasks:
            continue
        found.add(name)
        stack.extend(tasks[name].task_dep)
    return found
