"""Faults the orchestrator survives: kills, interrupts, concurrent runs, corrupt state, crashes,
flakes."""
from __future__ import annotations

import queue
import signal
import sys
import threading
import time

import pytest

from orchestrator.core.lock import RunLock

from .processes import gone, wait_for_pids

# Writes its pid to {started}, then runs until {release} exists: the test waits for the
# one event and makes the other, so no guess in seconds decides where the run is.
SLOW_TEST = ("import os, pathlib, time\n\n\ndef test_slow():\n"
             "    pathlib.Path('{started}').write_text(str(os.getpid()))\n"
             "    while not pathlib.Path('{release}').exists():\n"
             "        time.sleep(0.05)\n")


def wait_for(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def stored(project, module_id: str) -> list:
    return sorted(project.state.results(module_id).glob("*.json"))


def wait_for_result(project, module_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not stored(project, module_id):
        assert time.monotonic() < deadline, f"no result of {module_id} appeared"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="dying with the parent needs prctl (Linux)")
def test_sigkill_keeps_finished_targets_and_kills_running_pytest(project, tmp_path, patience):
    started, release = tmp_path / "slow.started", tmp_path / "slow.release"
    project.write("tests/03_mul/test_slow.py", SLOW_TEST.format(started=started,
                                                                release=release))
    doit = project.start("-n", "2", "all")
    wait_for_result(project, "02_add")
    [pytest_pid] = wait_for_pids(started, count=1)   # 03_mul's pytest is inside test_slow
    doit.send_signal(signal.SIGKILL)
    doit.communicate()
    assert gone([pytest_pid], within=patience(10)), \
        "the orphaned pytest of 03_mul kept running after SIGKILL"
    assert not stored(project, "03_mul")
    release.touch()
    run = project.doit("all")
    assert run.returncode == 0, run.stdout
    assert run.statuses == {"01_numbers": "(cached) PASSED", "02_add": "(cached) PASSED",
                             "03_mul": "PASSED", "04_power": "PASSED"}


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT to send on Windows")
def test_ctrl_c_keeps_finished_targets(project, tmp_path):
    started, release = tmp_path / "slow.started", tmp_path / "slow.release"
    project.write("tests/03_mul/test_slow.py", SLOW_TEST.format(started=started,
                                                                release=release))
    doit = project.start("-n", "2", "all")
    wait_for_result(project, "02_add")
    wait_for_pids(started, count=1)             # 03_mul's pytest is inside test_slow
    doit.send_signal(signal.SIGINT)
    doit.communicate(timeout=60)
    assert doit.returncode == 130
    assert not stored(project, "03_mul")        # interrupted: never recorded as a result
    release.touch()
    run = project.doit("all")
    assert run.executed == {"03_mul", "04_power"}


def test_second_run_refuses_or_waits_while_the_first_holds_the_lock(project):
    lock = RunLock(project.state.path)
    lock.acquire()
    try:
        refused = project.doit("all", "lock=fail")
        assert refused.returncode == 3
        assert refused.stderr.startswith("ERROR: another run is in progress (pid ")
        assert len(refused.stderr.strip().splitlines()) == 1
        waiting = project.start("all")
        lines = read_until(waiting, "waiting for it to finish")   # an event, not a guess
        assert waiting.poll() is None, "the second run did not wait for the lock"
    finally:
        lock.release()
    rest, _ = waiting.communicate(timeout=120)
    out = "".join(lines) + rest
    assert waiting.returncode == 0
    assert "another run is in progress" in out and "waiting for it to finish" in out
    assert "Executed 4 out of 4 test targets: 4 passed" in out
    listing = project.doit("list")  # read-only commands never wait
    assert listing.returncode == 0


def read_until(process, text: str, timeout: float = 120) -> list[str]:
    """The lines `process` writes up to the first one holding `text` (the rest stay in
    its pipe); `timeout` is a safety net for a run that never says it."""
    lines: queue.Queue = queue.Queue()

    def read():
        for line in iter(process.stdout.readline, ""):
            lines.put(line)
            if text in line:
                return
        lines.put(None)                             # the output ended

    threading.Thread(target=read, daemon=True).start()
    got, deadline = [], time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(got)) from None
        assert line is not None, f"the output ended without {text!r}:\n" + "".join(got)
        got.append(line)
        if text in line:
            return got


def test_corrupt_result_is_set_aside_and_recomputed(project):
    assert project.doit("all").returncode == 0
    path = stored(project, "02_add")[0]
    path.write_text('{"module": "02_add", "st')
    run = project.doit("all")
    assert run.returncode == 0
    assert f"warning: .orchestrator/results/02_add/{path.name} was unreadable; set aside as " \
           f".orchestrator/corrupt/{path.name}." in run.stderr
    assert "02_add will run again" in run.stderr
    assert run.executed == {"02_add"}
    assert len(list(project.state.corrupt.iterdir())) == 1


def test_loading_dodo_writes_nothing_and_doit_keeps_no_db(project):
    listing = project.doit("list")
    assert listing.returncode == 0
    assert "test:04_power" in listing.stdout and "export:01_numbers" in listing.stdout
    assert not project.state.path.exists()
    assert project.doit("all").returncode == 0
    assert not list(project.state.path.glob("*.sqlite3*"))     # doit's db is in memory


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is POSIX's")
def test_crash_fails_one_module_and_independent_branches_go_on(project):
    project.write(project.test_file("02_add"), "import os, signal\n\n\ndef test_crash():\n"
                                               "    os.kill(os.getpid(), signal.SIGSEGV)\n")
    run = project.doit("-n", "2", "all")
    assert "FAILED 02_add: crashed: pytest was killed by SIGSEGV" in run.stdout
    assert run.statuses == {"01_numbers": "PASSED", "02_add": "FAILED", "03_mul": "PASSED",
                             "04_power": "BLOCKED"}


FLAKY_TEST = ("import pathlib\n\nCOUNTER = pathlib.Path('{counter}')\n\n\n{marker}"
              "def test_sometimes():\n"
              "    tries = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1\n"
              "    COUNTER.write_text(str(tries))\n"
              "    assert tries >= 2, 'fails on the first try only'\n")


def test_flaky_attempts_reports_flaky_not_passed(project):
    counter = project.root / "counter"
    project.write("tests/02_add/test_flaky.py", FLAKY_TEST.format(counter=counter, marker=""))
    failed = project.doit("all")
    assert failed.statuses["02_add"] == "FAILED"
    counter.unlink()
    run = project.doit("all", "flaky_attempts=2")
    assert run.returncode == 0, run.stdout
    assert "FLAKY 02_add (1 of 2 tests passed only on a retry)" in run.stdout
    assert "    flaky: tests/02_add/test_flaky.py::test_sometimes" in run.stdout
    assert "(1 of the passed flaky)" in run.summary
    status = project.orchestrator("status").stdout
    assert "flaky tests (times they failed, then passed on a retry):" in status
    assert "    1  tests/02_add/test_flaky.py::test_sometimes" in status


def test_marked_flaky_tests_are_retried_automatically(project):
    counter = project.root / "counter"
    project.write("tests/02_add/test_flaky.py",
                  "import pytest\n" + FLAKY_TEST.format(counter=counter,
                                                        marker="@pytest.mark.flaky\n"))
    project.write("pyproject.toml", project.read("pyproject.toml").replace(
        '[tool.pytest.ini_options]\n', '[tool.pytest.ini_options]\nmarkers = ["flaky: retried"]\n'))
    run = project.doit("all")
    assert run.returncode == 0, run.stdout
    assert "FLAKY 02_add" in run.stdout


def test_a_real_failure_is_never_flaky(project):
    project.append(project.test_file("02_add"), "\n\ndef test_broken():\n    assert 1 == 2\n")
    run = project.doit("all", "flaky_attempts=3")
    assert run.statuses["02_add"] == "FAILED"
    assert "FLAKY" not in run.stdout


def test_unknown_task_suggests_the_closest(project):
    run = project.doit("test:03_mull")
    assert run.returncode == 3
    assert run.stderr.strip() == "ERROR: unknown task 'test:03_mull' (did you mean test:03_mul?)"
    bad = project.doit("all", "flaky_attempts=zero")
    assert bad.returncode == 3
    assert bad.stderr.strip() == "ERROR: flaky_attempts=zero: expected a whole number >= 1"


def test_both_launchers_give_the_same_results(project):
    """The launcher is how pytest starts, not what it tests: not part of the cache key."""
    bad = project.doit("all", "launcher=lukewarm")
    assert bad.returncode == 3
    assert bad.stderr.strip() == "ERROR: launcher=lukewarm: expected one of warm, cold"
    cold = project.doit("-n", "2", "all", "launcher=cold")
    assert set(cold.statuses.values()) == {"PASSED"} and len(cold.statuses) == 4
    warm = project.doit("-n", "2", "all", "launcher=warm")
    assert set(warm.statuses.values()) == {"(cached) PASSED"}
    project.append(project.test_file("02_add"), "\n\ndef test_broken():\n    assert 1 == 2\n")
    for launcher in ("warm", "cold"):
        run = project.doit("all", f"launcher={launcher}")
        assert run.statuses["02_add"] == "FAILED" and run.statuses["04_power"] == "BLOCKED"
        assert "tests/02_add/test_add_core.py::test_broken" in run.stdout
