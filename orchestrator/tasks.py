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
import shlex
import sys
import threading
from pathlib import Path

from doit import get_var
from doit.exceptions import InvalidDodoFile, TaskFailed

from . import export, keys, launch, runner, schedule, store
from .graph import GraphError, ModuleGraph, load, suggest
from .lock import Busy, RunLock
from .report import Reporter


READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "tabcompletion"}


class Campaign:
    """The tasks of one doit invocation over one validated graph."""

    def __init__(self, root: Path, argv: list[str] | None = None):
        argv = sys.argv[1:] if argv is None else argv
        try:
            self.graph: ModuleGraph = load(root)
        except GraphError as e:
            raise InvalidDodoFile(str(e)) from None
        self.root = self.graph.root
        self.state = store.state_dir(self.root)
        check_task_names(self.graph, argv)
        self.pytest_args = shlex.split(get_var("pytest", "") or "")
        self.strict = (get_var("strict", "") or "") not in ("", "0", "false", "no")
        self.flaky_attempts = positive_int("flaky_attempts", get_var("flaky_attempts", "1"))
        self.xdist = get_var("xdist", "policy") or "policy"
        if self.xdist not in runner.XDIST_MODES:
            raise InvalidDodoFile(f"xdist={self.xdist}: expected one of "
                                  f"{', '.join(runner.XDIST_MODES)}")
        self.launcher_kind = get_var("launcher", "warm") or "warm"
        if self.launcher_kind not in launch.LAUNCHERS:
            raise InvalidDodoFile(f"launcher={self.launcher_kind}: expected one of "
                                  f"{', '.join(launch.LAUNCHERS)}")
        self._launcher = None
        self._launcher_lock = threading.Lock()
        self._inputs: dict[str, dict[str, str]] = {}
        self._priorities: dict[str, float] | None = None
        self.lock = RunLock(self.state)
        if not READ_ONLY_COMMANDS & set(argv):
            self._claim(wait=(get_var("lock", "wait") or "wait") != "fail")

    def _claim(self, wait: bool) -> None:
        try:
            self.lock.acquire(wait=wait, say=lambda m: print(m, file=sys.stderr, flush=True))
        except Busy as e:
            raise InvalidDodoFile(str(e)) from None
        store.check_doit_db(self.root, self.state / "doit.sqlite3")

    def doit_config(self) -> dict:
        return {
            "reporter": Reporter,
            "default_tasks": ["all"],
            "backend": "sqlite3",          # doit's default dbm is dbm.dumb here: corrupts under -n
            "dep_file": str(self.state / "doit.sqlite3"),
            "par_type": "thread",          # process mode hangs if a worker dies
            "num_process": os.cpu_count() or 1,
            "continue": True,              # a failure blocks only its dependents
        }

    def export_tasks(self):
        priority = self.priorities()
        for module in self.graph:
            yield {
                "meta": {"priority": priority[module.id]},
                "name": module.id,
                "doc": f"export {module.source} -> {module.export}",
                "actions": [(self.export, [module.id])],
                "uptodate": [lambda m=module: export.is_current(m, self.graph)],
            }

    def test_tasks(self):
        priority = self.priorities()
        for module in self.graph:
            deps = self.graph.test_deps(module.id, strict=self.strict)
            yield {
                "meta": {"priority": priority[module.id]},   # see doit_run.py
                "name": module.id,
                "doc": f"test {module.title} ({module.tests}) after its deps' tests pass",
                "actions": [(self.test, [module.id])],
                "task_dep": [f"export:{module.id}"] + [f"test:{d}" for d in deps],
                "uptodate": [(self.cached, [module.id])],
                "verbosity": 0,
            }

    def priorities(self) -> dict[str, float]:
        """Each module's remaining critical path (seconds, from recorded durations)."""
        if self._priorities is None:
            took = schedule.durations(self.graph)
            self._priorities = schedule.remaining_path(self.graph, took, self.strict)
        return self._priorities

    def all_task(self):
        # longest remaining path first, also for doit's plain `run` (see doit_run.py)
        order = sorted(self.graph.modules, key=lambda m: (-self.priorities()[m],
                                                          self.graph[m].index))
        return {
            "doc": "export and test every module, in dependency order",
            "actions": None,
            "task_dep": [f"test:{m}" for m in order],
        }

    def graph_task(self):
        out = store.state_dir(self.root) / "graph"
        return {
            "doc": f"write the status-coloured module graph to {out.relative_to(self.root)}/ "
                   "(graph.html, graph.mmd)",
            "actions": [(self.write_graph, [out])],
            "verbosity": 2,
        }

    def write_graph(self, out: Path):
        from .files import atomic_write
        from .render import make_view, to_html, to_mermaid
        from .status import all_states
        view = make_view(self.graph, all_states(self.graph))
        for name, text in (("graph.html", to_html(view)), ("graph.mmd", to_mermaid(view))):
            atomic_write(out / name, text)
            print(f"wrote {(out / name).relative_to(self.root)}")

    def export(self, module_id: str):
        try:
            export.export_module(self.graph[module_id], self.graph)
        except export.ExportError as e:
            return TaskFailed(str(e))
        return True

    def cached(self, module_id: str) -> bool:
        module = self.graph[module_id]
        inputs = keys.inputs(self.graph, module, self.pytest_args)
        self._inputs[module_id] = inputs
        previous = store.load(self.root, module_id)
        return previous is not None and previous.passed and previous.key == keys.digest(inputs)

    def test(self, module_id: str):
        module = self.graph[module_id]
        inputs = self._inputs.pop(module_id, None) or \
            keys.inputs(self.graph, module, self.pytest_args)
        previous = store.load(self.root, module_id)
        cores, parallel = os.cpu_count() or 1, doit_workers()
        workers = runner.xdist_workers(previous.duration if previous else None,
                                       parallel, cores, self.xdist)
        blas = max(1, cores // (parallel * max(workers, 1)))
        result = runner.run_module(self.graph, module, inputs, keys.digest(inputs),
                                   self.pytest_args, workers, self.flaky_attempts, blas,
                                   self.launcher(blas_threads=max(1, cores // parallel)))
        store.save(self.root, result)
        store.record_flaky(self.root, result.flaky)
        return True if result.passed else TaskFailed(result.reason)

    def launcher(self, blas_threads: int):
        """The run's pytest launcher, started on first use (a no-op run starts none)."""
        with self._launcher_lock:
            if self._launcher is None:
                if self.launcher_kind == "warm" and launch.WarmLauncher.available():
                    # thread limits must be in the server's environment before numpy loads
                    env = {**os.environ, **runner.thread_limits(blas_threads)}
                    self._launcher = launch.WarmLauncher(self.root, env, self.graph.preload)
                else:
                    self._launcher = launch.ColdLauncher()
                atexit.register(self._launcher.close)
            return self._launcher


def check_task_names(graph: ModuleGraph, argv: list[str]) -> None:
    """`doit test:99_nothing` -> one line naming the closest real tasks."""
    for arg in argv:
        kind, colon, name = arg.partition(":")
        if colon and kind in ("test", "export") and name not in graph.modules:
            close = suggest(name, graph.modules).replace("(did you mean ", f"(did you mean {kind}:")
            raise InvalidDodoFile(f"unknown task '{arg}'{close.replace(', ', f', {kind}:')}")


def positive_int(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise InvalidDodoFile(f"{name}={value}: expected a whole number >= 1")
    return int(value)


def doit_workers(argv: list[str] | None = None) -> int:
    """The -n/--process value of this doit command line (default: the CPU count)."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        value = None
        if arg in ("-n", "--process") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--process="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-n") and arg[2:].isdigit():
            value = arg[2:]
        if value and value.isdigit():
            return int(value)
    return os.cpu_count() or 1
