"""Meaning travels in types, never in words: how a pytest process ended (launch.py's
TimedOut, Crashed), a target's state (status.State, the words last_run.json keeps), what
went wrong in a run (console.Trouble, mapped to its exit code in one place), and a test's
outcome as pytest's own hook words it. And a plain `pytest` imports only what every run
needs of the orchestrator."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.cache import keys
from orchestrator.cache.store import Cause, Outcome, Result, Status
from orchestrator.core.graph import load
from orchestrator.report import run_context, status
from orchestrator.report.console import EXIT_OF, Reporter, Trouble, Unrecorded
from orchestrator.report.run_context import Exit
from orchestrator.report.status import RECORDED, State
from orchestrator.run import launch, runner
from orchestrator.run.launch import ColdLauncher, Crashed, TimedOut
from orchestrator.run.pytest_plugin import export_all, outcome_of

REPO = Path(__file__).resolve().parents[2]


# --- how a pytest process ended -----------------------------------------------------------
def judged(ending, tmp_path: Path) -> Result:
    result = Result(module="03_mul", status=Status.FAILED, cause=Cause.NO_REPORT, reason="",
                    key="", inputs={})
    module = SimpleNamespace(id="03_mul", size="small", flaky=[], tests=Path("tests/03_mul"))
    return runner.judge(result, module, tmp_path / "03_mul.json", ending, tmp_path / "log")


def test_a_timeout_is_judged_by_its_type(tmp_path):
    result = judged(TimedOut(2.5), tmp_path)
    assert result.cause is Cause.TIMED_OUT
    assert result.reason == "timed out after 2.5s (size small)"


def test_a_crash_that_speaks_of_timing_out_is_a_crash(tmp_path):
    (tmp_path / "03_mul.running").write_text("tests/03_mul/test_x.py::test_y")
    result = judged(Crashed("the warm pytest server timed out"), tmp_path)
    assert result.cause is Cause.CRASHED
    assert result.reason == ("crashed: the warm pytest server timed out while running "
                             "tests/03_mul/test_x.py::test_y")


def test_an_exit_code_tells_a_crash_or_nothing():
    assert launch.crash_reason(0) is None and launch.crash_reason(1) is None
    assert launch.crash_reason(-11) == Crashed("pytest was killed by SIGSEGV")
    assert str(launch.crash_reason(-11)) == "crashed: pytest was killed by SIGSEGV"
    assert str(TimedOut(3)) == "timed out after 3s"


def test_a_timeout_log_line_and_result_say_the_same_words(tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setattr(launch, "kill_group", lambda *args, **kwargs: None)   # no signal
    launch.stop(123456789, lambda within: True, 4, log)        # and it ended at once
    assert log.read_text() == f"\norchestrator: {TimedOut(4)}; interrupting pytest\n"


# --- a target's state -----------------------------------------------------------------------
def test_states_are_their_words():
    assert [s.value for s in State] == ["passed", "cached", "failed", "blocked", "never run",
                                        "stale"]
    assert f"{State.NEVER_RUN:<10}|" == "never run |" and str(State.CACHED) == "cached"
    assert set(RECORDED) == {State.PASSED, State.CACHED, State.FAILED, State.BLOCKED}
    assert [s for s in State if s.reusable] == [State.PASSED, State.CACHED]


def test_last_run_keeps_words_and_an_old_file_loads(tmp_path):
    status.record_run(tmp_path, {"01_a": State.PASSED, "02_b": State.BLOCKED}, ["-x"])
    data = json.loads(status.last_run_path(tmp_path).read_text())
    assert data["targets"] == {"01_a": "passed", "02_b": "blocked"}
    # a file written before State (or by hand): words load as States, and one that names
    # no state a run records is as if that run had not reached the module
    status.last_run_path(tmp_path).write_text(json.dumps(
        {"targets": {"01_a": "cached", "02_b": "failed", "03_c": "ignored", "04_d": 7}}))
    loaded = status.load_last_run(tmp_path)
    assert loaded == {"01_a": State.CACHED, "02_b": State.FAILED}
    assert all(type(s) is State for s in loaded.values())
    status.record_run(tmp_path, {"03_c": State.CACHED})
    assert json.loads(status.last_run_path(tmp_path).read_text())["targets"] == \
        {"01_a": "cached", "02_b": "failed", "03_c": "cached"}


# --- what went wrong in a run, and its exit code ---------------------------------------------
@pytest.fixture
def reporter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_context.begin(1)
    yield Reporter(io.StringIO(), {})
    run_context.begin(1)


def test_every_trouble_has_an_exit_code():
    assert set(EXIT_OF) == set(Trouble)
    assert Exit.OK not in EXIT_OF.values()


@pytest.mark.parametrize("troubles, code", [
    ((), Exit.OK),
    ((Trouble.FAILED,), Exit.FAILED),
    ((Trouble.BLOCKED,), Exit.FAILED),
    ((Trouble.FAILED, Trouble.ERROR), Exit.ERROR),
    ((Trouble.ERROR, Trouble.REPORT), Exit.BAD_INPUT),
    ((Trouble.FAILED, Trouble.BAD_INPUT), Exit.BAD_INPUT),
])
def test_the_worst_trouble_decides_the_exit_code(reporter, troubles, code):
    reporter.troubles.update(troubles)
    assert reporter.exit_code() is code


def test_a_blocked_target_fails_the_run_and_an_ignored_one_does_not(reporter):
    reporter.settle("01_a", Unrecorded.IGNORED)
    reporter.settle("02_b", State.CACHED)
    assert reporter.exit_code() is Exit.OK
    reporter.settle("03_c", State.BLOCKED)
    assert reporter.exit_code() is Exit.FAILED


def test_bad_input_and_an_interrupt_outrank_the_rest(reporter):
    reporter.troubles.add(Trouble.ERROR)
    reporter.context.refuse("bad pytest arguments: --bogus")
    assert reporter.exit_code() is Exit.BAD_INPUT
    reporter.context.interrupt()
    assert reporter.exit_code() is Exit.INTERRUPTED


# --- a test's outcome, as pytest's hook words it ---------------------------------------------
def report(category, outcome="passed", when="call"):
    """A test report whose pytest_report_teststatus category is `category` (None: no plugin
    words it)."""
    said = None if category is None else (category, "?", category.upper())
    config = SimpleNamespace(hook=SimpleNamespace(
        pytest_report_teststatus=lambda report, config: said))
    return SimpleNamespace(outcome=outcome, when=when, passed=outcome == "passed",
                           failed=outcome == "failed", skipped=outcome == "skipped"), config


@pytest.mark.parametrize("category, outcome, when, expected", [
    ("passed", "passed", "call", Outcome.PASSED),
    ("xfailed", "skipped", "call", Outcome.XFAILED),
    ("xpassed", "passed", "call", Outcome.XPASSED),
    ("error", "failed", "setup", Outcome.ERROR),
    ("", "passed", "setup", None),             # a setup that passed says nothing of the test
    ("xfailed", "passed", "call", Outcome.XFAILED),    # a plugin's word is honoured
    ("rerun", "rerun", "call", None),          # pytest-rerunfailures: another report follows
    ("subtests passed", "passed", "call", Outcome.PASSED),  # a word of a plugin's own
    ("flaky", "failed", "call", Outcome.FAILED),        # ... for a report pytest counts failed
    ("flaky", "failed", "teardown", Outcome.ERROR),
    ("not run", "failed", "call", Outcome.FAILED),      # our word alone: never pytest's
    (None, "skipped", "setup", Outcome.SKIPPED),        # no plugin worded it
])
def test_outcome_of_asks_pytests_hook(category, outcome, when, expected):
    assert outcome_of(*report(category, outcome, when)) is expected


def test_a_test_whose_subtest_failed_is_failed(project):
    """Through pytest's own hook: a passed subtest's report says nothing of its test (its
    category is ""), a failed one fails it, and the test's own report (worded failed by
    subtests' pytest_report_teststatus) has the last word."""
    project.write(project.test_file("03_mul"), (
        "from minicalc.ops.mul import mul\n\n\n"
        "def test_mul(subtests):\n"
        "    for n in (1, 2):\n"
        "        with subtests.test(n=n):\n"
        "            assert mul(n, 2) == 4\n"))
    graph = load(project.root)
    assert export_all(graph) == {}
    module = graph["03_mul"]
    result = runner.run_module(graph, module, keys.declared(graph, module, []), [],
                               launcher=ColdLauncher())
    nodeid = "tests/03_mul/test_mul_core.py::test_mul"
    assert result.cause is Cause.TESTS_FAILED, result.reason
    assert result.tests[nodeid]["outcome"] == Outcome.FAILED


# --- a plain pytest imports little of the orchestrator ---------------------------------------
def test_plain_pytest_imports_only_what_every_run_needs():
    """Importing the plugin (what `pytest -p orchestrator.run.pytest_plugin` does first)
    loads observation, the closure guard and launch.py's names, never the runner, the
    store or the keys: those are imported where the runner's runs or a failure need them."""
    probe = ("import json, sys, orchestrator.run.pytest_plugin\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('orchestrator'))))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={**env, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        "orchestrator", "orchestrator.run", "orchestrator.run.closure_guard",
        "orchestrator.run.launch", "orchestrator.run.observe",
        "orchestrator.run.pytest_plugin", "orchestrator.run.reaper"]
