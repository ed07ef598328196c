"""Reports for CI: merged JUnit XML (checked with a real parser), GitHub workflow commands
(checked against GitHub's documented syntax and escaping) and the step-summary table."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped  # a dev dependency

from orchestrator.cache.store import Cause, Result, Status, Store
from orchestrator.report import ci_report, junit
from orchestrator.report.status import load_last_run

from .conftest import TESTS

# GitHub's documented workflow command: ::command name=value,name=value::message, where
# a property value escapes % \r \n : , as %25 %0D %0A %3A %2C and the message % \r \n.
PROPERTY = r"[A-Za-z]+=(?:[^%,:\r\n]|%25|%0D|%0A|%3A|%2C)*"
WORKFLOW_COMMAND = re.compile(
    rf"^::(?P<command>error|warning|notice)(?: (?P<props>{PROPERTY}(?:,{PROPERTY})*))?"
    r"::(?P<message>(?:[^%\r\n]|%25|%0D|%0A)*)$")


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """(command, properties, message), unescaped as GitHub's runner does."""
    match = WORKFLOW_COMMAND.match(line)
    assert match, f"not a documented workflow command: {line!r}"

    def unescape(value: str) -> str:
        for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","),
                              ("%25", "%")):
            value = value.replace(escaped, char)
        return value
    props = {}
    if match.group("props"):
        for pair in match.group("props").split(","):
            name, _, value = pair.partition("=")
            props[name] = unescape(value)
    return match.group("command"), props, unescape(match.group("message"))


def counts(suite) -> tuple[int, int, int, int]:
    """(tests, failures, errors, skipped) as the suite's attributes say, after checking
    they agree with its test cases."""
    cases = list(suite)
    kinds = [type(r) for case in cases for r in case.result]
    found = (len(cases), kinds.count(Failure), kinds.count(Error), kinds.count(Skipped))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == found
    return found


def properties(suite) -> dict[str, str]:
    return {p.name: p.value for p in suite.properties()}


def result(module: str, key: str, tests: dict, status=Status.PASSED, cause=Cause.NONE,
           reason="", **extra) -> Result:
    r = Result(module=module, status=status, cause=cause, reason=reason, key=key * 64,
               inputs={}, tests=tests, duration=1.5, log=f".orchestrator/logs/{module}.log",
               **extra)
    r.counts = {}
    for t in tests.values():
        r.counts[t["outcome"]] = r.counts.get(t["outcome"], 0) + 1
    r.failures = [{"nodeid": n, "message": t.get("message", t["outcome"]),
                   **{k: t[k] for k in ("path", "line") if k in t}}
                  for n, t in tests.items() if t["outcome"] in ("failed", "error", "xpassed",
                                                                "not run")]
    r.failures += extra.get("collection_errors", [])
    return r


def parse(text: str):
    return JUnitXml.fromstring(text.encode("utf-8"))


# --- JUnit from stored results -----------------------------------------------------------
def test_each_outcome_maps_to_its_junit_element(tmp_path):
    tests = {
        "tests/05_x/test_x_core.py::test_ok": {"outcome": "passed", "duration": 0.25},
        "tests/05_x/test_x_core.py::TestY::test_bad[a-b]": {
            "outcome": "failed", "duration": 0.5, "message": "AssertionError: 1 != 2\nmore",
            "path": "tests/05_x/test_x_core.py", "line": 12},
        "tests/05_x/test_x_core.py::test_setup": {"outcome": "error", "message": "fixture"},
        "tests/05_x/test_x_core.py::test_skip": {"outcome": "skipped"},
        "tests/05_x/test_x_core.py::test_xfail": {"outcome": "xfailed"},
        "tests/05_x/test_x_core.py::test_xpass": {"outcome": "xpassed"},
    }
    Store(tmp_path).save(result("05_x", "a", tests, Status.FAILED, Cause.TESTS_FAILED,
                                "3 of 6 failed"))
    targets = ci_report.gather(tmp_path, {"05_x": "failed"}, {})
    xml = parse(junit.junit_xml(targets))
    (suite,) = list(xml)
    assert suite.name == "05_x"
    assert counts(suite) == (6, 2, 1, 2)
    assert properties(suite)["status"] == "failed"
    assert properties(suite)["cause"] == "tests failed"
    assert suite.time == 1.5
    by_name = {case.name: case for case in suite}
    bad = by_name["test_bad[a-b]"]
    assert bad.classname == "tests.05_x.test_x_core.TestY"
    assert bad.time == 0.5
    (failure,) = bad.result
    assert failure.message == "AssertionError: 1 != 2"
    assert failure.text.startswith("tests/05_x/test_x_core.py:12: AssertionError: 1 != 2\nmore")
    assert bad._elem.get("file") == "tests/05_x/test_x_core.py"
    assert bad._elem.get("line") == "12"
    assert by_name["test_ok"].is_passed and by_name["test_ok"].classname == \
        "tests.05_x.test_x_core"


def test_a_failure_no_test_shows_gets_a_test_case_with_the_reason(tmp_path):
    """A crash, nothing collected, everything skipped: a JUnit reader must see an error."""
    store = Store(tmp_path)
    store.save(result("01_a", "a", {}, Status.FAILED, Cause.NO_TESTS,
                      "no tests collected for 01_a"))
    store.save(result("02_b", "b", {"tests/02_b/test_b.py::t": {"outcome": "skipped"}},
                      Status.FAILED, Cause.ALL_SKIPPED, "no test of 02_b ran (all 1 skipped)"))
    store.save(result("03_c", "c", {"tests/03_c/test_c.py::t": {"outcome": "not run"}},
                      Status.FAILED, Cause.CRASHED, "crashed: pytest was killed by SIGSEGV"))
    store.save(result("04_d", "d", {}, Status.FAILED, Cause.COLLECTION_ERROR,
                      "ImportError while collecting tests/04_d/test_d.py",
                      collection_errors=[{"nodeid": "tests/04_d/test_d.py",
                                          "message": "ImportError: no x",
                                          "path": "tests/04_d/test_d.py", "line": 1}]))
    statuses = {m: "failed" for m in ("01_a", "02_b", "03_c", "04_d", "05_gone")}
    suites = {s.name: s for s in parse(junit.junit_xml(
        ci_report.gather(tmp_path, statuses, {})))}
    assert counts(suites["01_a"]) == (1, 0, 1, 0)
    assert next(iter(suites["01_a"])).result[0].message == "no tests collected for 01_a"
    assert counts(suites["02_b"]) == (2, 0, 1, 1)
    assert counts(suites["03_c"]) == (1, 0, 1, 0)
    assert "SIGSEGV" in next(iter(suites["03_c"])).result[0].message
    assert counts(suites["04_d"]) == (1, 0, 1, 0)
    assert next(iter(suites["04_d"])).result[0].message == "ImportError: no x"
    assert counts(suites["05_gone"]) == (1, 0, 1, 0)       # failed, nothing stored


def test_cached_suites_carry_the_reused_run_with_time_zero(tmp_path):
    store = Store(tmp_path)
    old = result("01_a", "a", {"tests/01_a/test_a.py::t1": {"outcome": "passed",
                                                           "duration": 0.7}})
    old.finished = time.time() - 3600
    store.save(old)
    newer = result("01_a", "b", {"tests/01_a/test_a.py::t2": {"outcome": "passed"}})
    os.utime(store.save(newer), (old.finished + 60,) * 2)     # saved by an earlier run
    # the run reused the older result (another pytest="..." than the newer one)
    store.lookup("01_a", lambda r: r.key == "a" * 64)
    (suite,) = parse(junit.junit_xml(ci_report.gather(tmp_path, {"01_a": "cached"}, {})))
    assert counts(suite) == (1, 0, 0, 0)
    assert [c.name for c in suite] == ["tests/01_a/test_a.py::t1".split("::")[1]]
    assert suite.time == 0 and next(iter(suite)).time == 0
    props = properties(suite)
    assert props["cached"] == "true" and props["status"] == "cached"
    assert props["stored_duration"] == "1.500" and props["key"] == "a" * 64


def test_blocked_suites_are_one_skipped_case_naming_the_blocker(tmp_path):
    targets = ci_report.gather(tmp_path, {"04_power": "blocked"},
                               {"04_power": ["02_add", "03_mul"]})
    (suite,) = parse(junit.junit_xml(targets))
    assert counts(suite) == (1, 0, 0, 1)
    (case,) = suite
    assert case.name == "test:04_power" and case.classname == "04_power"
    assert case.result[0].message == "blocked by 02_add, 03_mul"
    assert properties(suite) == {"status": "blocked", "cached": "false",
                                 "blocked_by": "02_add, 03_mul"}


def test_characters_xml_cannot_carry_are_escaped(tmp_path):
    message = "AssertionError: \x1b[31mred\x1b[0m <&> \"q\" \x00"
    tests = {"tests/01_a/test_a.py::t": {"outcome": "failed", "message": message}}
    Store(tmp_path).save(result("01_a", "a", tests, Status.FAILED, Cause.TESTS_FAILED, "1 of 1"))
    xml = junit.junit_xml(ci_report.gather(tmp_path, {"01_a": "failed"}, {}))
    (suite,) = parse(xml)
    assert next(iter(suite)).result[0].message == \
        'AssertionError: #x1B[31mred#x1B[0m <&> "q" #x00'


def test_order_statuses_and_flaky_narrowed_properties(tmp_path):
    store = Store(tmp_path)
    store.save(result("10_b", "b", {"tests/10_b/test.py::t": {"outcome": "passed"}},
                      flaky=["tests/10_b/test.py::t"]))
    store.save(result("02_a", "a", {"tests/02_a/test.py::t": {"outcome": "passed"}},
                      selected=1, collected=5))
    targets = ci_report.gather(tmp_path, {"10_b": "passed", "02_a": "passed",
                                          "03_x": "ignored"}, {})
    suites = list(parse(junit.junit_xml(targets)))
    assert [s.name for s in suites] == ["02_a", "10_b"]
    assert properties(suites[0])["selected"] == "1"
    assert properties(suites[1])["flaky"] == "tests/10_b/test.py::t"
    table = ci_report.summary_markdown(targets)
    assert "| 02_a | PASSED | 1 of 5 selected | 1.5s |" in table
    assert "| 10_b | FLAKY (1 passed on a retry) | 1 tests | 1.5s |" in table



def test_xml_library_is_imported_only_for_a_junit_report():
    """Every doit run ends in after_run: without junit=FILE it must not pay for xml.etree."""
    code = ("import sys, orchestrator.report.ci_report, orchestrator.report.console; "
            "print('xml.etree.ElementTree' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(junit.__file__).parents[1],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- GitHub workflow commands ----------------------------------------------------------
@pytest.mark.parametrize("message", ["plain", "100% sure", "two\nlines\r\nand CR",
                                     "a: b, c", "%0A literal", ""])
def test_workflow_commands_follow_githubs_syntax_and_escaping(message):
    line = ci_report.workflow_command("error", message, file="dir, x/a:b.py", line=7,
                                      title="FAILED 02_add: t::x[1,2] 50%")
    command, props, text = parse_command(line)
    assert (command, text) == ("error", message)
    assert props == {"file": "dir, x/a:b.py", "line": "7",
                     "title": "FAILED 02_add: t::x[1,2] 50%"}
    assert "\n" not in line and "\r" not in line


def test_workflow_command_without_properties():
    assert ci_report.workflow_command("error", "boom", file=None) == "::error::boom"
    assert parse_command("::error::boom") == ("error", {}, "boom")


def test_annotations_rebase_paths_on_the_github_workspace(tmp_path):
    root = tmp_path / "repo" / "curriculum"
    tests = {"tests/02_add/test_add.py::test_x": {"outcome": "failed", "message": "E: 1%\n2",
                                                  "path": "tests/02_add/test_add.py",
                                                  "line": 9}}
    Store(root).save(result("02_add", "a", tests, Status.FAILED, Cause.TESTS_FAILED, "1 of 1"))
    out = io.StringIO()
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "repo"),
           "GITHUB_STEP_SUMMARY": str(summary)}
    assert ci_report.after_run(root, {"02_add": "failed"}, {}, env=env, write=out.write) == []
    (line,) = out.getvalue().splitlines()
    _, props, message = parse_command(line)
    assert props["file"] == "curriculum/tests/02_add/test_add.py" and props["line"] == "9"
    assert message == "E: 1%\n2"
    assert "| 02_add | FAILED | 1 of 1 |" in summary.read_text()


def test_markdown_cells_cannot_break_the_table():
    assert ci_report.md("a | b\n<script>") == "a \\| b &lt;script&gt;"


def test_no_github_output_outside_github_actions(tmp_path):
    out = io.StringIO()
    assert ci_report.after_run(tmp_path, {"01_a": "failed"}, {}, env={},
                               write=out.write) == []
    assert out.getvalue() == ""


def test_unwritable_files_are_reported_not_raised(tmp_path):
    (tmp_path / "no").write_text("a file where a folder should be")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "gone" / "s.md")}
    problems = ci_report.after_run(tmp_path, {"01_a": "blocked"}, {}, junit="no/r.xml",
                                   env=env, write=io.StringIO().write)
    assert [str(p) for p in problems] == [
        "cannot write the JUnit report no/r.xml: no is a file, not a folder",
        f"cannot append the step summary to {tmp_path / 'gone' / 's.md'}: "
        "No such file or directory"]
    # the report asked for fails the run (exit 3); the step summary is a warning
    assert [p.refused for p in problems] == [True, False]


def test_a_missing_junit_folder_is_created(tmp_path):
    assert ci_report.after_run(tmp_path, {"01_a": "blocked"}, {}, junit="reports/ci/r.xml",
                               env={}) == []
    assert (tmp_path / "reports" / "ci" / "r.xml").is_file()


# --- the scenario: minicalc, 02 fails, 04 blocked, 01 and 03 cached ---------------------
BROKEN = "\n\ndef test_broken():\n    assert add(1, 1) == 3, 'a deliberately wrong expectation'\n"
BROKEN_LINE = (TESTS["02_add"] + BROKEN).splitlines().index(BROKEN.splitlines()[-1]) + 1


@pytest.fixture
def failed_run(project):
    first = project.doit("all")
    assert first.returncode == 0, first.stdout + first.stderr
    project.append(project.test_file("02_add"), BROKEN)
    second = project.doit("all")
    assert second.statuses == {"01_numbers": "(cached) PASSED", "03_mul": "(cached) PASSED",
                               "02_add": "FAILED", "04_power": "BLOCKED"}, second.stdout
    return project


def check_scenario_xml(path: Path) -> None:
    suites = {s.name: s for s in JUnitXml.fromfile(str(path))}
    assert list(suites) == ["01_numbers", "02_add", "03_mul", "04_power"]
    assert counts(suites["01_numbers"]) == (1, 0, 0, 0)
    assert counts(suites["02_add"]) == (2, 1, 0, 0)
    assert counts(suites["03_mul"]) == (1, 0, 0, 0)
    assert counts(suites["04_power"]) == (1, 0, 0, 1)
    for cached in ("01_numbers", "03_mul"):
        assert properties(suites[cached])["cached"] == "true"
        assert all(case.time == 0 for case in suites[cached])
    assert properties(suites["02_add"])["cached"] == "false"
    assert next(iter(suites["04_power"])).result[0].message == "blocked by 02_add"
    broken = next(c for c in suites["02_add"] if c.name == "test_broken")
    (failure,) = broken.result
    assert isinstance(failure, Failure)
    assert "a deliberately wrong expectation" in failure.message
    assert failure.text.startswith(f"tests/02_add/test_add_core.py:{BROKEN_LINE}: ")
    xml = JUnitXml.fromfile(str(path))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (5, 1, 0, 1)


def check_annotation(stdout: str) -> None:
    lines = [line for line in stdout.splitlines() if line.startswith("::")]
    assert len(lines) == 1, stdout
    command, props, message = parse_command(lines[0])
    assert command == "error"
    assert props["file"] == "tests/02_add/test_add_core.py"
    assert props["line"] == str(BROKEN_LINE)
    assert props["title"] == "FAILED 02_add: tests/02_add/test_add_core.py::test_broken"
    assert message.startswith("AssertionError: a deliberately wrong expectation")


def check_summary(text: str) -> None:
    assert "### Executed 1 out of 4 test targets: 0 passed, 1 failed, 1 blocked, 2 cached" \
        in text
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert [r.split(" | ")[:3] for r in rows] == [
        ["| 01_numbers", "(cached) PASSED", "1 tests"],
        ["| 02_add", "FAILED", "1 of 2 failed"],
        ["| 03_mul", "(cached) PASSED", "1 tests"],
        ["| 04_power", "BLOCKED (by 02_add)", "-"]]
    assert ("**Root causes**: 1 failing module blocks 1 other: 02_add "
            "(tests/02_add/test_add_core.py: 1 test)") in text
    assert ("`tests/02_add/test_add_core.py::test_broken` "
            f"(tests/02_add/test_add_core.py:{BROKEN_LINE})") in text


def test_scenario_after_run_as_the_reporter_calls_it(failed_run):
    root = failed_run.root
    statuses = load_last_run(root)
    assert statuses == {"01_numbers": "cached", "02_add": "failed", "03_mul": "cached",
                        "04_power": "blocked"}
    out = io.StringIO()
    summary = root / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_WORKSPACE": str(root)}
    (root / "out").mkdir()
    problems = ci_report.after_run(root, statuses, {"04_power": ["02_add"]},
                                   junit="out/run.xml", env=env, write=out.write)
    assert problems == []
    check_scenario_xml(root / "out" / "run.xml")
    check_annotation(out.getvalue())
    check_summary(summary.read_text(encoding="utf-8"))


def test_scenario_report_command(failed_run, monkeypatch):
    root = failed_run.root
    plain = failed_run.orchestrator("report", "--junit", "report.xml")
    assert plain.returncode == 0, plain.stderr
    check_scenario_xml(root / "report.xml")
    check_summary(plain.stdout)
    assert "::error" not in plain.stdout
    assert plain.stdout.splitlines()[-1] == "wrote report.xml (4 test suites)"

    summary = root / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(root))
    github = failed_run.orchestrator("report", "--github")
    assert github.returncode == 0, github.stderr
    check_annotation(github.stdout)
    check_summary(summary.read_text(encoding="utf-8"))


def test_report_refuses_without_a_run_or_a_writable_file(project):
    nothing = project.orchestrator("report", "--junit", "nowhere/r.xml")
    assert nothing.returncode == 3
    assert nothing.stderr.strip() == ("error: nothing to report: no run recorded in "
                                      ".orchestrator/last_run.json (run doit first)")
    assert project.doit("test:01_numbers").returncode == 0
    made = project.orchestrator("report", "--junit", "nowhere/r.xml")   # as pytest does
    assert made.returncode == 0 and (project.root / "nowhere" / "r.xml").is_file()
    project.write("blocked", "a file where a folder should be")
    refused = project.orchestrator("report", "--junit", "blocked/r.xml")
    assert refused.returncode == 3
    assert refused.stderr.strip() == ("error: cannot write blocked/r.xml: blocked is a file, "
                                      "not a folder")


def test_report_derives_blockers_from_the_graph(project):
    """last_run.json keeps statuses only: the blocker is the failed target 04 waits for."""
    project.write(".orchestrator/last_run.json", json.dumps(
        {"finished": 0, "targets": {"02_add": "failed", "04_power": "blocked"}}))
    run = project.orchestrator("report")
    assert run.returncode == 0, run.stderr
    assert "| 04_power | BLOCKED (by 02_add) | - | - |" in run.stdout
    assert "| 02_add | FAILED | no stored result | - |" in run.stdout


def test_doit_writes_junit_when_asked(project):
    import junitparser
    assert project.doit("all").returncode == 0
    run = project.doit("all", "junit=junit.xml")
    assert run.returncode == 0, run.stdout + run.stderr
    xml = junitparser.JUnitXml.fromfile(str(project.root / "junit.xml"))
    assert sorted(suite.name for suite in xml) == ["01_numbers", "02_add", "03_mul", "04_power"]
    made = project.doit("all", "junit=no/such/folder.xml")     # the folder is created
    assert made.returncode == 0, made.stdout + made.stderr
    assert (project.root / "no" / "such" / "folder.xml").is_file()
