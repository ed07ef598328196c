"""Everything the orchestrator takes from doit beyond its documented API, in this one file.

doit documents dodo.py (task dicts, DOIT_CONFIG, get_var), its commands' options and the
plugin tables of pyproject.toml or doit.cfg. This file reaches further, and nothing else
in orchestrator/ does:
  Run            doit's `run` command with `cmd_run.Run._execute` re-implemented (the
                 same parameters; the body of doit's own, plus what follows)
  prioritized    a dispatcher's `ready` deque replaced (TaskDispatcher: append, popleft,
                 truth), so the ready task with the longest remaining path goes first
  considered     the dispatcher's `tasks` and `selected_tasks` (what doit hands a
                 reporter's initialize) closed over task_dep (run_context.considered): the
                 targets the run considers, handed to the campaign (Campaign.consider)
  Runner, MThreadRunner, Stream, TaskControl   built as doit's own `_execute` builds them
  Help, Forget   doit's commands with their `_execute` overridden
  command_line_variables   doit_cmd._CMDLINE_VARS, every `name=value` of the command line
                 (doit's get_var reads one by name; nothing lists them)

Tested against doit 0.36.0 and 0.37.0: tests/orchestrator/test_doit_adapter.py asserts
each name and shape used here, so a doit that changes one fails there, in one clear
test, rather than in a run. pyproject.toml pins `doit>=0.36,<0.38`. The upper bound
because none of this is public: doit is 0.x and a minor release may change any of it
(0.36 -> 0.37 changed none). Admitting a new doit: run test_doit_adapter.py and the
end-to-end tests on it, then raise the bound.

Why a run command of our own: doit hands out ready tasks first come, first served, and
on a curriculum graph that starts short side branches before the long chain that
decides the wall time (a measured 8 s of idle critical path in a 42 s cold run). Here
the campaign gives each task its priority (Campaign.priority: the remaining critical
path from recorded durations, read when the run first dispatches, never when dodo.py is
merely loaded); a task without one keeps doit's order. It also tells the campaign which
test targets the run considers, so that a target starting when every other one has ended
or waits on it knows it runs alone (it may then use every core: runner.xdist_workers).
The command also resolves short task names, starts and ends the campaign's run (the
state dir must be writable, one run per checkout), turns Ctrl-C into an INTERRUPTED
summary and exit 130, and returns the exit code the reporter decided from what happened
(run_context.Exit) rather than doit's.

The campaign reaches the commands through doit's loader, not a global: dodo.py's
DOIT_CONFIG (Campaign.doit_config) carries it under CAMPAIGN, the loader hands
DOIT_CONFIG to whichever command loaded dodo.py (campaign_of), and the run command gives
it to the reporter it builds, in the reporter's options. Registered per project:

    [tool.doit.plugins.command]
    run = "orchestrator.campaign.doit_run:Run"
    help = "orchestrator.campaign.doit_run:Help"       # also lists the name=value variables
    forget = "orchestrator.campaign.doit_run:Forget"   # doit's forget, made true (see Forget)
"""
from __future__ import annotations

import heapq
import itertools
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from doit import cmd_forget, cmd_help, cmd_run, doit_cmd
from doit.control import TaskControl
from doit.exceptions import InvalidCommand
from doit.runner import MThreadRunner, Runner
from doit.task import Stream

from orchestrator.report import run_context
from orchestrator.report.run_context import Exit

CAMPAIGN = "campaign"     # its key in DOIT_CONFIG and in the reporter's options


class Campaign(Protocol):
    """What the commands ask of the campaign (tasks.Campaign; not imported: it imports this)."""
    graph: Any
    root: Path

    def resolve_task_names(self, names: list[str]) -> list[str]: ...
    def begin_run(self) -> None: ...
    def end_run(self) -> None: ...
    def priority(self, task_name: str) -> tuple[float, ...]: ...
    def consider(self, task_names: Iterable[str]) -> None: ...


def command_line_variables() -> dict[str, str]:
    """The `name=value` arguments of this doit command line ({} when doit is not running):
    doit sets them (DoitMain.process_args) before it loads dodo.py."""
    return dict(doit_cmd._CMDLINE_VARS or {})


def campaign_of(command) -> Campaign | None:
    """The campaign of the dodo.py `command` loaded, as doit's loader hands it over: in
    DOIT_CONFIG. None for a dodo.py that has none (doit's own behaviour then)."""
    return command.loader.load_doit_config().get(CAMPAIGN)


class PriorityReady:
    """A dispatcher's `ready` queue (it uses append, popleft and truth), highest priority
    first; `priority(task name)` is asked as a task is queued, never before a run."""

    def __init__(self, priority: Callable[[str], tuple[float, ...]] = lambda name: (0.0,)):
        self.priority = priority
        self._heap: list = []
        self._order = itertools.count()   # ties keep doit's first-come order

    def append(self, node) -> None:
        highest_first = tuple(-value for value in self.priority(node.task.name))
        heapq.heappush(self._heap, (highest_first, next(self._order), node))

    def popleft(self):
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)


def prioritized(dispatcher, priority: Callable[[str], tuple[float, ...]]):
    """doit's TaskDispatcher, its ready tasks handed out by priority. Its generator has not
    started yet (TaskDispatcher.__init__ only creates it), so nothing is in `ready`."""
    dispatcher.ready = PriorityReady(priority)
    return dispatcher


class Run(cmd_run.Run):
    doc_purpose = "run tasks (ready tasks dispatched by priority)"
    sel_tasks: list[str] | None      # the task names asked for (DoitCmdBase.execute sets it)

    # the parameters of doit's cmd_run.Run._execute, which doit fills by name
    def _execute(self, outfile, verbosity=None, always=False, continue_=False,
                 reporter="console", num_process=0, par_type="process", single=False,
                 auto_delayed_regex=False, force_verbosity=False, failure_verbosity=0,
                 pdb=False):
        campaign = campaign_of(self)
        if campaign is not None:    # `doit test:09` is test:09_spatial; a typo: one line, exit 3
            self.sel_tasks = campaign.resolve_task_names(self.sel_tasks or [])
        if single or pdb:   # rare debugging modes: doit's own implementation
            return super()._execute(outfile, verbosity, always, continue_, reporter,
                                    num_process, par_type, single, auto_delayed_regex,
                                    force_verbosity, failure_verbosity, pdb)
        context = run_context.begin(num_process or 1)
        if campaign is not None:
            campaign.begin_run()
        try:
            with interrupts_noted(context):
                return self._run(campaign, context, outfile, verbosity, always, continue_,
                                 reporter, num_process, par_type, auto_delayed_regex,
                                 force_verbosity, failure_verbosity)
        finally:
            if campaign is not None:
                campaign.end_run()

    def _run(self, campaign, context, outfile, verbosity, always, continue_, reporter,
             num_process, par_type, auto_delayed_regex, force_verbosity, failure_verbosity):
        self.control = TaskControl(self.task_list, auto_delayed_regex=auto_delayed_regex)
        self.control.process(self.sel_tasks)
        reporter_cls = self.reporters[reporter] if isinstance(reporter, str) else reporter
        stream = self.outstream = outfile if not isinstance(outfile, str) else \
            open(outfile, "w", encoding="utf-8")
        try:
            options = {"failure_verbosity": failure_verbosity, CAMPAIGN: campaign}
            reporter_obj = reporter_cls(stream, options) \
                if isinstance(reporter_cls, type) else reporter_cls
            run_args = [self.dep_manager, reporter_obj, continue_, always,
                        Stream(verbosity, force_verbosity)]
            runner_cls = Runner
            if num_process:
                if par_type not in ("thread", "process"):
                    raise InvalidCommand(f"Invalid parallel type {par_type}")
                if par_type == "process":
                    # doit's process mode hangs when a worker dies; threads are enough
                    # here since every test target runs in its own pytest process
                    sys.stderr.write("note: running the process-parallel request with threads\n")
                runner_cls = MThreadRunner
                run_args.append(num_process)
            dispatcher = prioritized(self.control.task_dispatcher(),
                                     campaign.priority if campaign else lambda name: (0.0,))
            if campaign is not None:    # which targets a starting one may share cores with
                campaign.consider(run_context.considered(dispatcher.tasks,
                                                         dispatcher.selected_tasks))
            try:
                code = runner_cls(*run_args).run_all(dispatcher)
            except KeyboardInterrupt:
                context.interrupt()          # kill what still runs; nothing of it is stored
                code = Exit.INTERRUPTED
            decide = getattr(reporter_obj, "exit_code", None)
            return int(decide()) if decide else code
        finally:
            if isinstance(outfile, str):
                stream.close()


class interrupts_noted:
    """While a run is on: Ctrl-C (SIGINT) and SIGTERM mark the run interrupted before
    Python raises KeyboardInterrupt, so the summary, written while the exception unwinds
    doit's runner, already knows."""

    def __init__(self, context):
        self.context = context
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.context.interrupted.set()
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


class Help(cmd_help.Help):
    """doit's `help`; for a test task (or `all`) it also lists the variables that
    `doit test:NN name=value` takes (a task's doc shows only its first line)."""

    def _execute(self, pos_args):
        found = super()._execute(pos_args)
        if found and pos_args[0].split(":")[0] in ("test", "all"):
            from orchestrator.campaign.options import help_text
            print("\nvariables (doit " + pos_args[0] + " name=value ...):")
            print(help_text())
        return found


class Forget(cmd_forget.Forget):
    """doit's `forget`, made true. doit's own forgets doit's db, which here is in memory
    and decides nothing (the result store is the truth): it would say "forgetting" and
    change nothing. This one drops the stored results of the named test targets (`all`,
    or none named: every module), so their next run runs their tests."""
    doc_purpose = "forget the stored results of test targets: their next run runs them"

    def _execute(self, forget_sub, forget_disable_default, forget_all):
        from orchestrator.report.status import forget, forgotten
        campaign = campaign_of(self)
        if campaign is None:
            return super()._execute(forget_sub, forget_disable_default, forget_all)
        if self.sel_default_tasks and forget_disable_default and not forget_all:
            self.outstream.write("no tasks specified, pass task name, --enable-default or "
                                 "--all\n")
            return 0
        names = campaign.resolve_task_names(list(self.sel_tasks or []))
        modules = list(campaign.graph.modules) if forget_all or "all" in names else \
            [n.partition(":")[2] for n in names if n.startswith("test:")]
        for name in names:
            if name.startswith("export:"):
                self.outstream.write(f"{name}: nothing to forget (it exports again whenever "
                                     "its source changes)\n")
        for module in modules:
            self.outstream.write(forgotten(module, forget(campaign.root, module)) + "\n")
        return 0
