"""`orchestrator watch`: real edits in a minicalc checkout, a real watcher process."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.cli.watch import Watched, WatchError, doit_arguments, saved
from orchestrator.core.graph import load

from .conftest import SOURCES, DoitRun, source_text

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="watch runs doit below reaper.py's POSIX wrapper")


def slow_test(started: Path) -> str:
    """A test that says it started (an event to wait for, not a guess in seconds), then
    runs for far longer than any test waits."""
    return (f"import pathlib, time\n\n\ndef test_slow():\n"
            f"    pathlib.Path({str(started)!r}).touch()\n    time.sleep(600)\n")


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout           # a safety net: it takes a second or two
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


class Watcher:
    """`orchestrator ARGS` (a watch) in `cwd`, its output read line by line."""

    def __init__(self, project, *args: str, cwd: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args], cwd=cwd,
            env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, prefix: str, timeout: float = 120) -> list[str]:
        """The lines up to and including the next one starting with `prefix`."""
        got, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no '{prefix}' line within {timeout}s; "
                                     f"output so far:\n" + "\n".join(self.seen)) from None
            if line is None:
                raise AssertionError("the watcher ended:\n" + "\n".join(self.seen))
            got.append(line)
            self.seen.append(line)
            if line.startswith(prefix):
                return got

    def cycle(self, timeout: float = 120) -> DoitRun:
        """The next cycle's doit output, once the watcher waits again."""
        lines = self.until("== doit exited", timeout)
        return DoitRun(subprocess.CompletedProcess([], 0, "\n".join(lines) + "\n", ""))

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return code

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        self.process.stdout.close()


@pytest.fixture
def watcher(project):
    started = []

    def start(*args: str, cwd: Path | None = None) -> Watcher:
        """`orchestrator watch ARGS` in the project; `cwd`: `orchestrator ARGS` there."""
        started.append(Watcher(project, *args, cwd=cwd) if cwd else
                       Watcher(project, "watch", *args, cwd=project.root))
        return started[-1]
    yield start
    for w in started:
        w.close()


def left_in(root: Path, settle: float = 5) -> list[str]:
    """Processes still working in the checkout (doit, pytest, the warm server), after
    giving them up to `settle` seconds to go."""
    deadline = time.monotonic() + settle
    while True:
        found = []
        for name in os.listdir("/proc"):
            try:
                if name.isdigit() and Path(os.readlink(f"/proc/{name}/cwd")) == root:
                    found.append(Path(f"/proc/{name}/cmdline").read_bytes()
                                 .replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def edit_mul(project, body: str) -> None:
    _, default_exp, _ = SOURCES["03_mul"]
    project.write(project.source("03_mul"), source_text(default_exp, body))


def test_a_code_edit_reruns_the_module_and_its_dependents(project, watcher, patience):
    w = watcher()
    first = w.cycle()
    assert first.summary.startswith("Executed 4 out of 4 test targets: 4 passed")
    assert first.stdout.startswith(f"== watching {project.root} -> doit all\n")
    saved_at = time.monotonic()
    edit_mul(project, "from minicalc.numbers import number\n\n\n"
                      "def mul(a, b):\n    return number(b) * number(a)\n")
    header = w.until("== change:", timeout=30)[-1]
    assert time.monotonic() - saved_at < patience(5), "the cycle started late"
    assert header == "== change: modules/03_mul/mul_dev.py -> doit all"
    second = w.cycle()
    assert second.statuses == {"01_numbers": "(cached) PASSED", "02_add": "(cached) PASSED",
                               "03_mul": "PASSED", "04_power": "PASSED"}
    assert second.stdout.endswith("== doit exited 0; watching for changes (Ctrl-C to stop)\n")
    assert w.interrupt() == 130
    assert w.seen[-1] == "watch: stopped (Ctrl-C)"
    assert left_in(project.root, settle=patience(5)) == []


def test_a_markdown_edit_reruns_nothing_and_ctrl_c_stops_a_run(project, watcher, patience,
                                                               tmp_path):
    # from outside the checkout, with --root; a short name, as `orchestrator why` takes it
    w = watcher("--root", "minicalc", "watch", "test:4", cwd=project.root.parent)
    assert w.cycle().summary.startswith("Executed 4 out of 4 test targets: 4 passed")
    project.append(project.source("03_mul"), "\n# %% [markdown]\n# Why mul commutes.\n")
    run = w.cycle(timeout=60)
    assert run.stdout.startswith(
        "== change: modules/03_mul/mul_dev.py -> doit test:04_power\n")
    assert set(run.statuses.values()) == {"(cached) PASSED"} and len(run.statuses) == 4
    # a failure is shown, never ends the watch; Ctrl-C during a run stops it and the run
    project.write("tests/01_numbers/test_slow.py", slow_test(tmp_path / "slow.started"))
    w.until("== change: tests/01_numbers/test_slow.py", timeout=30)
    wait_for(tmp_path / "slow.started")           # doit is running 01's slow test now
    assert w.process.poll() is None
    started = time.monotonic()
    assert w.interrupt() == 130
    assert time.monotonic() - started < patience(30)                        # not 600
    assert w.seen[-1] == "watch: stopped (Ctrl-C)"
    assert left_in(project.root, settle=patience(5)) == []


def test_a_bad_target_is_one_line_and_exit_3(project):
    run = project.orchestrator("watch", "test:99_nothing")
    assert run.returncode == 3
    assert run.stderr == ("error: unknown target 'test:99_nothing' (targets: all, test:NN, "
                          "export:NN)\n")
    run = project.orchestrator("watch", "all", "stirct=1")
    assert run.returncode == 3 and len(run.stderr.splitlines()) == 1
    assert "stirct: unknown variable (did you mean strict?)" in run.stderr


def test_targets_are_checked_and_named_as_doit_names_them(project):
    graph = load(project.root)
    assert doit_arguments(graph, ()) == ["all"]
    assert doit_arguments(graph, ("03", "export:add", "test:04_power", "pytest=-x -k core")) \
        == ["test:03_mul", "export:02_add", "test:04_power", "pytest=-x -k core"]
    for bad in ("tset:03", "test:mull", "strict=maybe"):
        with pytest.raises(WatchError):
            doit_arguments(graph, (bad,))


def test_only_what_a_key_can_name_is_watched(project):
    project.write("data/table.csv", "1,2\n")
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Power"', 'title = "Power"\ninputs = ["data/table.csv"]').replace(
        'tests_dir = "tests"', 'tests_dir = "tests"\nignore = ["docs/**", "*.md"]'))
    keep = Watched(load(project.root))
    # every file of the tree is an input (tree.py) unless ignored or generated
    watched = ["modules/03_mul/mul_dev.py", "tests/02_add/test_add_core.py",
               "tests/conftest.py", "conftest.py", "graph.toml", "pyproject.toml",
               "data/table.csv", "tests/02_add/fixtures/new.json", "data/other.csv",
               "statistics.py"]
    ignored = [".orchestrator/results/02_add/x.json", "minicalc/ops/mul.py",
               "tests/02_add/__pycache__/test_add_core.cpython-311.pyc", ".git/index",
               "modules/03_mul/.mul_dev.py.swp", "modules/03_mul/mul_dev.py~",
               "modules/03_mul/4913", ".pytest_cache/v/cache/nodeids", "README.md",
               "docs/guide.txt", "../elsewhere.py"]
    assert [p for p in watched if not keep(2, str(project.root / p))] == []
    assert [p for p in ignored if keep(2, str(project.root / p))] == []
    # a temp file written and renamed within one batch is not named as a change
    source = str(project.root / "modules/03_mul/mul_dev.py")
    temp = str(project.root / "modules/03_mul/sedX1y2z3")
    assert saved({(1, temp), (3, temp), (2, source)}, keep) == ["modules/03_mul/mul_dev.py"]


def test_a_file_of_the_course_inside_the_package_is_watched_once_a_run_read_it(project):
    project.write("minicalc/helpers.py", "SIX = 6\n")
    project.append(project.test_file("03_mul"),
                   "\n\ndef test_helper():\n    from minicalc.helpers import SIX\n"
                   "    assert SIX == 6\n")
    assert project.doit("all").statuses["03_mul"] == "PASSED"
    keep = Watched(load(project.root))
    assert keep(2, str(project.root / "minicalc/helpers.py"))
    assert not keep(2, str(project.root / "minicalc/ops/mul.py"))      # generated
    assert not keep(2, str(project.root / "minicalc/__init__.py"))     # generated stub


def test_a_killed_watch_leaves_no_run_behind(project, watcher, patience, tmp_path):
    """SIGKILL gives the watch no chance to stop doit: the wrapper doit runs below
    (reaper.py --die-with) kills it and all it started."""
    w = watcher()
    w.cycle()
    project.write("tests/01_numbers/test_slow.py", slow_test(tmp_path / "slow.started"))
    w.until("== change: tests/01_numbers/test_slow.py", timeout=30)
    wait_for(tmp_path / "slow.started")
    assert left_in(project.root, settle=0) != []     # doit is running 01's slow test
    w.process.kill()
    w.process.wait(timeout=10)
    assert left_in(project.root, settle=patience(5)) == []
