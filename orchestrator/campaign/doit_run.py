"""doit's `run` command, with ready tasks dispatched by priority and an honest ending.

doit hands out ready tasks first come, first served. On a curriculum graph that
starts short side branches before the long chain that decides the wall time (a
measured 8 s of idle critical path in a 42 s cold run). Here each task may carry
`meta = {"priority": seconds}` (tasks.py sets the remaining critical path from
recorded durations) and the highest priority ready task is dispatched first; tasks
without a priority keep doit's order.
The command also starts and ends the campaign's run (the state dir must be writable,
one run per checkout: never when dodo.py is merely loaded), turns Ctrl-C into an
INTERRUPTED summary and exit 130, and returns the exit code the reporter decided
from what happened (run_context.Exit) rather than doit's own.
Registered per project in pyproject.toml:

    [tool.doit.plugins.command]
    run = "orchestrator.campaign.doit_run:Run"
    forget = "orchestrator.campaign.doit_run:Forget"   # doit's forget, made true (see Forget)
"""
from __future__ import annotations

import heapq
import itertools
import signal
import sys
import threading

from doit import cmd_forget, cmd_help, cmd_run
from doit.control import TaskControl, TaskDispatcher
from doit.exceptions import InvalidCommand
from doit.runner import MThreadRunner, Runner
from doit.task import Stream

from orchestrator.report import run_context
from orchestrator.campaign import tasks
from orchestrator.report.run_context import Exit


class PriorityReady:
    """The dispatcher's `ready` queue (it uses append, popleft and truth), by priority."""

    def __init__(self):
        self._heap: list = []
        self._order = itertools.count()   # ties keep doit's first-come order

    def append(self, node) -> None:
        priority = (getattr(node.task, "meta", None) or {}).get("priority", 0.0)
        heapq.heappush(self._heap, (-priority, next(self._order), node))

    def popleft(self):
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)


class PriorityDispatcher(TaskDispatcher):
    def __init__(self, tasks, targets, selected_tasks):
        super().__init__(tasks, targets, selected_tasks)
        self.ready = PriorityReady()


class PriorityControl(TaskControl):
    def task_dispatcher(self):
        assert self.selected_tasks is not None, "must call 'process' before this"
        return PriorityDispatcher(self.tasks, self.targets, self.selected_tasks)


class Run(cmd_run.Run):
    doc_purpose = "run tasks (ready tasks dispatched by priority)"

    def _execute(self, outfile, verbosity=None, always=False, continue_=False,
                 reporter="console", num_process=0, par_type="process", single=False,
                 auto_delayed_regex=False, force_verbosity=False, failure_verbosity=0,
                 pdb=False):
        if single or pdb:   # rare debugging modes: doit's own implementation
            return super()._execute(outfile, verbosity, always, continue_, reporter,
                                    num_process, par_type, single, auto_delayed_regex,
                                    force_verbosity, failure_verbosity, pdb)
        context = run_context.begin(num_process or 1)
        campaign = run_context.ACTIVE_CAMPAIGN
        if campaign is not None:
            self.sel_tasks = tasks.resolve_task_names(campaign.graph, self.sel_tasks or [])
            campaign.begin_run()
        try:
            with interrupts_noted(context):
                return self._run(context, outfile, verbosity, always, continue_, reporter,
                                 num_process, par_type, auto_delayed_regex, force_verbosity,
                                 failure_verbosity)
        finally:
            if campaign is not None:
                campaign.end_run()

    def _run(self, context, outfile, verbosity, always, continue_, reporter, num_process,
             par_type, auto_delayed_regex, force_verbosity, failure_verbosity):
        self.control = PriorityControl(self.task_list, auto_delayed_regex=auto_delayed_regex)
        self.control.process(self.sel_tasks)
        reporter_cls = self.reporters[reporter] if isinstance(reporter, str) else reporter
        stream = self.outstream = outfile if not isinstance(outfile, str) else \
            open(outfile, "w", encoding="utf-8")
        try:
            reporter_obj = reporter_cls(stream, {"failure_verbosity": failure_verbosity}) \
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
            try:
                code = runner_cls(*run_args).run_all(self.control.task_dispatcher())
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

    def _execute(self, forget_sub=False, forget_disable_default=False, forget_all=False):
        from orchestrator.report.status import forget, forgotten
        campaign = run_context.ACTIVE_CAMPAIGN
        if campaign is None:
            return super()._execute(forget_sub, forget_disable_default, forget_all)
        if self.sel_default_tasks and forget_disable_default and not forget_all:
            self.outstream.write("no tasks specified, pass task name, --enable-default or "
                                 "--all\n")
            return 0
        names = tasks.resolve_task_names(campaign.graph, list(self.sel_tasks or []))
        modules = list(campaign.graph.modules) if forget_all or "all" in names else \
            [n.partition(":")[2] for n in names if n.startswith("test:")]
        for name in names:
            if name.startswith("export:"):
                self.outstream.write(f"{name}: nothing to forget (it exports again whenever "
                                     "its source changes)\n")
        for module in modules:
            self.outstream.write(forgotten(module, forget(campaign.root, module)) + "\n")
        return 0
