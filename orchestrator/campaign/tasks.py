"""doit task generators: `export:NN`, `test:NN`, `all`.

`test:NN` depends on `export:NN` and on the `test:` tasks of NN's direct deps
(or of every earlier module in strict mode), so doit runs it only after they
passed. Whether it runs at all is decided by `uptodate`: the stored result
passed and its content key equals the current one (keys.py). The result store,
not doit's db, is the truth about tests; doit's db only schedules.

Command-line variables (doit's `name=value` syntax):
  doit all pytest="-x -k core"   extra pytest arguments (part of the cache key)
  doit all strict=1              classroom order: N waits for all of 1..N-1
  doit all flaky_attempts=3      re-run failing tests up to 3 tries; pass-on-retry is FLAKY
  doit all lock=fail             refuse (rather than wait) if another run holds the checkout
  doit all xdist=never|always    override the xdist policy (benchmarks compare the three)
  doit all launcher=cold         a new pytest process per module instead of a child forked
                                 from the warm server (launch.py; benchmarks compare both)
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from doit.exceptions import InvalidDodoFile, TaskFailed

from orchestrator.cache import keys
from orchestrator.cache.remote_settings import ENV_URL
from orchestrator.cache.store import Cause, Store
from orchestrator.campaign import schedule
from orchestrator.campaign.doit_run import CAMPAIGN, command_line_variables
from orchestrator.campaign.options import BadOption, RunOptions, help_text, unknown_variables
from orchestrator.core import export, own_bytecode, strict_env, tree
from orchestrator.core.digests import save_all as save_stat_caches
from orchestrator.core.graph import GraphError, ModuleGraph, load
from orchestrator.core.lock import Busy, RunLock
from orchestrator.core.state import StateDir, StateDirError, describe
from orchestrator.report import run_context
from orchestrator.report.console import Reporter
from orchestrator.run import launch, runner

if TYPE_CHECKING:
    from orchestrator.cache.remote_http import RemoteCache



class Campaign:
    """The tasks of one doit invocation over one validated graph.

    Made when dodo.py is loaded, by every doit command (`doit list` and tab completion
    too), so making it only reads: graph.toml, validated, and the command line's
    `name=value` variables, checked (a bad one: one line, exit 3). No stored result is
    read until a run needs one, and nothing is written; the run command (doit_run.py)
    finds the campaign in DOIT_CONFIG, resolves the task names and begins the run."""

    def __init__(self, root: Path):
        try:
            self.graph: ModuleGraph = load(root)
        except GraphError as e:
            raise InvalidDodoFile(str(e)) from None
        self.root = self.graph.root
        self.state = StateDir(self.root)
        self.store = Store(self.root)
        variables = command_line_variables()
        try:
            unknown_variables(variables)
            self.options = RunOptions.from_vars(variables.get)
        except BadOption as e:
            raise InvalidDodoFile(str(e)) from None
        self.pytest_args = list(self.options.pytest_args)
        self.strict = self.options.strict
        self.flaky_attempts = self.options.flaky_attempts
        self.xdist = self.options.xdist
        self.launcher_kind = self.options.launcher
        self.wait_for_lock = self.options.wait_for_lock
        self._launcher: launch.WarmLauncher | launch.ColdLauncher | None = None
        self._launcher_lock = threading.Lock()
        self._declared: dict[str, dict[str, str]] = {}
        self.hits: dict = {}               # module -> the stored result a cache hit reuses
        self._priorities: dict[str, schedule.Priority] | None = None
        self._durations: dict[str, float] | None = None
        # which test targets of the run have ended: whether a starting one runs alone
        self.progress = schedule.Progress(self.graph, self.strict)
        self.lock: RunLock | None = None
        self.remote: RemoteCache | None = None    # opened by begin_run

    def begin_run(self) -> None:
        """Called by the run command (doit_run.py) before any task runs, never when dodo.py
        is merely loaded (`doit list`, tab completion): the state dir must be writable, and
        one run at a time holds the checkout."""
        try:
            self.state.ensure_writable()
        except StateDirError as e:
            raise InvalidDodoFile(str(e)) from None
        self.lock = RunLock(self.state.path)
        try:
            self.lock.acquire(wait=self.wait_for_lock,
                              say=lambda m: print(m, file=sys.stderr, flush=True))
        except Busy as e:
            raise InvalidDodoFile(str(e)) from None
        # most runs have no remote cache: its client is imported only when graph.toml or a
        # variable names one (every variable of its settings starts with ENV_URL)
        if self.graph.remote_cache or any(name.startswith(ENV_URL) for name in os.environ):
            from orchestrator.cache.remote_http import RemoteCache
            self.remote = RemoteCache.from_environment(self.graph, self.pytest_args)
        if self.remote is not None:
            self.remote.announce()                # the run's first line names the server

    def begun(self) -> None:
        """Begin the run on the first task if the run command did not (doit's own `run`,
        e.g. `doit -k` from a folder without our doit configuration): the lock and the
        state dir's check still hold."""
        with self._launcher_lock:
            if self.lock is None:
                self.begin_run()
                atexit.register(self.end_run)

    def end_run(self) -> None:
        if self.remote is not None:
            self.remote.close()
        save_stat_caches()
        if self.lock is not None:
            self.lock.release()

    def doit_config(self) -> dict:
        return {
            CAMPAIGN: self,                # doit's loader hands it to the command (doit_run.py)
            "reporter": Reporter,
            "default_tasks": ["all"],
            # Every task decides by `uptodate` alone (our store is the truth), so doit's db
            # holds nothing we read: keep it in memory, and a broken disk cannot corrupt it.
            "backend": "sqlite3",
            "dep_file": ":memory:",
            "par_type": "thread",          # process mode hangs if a worker dies
            "num_process": os.cpu_count() or 1,
            "continue": True,              # a failure blocks only its dependents
            "subtasks": True,              # `doit list` shows export:NN and test:NN
        }

    def export_tasks(self):
        for module in self.graph:
            yield {
                "name": module.id,
                "doc": f"export {module.source} -> {module.export}",
                "actions": [(self.export, [module.id])],
                "uptodate": [lambda m=module: export.is_current(m, self.graph)],
            }

    def test_tasks(self):
        yield {"basename": "test", "name": None,
               "doc": "run a module's tests after its deps' tests pass "
                      "(doit test:NN name=value ...)\n\nvariables:\n" + help_text()}
        for module in self.graph:
            deps = self.graph.test_deps(module.id, strict=self.strict)
            yield {
                "name": module.id,
                "doc": f"test {module.title} ({module.tests}) after its deps' tests pass",
                "actions": [(self.test, [module.id])],
                "task_dep": [f"export:{module.id}"] + [f"test:{d}" for d in deps],
                "uptodate": [(self.cached, [module.id])],
                "verbosity": 0,
            }

    def waiting_on(self, module_id: str) -> list[str]:
        """Every test target that waits, directly or not, for `module_id`'s to pass."""
        return self.graph.waiting_on(module_id, self.strict)

    def consider(self, task_names: Iterable[str]) -> None:
        """The run command (doit_run.py): the tasks this run will consider, the selected
        ones and every task they depend on. Their test targets are the ones a starting
        target may have to share the machine with (schedule.runs_alone)."""
        self.progress.consider(name.partition(":")[2] for name in task_names
                               if name.startswith("test:"))

    def rerun_command(self, nodeid: str) -> str:
        """A command that runs exactly this test as the orchestrator ran it, from any
        folder and in any course: `cd` to the root, pytest with the orchestrator's plugin
        (which exports the current sources first) and the run's arguments (verdict.py)."""
        from orchestrator.run.verdict import rerun_command
        return rerun_command(self.root, [nodeid], self.pytest_args)

    def resolve_task_names(self, names: list[str]) -> list[str]:
        return resolve_task_names(self.graph, names)

    def priority(self, task_name: str) -> schedule.Priority:
        """The run command's dispatch order (doit_run.py): a test or export target's
        remaining critical path and what of it lies after the module (schedule.priorities),
        (0, 0) for other tasks. The first call reads the recorded durations: a run asks
        when it first dispatches, `doit list` never does."""
        kind, _, module = task_name.partition(":")
        if kind in ("test", "export") and module in self.graph.modules:
            return self.priorities()[module]
        return (0.0, 0.0)

    def priorities(self) -> dict[str, schedule.Priority]:
        """Each module's dispatch priority, from recorded durations (or guesses)."""
        if self._priorities is None:
            self._priorities = schedule.priorities(self.graph, self.durations(), self.strict)
        return self._priorities

    def durations(self) -> dict[str, float]:
        """Each module's recorded duration (or its size-class guess), read once."""
        if self._durations is None:
            self._durations = schedule.durations(self.graph)
        return self._durations

    def all_task(self):
        # the longest remaining path first by declared sizes, the order doit's plain `run`
        # starts them in; ours dispatches by the recorded durations (Campaign.priority).
        # Listing the tasks reads no stored result.
        guessed = schedule.priorities(
            self.graph, {m.id: schedule.guess(m) for m in self.graph}, self.strict)
        order = sorted(self.graph.modules, key=schedule.dispatch_order(self.graph, guessed))
        return {
            "doc": "export and test every module, in dependency order",
            "actions": None,
            "task_dep": [f"test:{m}" for m in order],
        }

    def graph_task(self):
        out = self.state.graph
        return {
            "doc": f"write the status-coloured module graph to {out.relative_to(self.root)}/ "
                   "(graph.html, graph.mmd)",
            "actions": [(self.write_graph, [out])],
            "verbosity": 2,
        }

    def write_graph(self, out: Path):
        from orchestrator.core.files import atomic_write
        from orchestrator.report.status import all_states
        from orchestrator.views.render import make_view, to_html, to_mermaid
        view = make_view(self.graph, all_states(self.graph))
        for name, text in (("graph.html", to_html(view)), ("graph.mmd", to_mermaid(view))):
            atomic_write(out / name, text)
            print(f"wrote {(out / name).relative_to(self.root)}")

    def export(self, module_id: str):
        if module_id in self.progress.considered:
            self.warm_up()         # its test target will likely run: boot while we export
        exported = False
        try:
            export.export_module(self.graph[module_id], self.graph)
            exported = True
        except export.ExportError as e:
            return TaskFailed(str(e))
        finally:
            tree.invalidate_all()       # digests remembered before this export are stale
            if not exported:            # its test target will not run, nor what waits on it
                self.progress.finish(module_id, failed=True)
        return True

    def cached(self, module_id: str) -> bool:
        """doit's `uptodate`: a stored pass whose declared and observed inputs, valued now,
        digest to its key."""
        self.begun()
        module = self.graph[module_id]
        declared = keys.declared(self.graph, module, self.pytest_args)
        self._declared[module_id] = declared

        hit = self.store.lookup(module_id, lambda r: keys.is_hit(self.graph, declared, r))
        if hit is None and self.remote is not None:
            hit = self.remote.lookup(module_id, declared)   # verified; its inputs are ours now
            if hit is not None:
                try:
                    self.store.save(hit)
                except OSError:
                    pass                                    # still a hit for this run
        self.hits[module_id] = hit
        if hit is not None:
            self.progress.finish(module_id)
        return hit is not None

    def test(self, module_id: str):
        outcome = None
        try:
            outcome = self._test(module_id)
        finally:      # ended, passed or not (an exception: failed, as doit will report it)
            self.progress.finish(module_id, failed=outcome is not True)
        return outcome

    def _test(self, module_id: str):
        context = run_context.CURRENT
        if context.bad_input:          # bad pytest arguments fail every module alike: stop
            return TaskFailed(context.bad_input)
        module = self.graph[module_id]
        declared = self._declared.pop(module_id, None) or \
            keys.declared(self.graph, module, self.pytest_args)
        cores, parallel = os.cpu_count() or 1, context.workers
        alone = self.progress.alone(module_id)
        took, longest = runner.serial_time(next(self.store.recently_used(module_id), None))
        workers = runner.xdist_workers(took, parallel, cores, self.xdist, alone=alone,
                                       longest=longest)
        blas = runner.blas_threads(cores, parallel, workers)
        result = runner.run_module(self.graph, module, declared, self.pytest_args, workers,
                                   self.flaky_attempts, blas, self.warm_up())
        if context.interrupted.is_set():
            return TaskFailed("interrupted")          # never stored: it did not finish
        if result.cause is Cause.BAD_ARGUMENTS:
            context.refuse(result.reason)
            return TaskFailed(result.reason)          # bad input, not a result
        try:
            self.store.save(result)
            self.store.record_flaky(result.flaky)
        except OSError as e:
            context.refuse(describe(self.state.path, e))
            return TaskFailed(context.bad_input)
        if result.reusable and self.remote is not None:
            self.remote.upload(result, declared)
        return True if result.passed else TaskFailed(result.reason)

    def warm_up(self):
        """The run's pytest launcher, started now if it was not: the warm server takes
        ~0.3 s to boot, so the first export of a module whose tests this run considers
        starts it, and the first test run finds it more nearly ready (TinyTorch cold: the
        first export began 0.07 s before the first test's launcher was asked for). A run
        that then runs no test ends it unused (close)."""
        cores, parallel = os.cpu_count() or 1, run_context.CURRENT.workers
        return self.launcher(blas_threads=max(1, cores // parallel))

    def launcher(self, blas_threads: int):
        """The run's pytest launcher, started on first use (a no-op run starts none)."""
        with self._launcher_lock:
            if self._launcher is None:
                # what the first result's key asks (the distributions of what it imported,
                # ~35 ms), read while the first run runs instead of after it
                threading.Thread(target=keys.distribution_owners, name="distributions",
                                 daemon=True).start()
                own_bytecode.write_in_background()    # for the commands that follow
                if self.launcher_kind == "warm" and launch.WarmLauncher.available():
                    # thread limits must be in the server's environment before numpy loads;
                    # the strict environment: no secret of ours in the server either
                    env = {**strict_env.for_tests(), **runner.thread_limits(blas_threads)}
                    self._launcher = launch.WarmLauncher(self.root, env, self.graph.preload)
                else:
                    self._launcher = launch.ColdLauncher()
                atexit.register(self._launcher.close)
                run_context.CURRENT.on_interrupt.append(self._launcher.close)
            return self._launcher


def resolve_task_names(graph: ModuleGraph, names: list[str]) -> list[str]:
    """`doit test:09` and `doit test:spatial` mean `test:09_spatial` when that is the only
    match; a misspelt one -> one line naming the closest real tasks, by module id or by
    name without its number (`doit test:spatail` -> did you mean test:09_spatial?)."""
    import difflib
    resolved = []
    for arg in names:
        kind, colon, name = arg.partition(":")
        if colon and kind in ("test", "export") and name not in graph.modules:
            try:
                arg = f"{kind}:{graph.resolve(name)}"
            except GraphError:
                spelled = {**{m.name: m.id for m in graph}, **{m.id: m.id for m in graph}}
                close = dict.fromkeys(spelled[c] for c in difflib.get_close_matches(
                    name, list(spelled), n=3, cutoff=0.7))
                meant = f" (did you mean {', '.join(f'{kind}:{m}' for m in close)}?)" \
                    if close else ""
                raise InvalidDodoFile(f"unknown task '{arg}'{meant}") from None
        resolved.append(arg)
    return resolved


