"""Honest counts: a test that never ran (-x, --maxfail, an interrupt) is "not run", never a
failure, and gets no rerun line; a run that left tests unrun never passes (fail closed)."""
from __future__ import annotations

import json
import re

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped  # a dev dependency

from orchestrator.cache import keys, store
from orchestrator.cache.store import Cause, InvalidResult, Result, Status, Store, consistency
from orchestrator.core.graph import load
from orchestrator.report import ci_report, junit
from orchestrator.run import runner
from orchestrator.run.pytest_plugin import export_all

THREE = ("def test_a():\n    assert 2 * 3 == 7, 'first fails'\n\n\n"
         "def test_b():\n    pass\n\n\n"
         "def test_c():\n    pass\n")
TWO_FAIL = ("def test_a():\n    assert 0, 'first fails'\n\n\n"
            "def test_b():\n    assert 0, 'second fails'\n\n\n"
            "def test_c():\n    pass\n")
FILE = "tests/03_mul/test_mul_core.py"


def failed_line(run, module: str) -> str:
    return next(line for line in run.stdout.splitlines() if line.startswith(f"FAILED {module}"))


def reruns(run) -> list[str]:
    return re.findall(r"^      rerun: (.*)$", run.stdout, re.M)


# --- the whole loop: doit, the reporter's lines ---------------------------------------
def test_exitfirst_says_failed_and_not_run_with_one_rerun_line(project):
    project.write(project.test_file("03_mul"), THREE)
    run = project.doit("test:03_mul", "pytest=-x")
    assert run.returncode == 1, run.stdout + run.stderr
    assert failed_line(run, "03_mul").startswith(
        "FAILED 03_mul: 1 failed, 2 not run (-x) in "), run.stdout
    (rerun,) = reruns(run)
    assert f"{FILE}::test_a " in rerun + " "
    assert "test_b" not in run.stdout and "test_c" not in run.stdout


def test_maxfail_names_its_number(project):
    project.write(project.test_file("03_mul"), TWO_FAIL)
    run = project.doit("test:03_mul", "pytest=--maxfail=2")
    assert run.returncode == 1, run.stdout + run.stderr
    assert failed_line(run, "03_mul").startswith(
        "FAILED 03_mul: 2 failed, 1 not run (--maxfail=2) in "), run.stdout
    assert [re.search(r"::(test_\w+)", r).group(1) for r in reruns(run)] == ["test_a", "test_b"]


def test_everything_ran_passed_but_tests_were_not_run_is_a_failure(project):
    """pytest.exit(returncode=0) after one pass: pytest says 0, the orchestrator says no."""
    project.write(project.test_file("03_mul"),
                  "import pytest\n\n\ndef test_a():\n    pass\n\n\n"
                  "def test_b():\n    pytest.exit('enough', returncode=0)\n\n\n"
                  "def test_c():\n    pass\n")
    run = project.doit("test:03_mul")
    assert run.returncode == 1, run.stdout + run.stderr
    assert failed_line(run, "03_mul").startswith(
        "FAILED 03_mul: 2 of 3 not run (interrupted) in "), run.stdout
    assert reruns(run) == []
    again = project.doit("test:03_mul")         # a failure is never reused
    assert again.statuses["03_mul"] == "FAILED"


# --- the runner, under both launchers ---------------------------------------------------
def test_runner_counts_not_run_apart_from_failures(project, run):
    result = run(project, "03_mul", THREE, args=["-x"])
    assert result.status is Status.FAILED and result.cause is Cause.TESTS_FAILED
    assert result.counts == {"failed": 1, "not run": 2}
    assert result.reason == "1 failed, 2 not run (-x)"
    assert [f["nodeid"] for f in result.failures] == [f"{FILE}::test_a"]
    assert result.tests[f"{FILE}::test_b"] == {
        "outcome": "not run", "duration": 0.0, "markers": [], "covers": [],
        "stopped_by": "-x"}


def test_a_keyboard_interrupt_in_a_test_is_not_run_interrupted(project, run):
    result = run(project, "03_mul", "def test_a():\n    pass\n\n\n"
                                    "def test_b():\n    raise KeyboardInterrupt\n\n\n"
                                    "def test_c():\n    pass\n")
    assert result.cause is Cause.NOT_RUN
    assert result.counts == {"passed": 1, "not run": 2}
    assert result.reason == "2 of 3 not run (interrupted)"
    assert result.failures == []


def test_session_shouldstop_is_interrupted(project, run):
    result = run(project, "03_mul", "def test_a(request):\n"
                                    "    request.session.shouldstop = 'a plugin had enough'\n\n\n"
                                    "def test_b():\n    pass\n")
    assert result.cause is Cause.NOT_RUN
    assert result.reason == "1 of 2 not run (interrupted)"


def test_flaky_attempts_do_not_retry_a_run_that_left_tests_unrun(project, launcher):
    """A retry cannot make it pass, and would replace the failure that stopped pytest."""
    project.write(project.test_file("03_mul"), THREE)
    graph = load(project.root)
    assert export_all(graph) == {}
    module = graph["03_mul"]
    result = runner.run_module(graph, module, keys.declared(graph, module, ["-x"]), ["-x"],
                               flaky_attempts=3, launcher=launcher)
    assert result.reason == "1 failed, 2 not run (-x)"
    assert result.flaky == []


def test_xdist_exitfirst_counts_not_run(project):
    pytest.importorskip("xdist")
    body = "import time\n\n\ndef test_0():\n    assert 0\n\n\n" + "".join(
        f"def test_{i}():\n    time.sleep(0.2)\n\n\n" for i in range(1, 30))
    project.write(project.test_file("03_mul"), body)
    graph = load(project.root)
    assert export_all(graph) == {}
    module = graph["03_mul"]
    args = ["-x", "-p", "xdist", "-n", "2"]
    result = runner.run_module(graph, module, keys.declared(graph, module, args), args)
    assert re.fullmatch(r"1 failed, \d+ not run \(-x\)", result.reason), result.reason
    assert result.counts["not run"] > 0
    assert [f["nodeid"] for f in result.failures] == [f"{FILE}::test_0"]


# --- judging, unit ---------------------------------------------------------------------
class Module:
    """What judge_outcomes and retryable read of a graph.Module."""
    def __init__(self, module_id: str = "03_mul"):
        self.id, self.flaky = module_id, []


def judged(tests: dict, exitstatus: int, module: str = "03_mul") -> Result:
    result = Result(module=module, status=Status.FAILED, cause=Cause.NO_REPORT, reason="",
                    key=module[:2] * 32, inputs={}, tests=tests, exitstatus=exitstatus,
                    duration=1.0, log=f".orchestrator/logs/{module}.log")
    return runner.judge_outcomes(result, Module(module))


def test_judge_outcomes_exitfirst():
    result = judged({"t::a": {"outcome": "failed", "message": "AssertionError: no"},
                     "t::b": {"outcome": "not run", "stopped_by": "-x"},
                     "t::c": {"outcome": "not run", "stopped_by": "-x"}}, exitstatus=1)
    assert result.status is Status.FAILED and result.cause is Cause.TESTS_FAILED
    assert result.counts == {"failed": 1, "not run": 2}
    assert result.counts[store.Outcome.NOT_RUN] == 2
    assert result.reason == "1 failed, 2 not run (-x)"
    assert result.failures == [{"nodeid": "t::a", "message": "AssertionError: no"}]
    assert runner.retryable(result, Module(), flaky_attempts=3, tries=1) == []


def test_judge_outcomes_all_that_ran_passed_is_still_a_failure():
    result = judged({"t::a": {"outcome": "passed"},
                     "t::b": {"outcome": "not run", "stopped_by": "interrupted"}}, exitstatus=0)
    assert result.status is Status.FAILED and result.cause is Cause.NOT_RUN
    assert result.reason == "1 of 2 not run (interrupted)"
    assert result.failures == []
    assert not result.cause.retryable


def test_judge_outcomes_not_run_for_no_known_reason_still_fails():
    result = judged({"t::a": {"outcome": "passed"}, "t::b": {"outcome": "not run"}},
                    exitstatus=0)
    assert result.cause is Cause.NOT_RUN and result.reason == "1 of 2 not run"


def test_judge_outcomes_without_not_run_keeps_the_old_line():
    result = judged({"t::a": {"outcome": "failed"}, "t::b": {"outcome": "passed"}}, 1)
    assert result.reason == "1 of 2 failed" and result.cause is Cause.TESTS_FAILED


def test_a_stored_pass_with_tests_not_run_is_refused():
    result = judged({"t::a": {"outcome": "passed"},
                     "t::b": {"outcome": "not run", "stopped_by": "-x"}}, exitstatus=0)
    result.status, result.cause, result.reason = Status.PASSED, Cause.NONE, ""
    assert consistency(result) == "status passed but some of its tests did not run"
    with pytest.raises(InvalidResult):
        Result.from_dict(json.loads(result.to_json()))


# --- reports ---------------------------------------------------------------------------
def saved(into: Store, module: str, tests: dict, exitstatus: int) -> Result:
    result = judged(tests, exitstatus, module)
    into.save(result)
    return result


def test_junit_not_run_is_skipped_naming_why(tmp_path):
    results = Store(tmp_path)
    saved(results, "03_mul", {"t.py::a": {"outcome": "failed", "message": "AssertionError"},
                              "t.py::b": {"outcome": "not run", "stopped_by": "-x"},
                              "t.py::c": {"outcome": "not run", "stopped_by": "-x"}}, 1)
    saved(results, "04_pow", {"t.py::a": {"outcome": "passed"},
                              "t.py::b": {"outcome": "not run",
                                          "stopped_by": "interrupted"}}, 2)
    targets = ci_report.gather(tmp_path, {"03_mul": "failed", "04_pow": "failed"}, {})
    suites = {s.name: s for s in JUnitXml.fromstring(junit.junit_xml(targets).encode())}
    cases = {c.name: c for c in suites["03_mul"]}
    assert [type(r) for r in cases["b"].result] == [Skipped]
    assert cases["b"].result[0].message == "not run (-x)"
    assert [type(r) for r in cases["a"].result] == [Failure]
    assert (suites["03_mul"].failures, suites["03_mul"].errors,
            suites["03_mul"].skipped) == (1, 0, 2)
    # fail closed: a suite whose tests all passed or were not run still shows an error
    pow_cases = {c.name: c for c in suites["04_pow"]}
    assert pow_cases["b"].result[0].message == "not run (interrupted)"
    (error,) = [r for c in suites["04_pow"] for r in c.result if isinstance(r, Error)]
    assert error.message == "1 of 2 not run (interrupted)"


def test_summary_and_annotations_list_no_not_run_test(tmp_path):
    results = Store(tmp_path)
    saved(results, "03_mul", {"t.py::a": {"outcome": "failed", "message": "AssertionError"},
                              "t.py::b": {"outcome": "not run", "stopped_by": "-x"}}, 1)
    targets = ci_report.gather(tmp_path, {"03_mul": "failed"}, {})
    table = ci_report.summary_markdown(targets)
    assert "| 03_mul | FAILED | 1 failed, 1 not run (-x) | 1.0s |" in table
    assert "t.py::b" not in table
    assert len(ci_report.github_annotations(targets)) == 1
