"""The runner fails closed: no report, nothing collected, a crash or a timeout is a failure.

Every case runs under both launchers: a new pytest process, and a child forked from
the warm server (one server for this whole file, as one serves a whole doit run).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from orchestrator.cache.store import Cause
from orchestrator.core import graph as graph_mod
from orchestrator.run import runner

REPO = Path(__file__).resolve().parents[2]




def test_passing_module(project, run):
    result = run(project, "01_numbers")
    assert result.passed and result.reason == ""
    assert result.counts == {"passed": 1}
    assert list(result.tests) == ["tests/01_numbers/test_numbers_core.py::test_number"]


def test_nothing_collected(project, run):
    result = run(project, "03_mul", "# no tests here\n")
    assert not result.passed
    assert result.reason == "no tests collected for 03_mul"


def test_everything_skipped_is_not_a_pass(project, run):
    result = run(project, "03_mul", "import pytest\n\n\n@pytest.mark.skip(reason='later')\n"
                                    "def test_later():\n    pass\n")
    assert not result.passed
    assert result.reason == "no test of 03_mul ran (all 1 skipped)"


def test_some_skipped_still_passes(project, run):
    result = run(project, "03_mul", "import pytest\n\n\n@pytest.mark.skip(reason='no torch')\n"
                                    "def test_oracle():\n    pass\n\n\n"
                                    "def test_real():\n    assert 2 * 3 == 6\n")
    assert result.passed and result.counts == {"passed": 1, "skipped": 1}


def test_import_error_is_a_collection_failure(project, run):
    result = run(project, "03_mul", "from minicalc.ops.mul import nothing\n\n\n"
                                    "def test_x():\n    pass\n")
    assert not result.passed
    assert result.cause is Cause.COLLECTION_ERROR
    assert result.reason.startswith("ImportError: cannot import name 'nothing' from "
                                    "'minicalc.ops.mul'")
    assert result.reason.endswith(" while collecting tests/03_mul/test_mul_core.py")
    assert [f["nodeid"] for f in result.failures] == ["tests/03_mul/test_mul_core.py"]


def test_os_exit_inside_a_test(project, run):
    result = run(project, "03_mul", "import os\n\n\ndef test_exit():\n    os._exit(0)\n")
    assert not result.passed
    assert result.reason.startswith("pytest ended without a report (a test may have called "
                                    "os._exit")
    assert result.reason.endswith(": no output") or "test_mul_core.py" in result.reason


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is POSIX's")
def test_segfault_inside_a_test(project, run):
    result = run(project, "03_mul", "import os, signal\n\n\ndef test_crash():\n"
                                    "    os.kill(os.getpid(), signal.SIGSEGV)\n")
    assert not result.passed
    assert result.reason == ("crashed: pytest was killed by SIGSEGV while running "
                             "tests/03_mul/test_mul_core.py::test_crash")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is POSIX's")
def test_a_crash_names_the_test_running_not_a_longer_one_before_it(project, run):
    """The `.running` file is rewritten in place: the id of a shorter test over a longer
    one's must still read as the shorter id alone."""
    result = run(project, "03_mul", "import os, signal\n\n\n"
                                    "def test_a_long_name_that_passes_first():\n    pass\n\n\n"
                                    "def test_crash():\n"
                                    "    os.kill(os.getpid(), signal.SIGSEGV)\n")
    assert result.reason == ("crashed: pytest was killed by SIGSEGV while running "
                             "tests/03_mul/test_mul_core.py::test_crash")


def test_hanging_test_times_out_by_size_class(project, run, monkeypatch, patience):
    # the budget scales with this machine's pytest start-up: a busy machine must not time
    # out before the test even started, nor hang on the 600 s sleep
    budget = patience(3)
    monkeypatch.setitem(graph_mod.SIZE_TIMEOUTS, "small", budget)
    start = time.perf_counter()
    result = run(project, "03_mul", "import time\n\n\ndef test_hang():\n    time.sleep(600)\n")
    assert time.perf_counter() - start < 600       # it was stopped, not waited out
    assert not result.passed
    assert result.reason == (f"timed out after {budget}s (size small) while running "
                             "tests/03_mul/test_mul_core.py::test_hang")


def test_failures_carry_ids_and_messages(project, run):
    result = run(project, "03_mul", "def test_a():\n    assert 6 == 7, 'six is not seven'\n\n\n"
                                    "def test_b():\n    pass\n")
    assert result.reason == "1 of 2 failed"
    assert result.failures == [{"nodeid": "tests/03_mul/test_mul_core.py::test_a",
                                "message": "AssertionError: six is not seven\nassert 6 == 7",
                                "path": "tests/03_mul/test_mul_core.py", "line": 2}]


@pytest.mark.parametrize("last, doit_workers, cores, expected", [
    (None, 1, 2, 0),     # never measured: plain pytest
    (3.0, 1, 2, 0),      # short suite: worker start-up would cost more than it saves
    (30.0, 1, 2, 2),     # long suite, doit alone: both cores
    (30.0, 2, 2, 0),     # doit already uses both cores
    (30.0, 2, 8, 4),
])
def test_xdist_policy(last, doit_workers, cores, expected):
    assert runner.xdist_workers(last, doit_workers, cores) == expected


# --- the critical path's idle core: a module that runs alone ---------------------------------
#
# `doit -n 2` on 2 cores: cores // doit workers is 1, so the policy above never gives a
# module xdist workers, not even the last one of a run, which has the machine to itself.

@pytest.mark.parametrize("work, longest, doit_workers, cores, alone, expected", [
    (30.0, 1.0, 2, 2, True, 2),      # alone: every core, though doit has 2 workers
    (30.0, 1.0, 2, 2, False, 0),     # another target runs beside it: no spare core
    (30.0, 1.0, 2, 8, True, 8),
    (30.0, 1.0, 2, 8, False, 4),     # spare cores without running alone (as before)
    (30.0, 1.0, 1, 2, False, 2),
    (None, 0.0, 2, 2, True, 0),      # never measured: plain pytest
    (5.0, 0.1, 2, 2, True, 0),       # short: the workers' start would cost more than it saves
    (runner.XDIST_MIN_SECONDS, 0.5, 2, 2, True, 2),   # the threshold itself
    (30.0, 9.0, 2, 2, True, 0),      # one test is most of the work: xdist cannot split it
    (30.0, 9.0, 1, 2, False, 0),
    (30.0, 1.0, 2, 1, True, 0),      # one core: nothing to spread over
])
def test_a_module_that_runs_alone_gets_every_core(work, longest, doit_workers, cores, alone,
                                                   expected):
    assert runner.xdist_workers(work, doit_workers, cores, alone=alone,
                                longest=longest) == expected


@pytest.mark.parametrize("mode, alone, expected", [
    ("never", True, 0), ("never", False, 0), ("always", False, 2), ("always", True, 2)])
def test_xdist_overrides_hold_whether_or_not_a_module_runs_alone(mode, alone, expected):
    assert runner.xdist_workers(30.0, 2, 2, mode, alone=alone, longest=1.0) == expected
    assert runner.xdist_workers(None, 2, 2, mode, alone=alone) == expected


def recorded(duration: float, *test_seconds: float):
    from orchestrator.cache.store import Result, Status
    return Result(module="20_capstone", status=Status.PASSED, cause=Cause.NONE, reason="",
                  key="k", inputs={}, duration=duration,
                  tests={f"t.py::test_{i}": {"outcome": "passed", "duration": s}
                         for i, s in enumerate(test_seconds)})


def test_the_suites_time_in_one_process_whichever_way_it_last_ran():
    """A run under xdist records less wall time than its tests took one after another:
    the policy reads the longer of the two, so one xdist run (7.5 s of wall time for 12 s
    of tests) does not make the next run look short and go without workers."""
    assert runner.serial_time(None) == (None, 0.0)
    assert runner.serial_time(recorded(11.0, 4.0, 3.0, 2.5)) == (11.0, 4.0)    # one process
    assert runner.serial_time(recorded(7.5, 4.0, 4.0, 4.0)) == (12.0, 4.0)     # xdist
    assert runner.serial_time(recorded(0.4)) == (0.4, 0.0)            # no test recorded


@pytest.mark.parametrize("cores, doit_workers, xdist, expected", [
    (2, 2, 0, 1),     # two modules at once: a core each
    (2, 2, 2, 1),     # alone with every core as xdist workers: a core per worker
    (8, 2, 8, 1),
    (8, 2, 4, 1),     # spare cores: each module's 4 workers, a core each
    (8, 2, 0, 4),
    (1, 2, 0, 1),
])
def test_blas_threads_share_the_cores_among_the_processes_running(cores, doit_workers, xdist,
                                                                  expected):
    assert runner.blas_threads(cores, doit_workers, xdist) == expected


def test_a_run_collects_nothing_beside_its_module_and_all_below_it(project, run, tmp_path):
    """The folders beside the selection are skipped before pytest looks at them (the
    plugin's pytest_ignore_collect): a conftest's collection hook never sees them, and a
    folder below the module's tests is collected as before."""
    seen = tmp_path / "collected-folders.txt"
    project.write("tests/conftest.py",
                  "def pytest_collect_directory(path, parent):\n"
                  f"    with open({str(seen)!r}, 'a') as f:\n"
                  "        f.write(path.name + '\\n')\n")
    project.write("tests/03_mul/deeper/test_deeper.py", "def test_deep():\n    assert True\n")
    result = run(project, "03_mul")
    assert result.passed, result.reason
    assert "tests/03_mul/deeper/test_deeper.py::test_deep" in result.tests
    assert sorted(set(seen.read_text().split())) == ["03_mul", "deeper"]
