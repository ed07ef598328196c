"""The run as JUnit XML: one merged document of the targets ci_report gathers.

    write_junit(path, targets)   after_run(junit=FILE) and `orchestrator report --junit FILE`

Imported only where a JUnit report is asked for, so xml.etree stays off every other path.
The JUnit XML has one <testsuite> per test target the run reached, named by the module,
in curriculum order, each with a `status` property (passed, cached, failed, blocked):
  executed  the stored per-test outcomes: <failure> (failed, strict xpass), <error> (an
            error in setup or teardown, a collection error, a test left unrun for no
            recorded reason), <skipped> (skipped and xfailed, with their reason:
            message "PyTorch not installed"; and a test pytest stopped before: message
            "not run (-x)", "not run (--maxfail=2)", "not run (interrupted)"); a
            failure's file= and line= are the module source line the student wrote when
            the failure passed through it (sourcemap.py); a failed module none of whose
            tests shows why (a crash, nothing collected, all skipped, all that ran passed
            but some did not run) gets one <testcase> named test:NN with an <error>
            carrying its reason.
  cached    cached=true, and the stored per-test outcomes of the run it reused with
            time 0 (this run spent none); that run's duration and end are the properties
            stored_duration and stored_finished, its start the suite's timestamp.
  blocked   one <testcase name="test:NN"> with <skipped message="blocked by 02_add"/>,
            and the property blocked_by.
"""
from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from orchestrator.cache.store import Outcome, Result
from orchestrator.cache.tally import REASON
from orchestrator.core.files import atomic_write
from orchestrator.report.run_targets import Target, first_line, location
from orchestrator.report.status import State

# JUnit element of each stored outcome (pytest_plugin.py); None: a plain pass
ELEMENT = {Outcome.PASSED: None, Outcome.FAILED: "failure", Outcome.XPASSED: "failure",
           Outcome.ERROR: "error", Outcome.NOT_RUN: "skipped", Outcome.SKIPPED: "skipped",
           Outcome.XFAILED: "skipped"}


def junit_xml(targets: list[Target]) -> str:
    """The merged JUnit XML document of the run (see the module docstring)."""
    root = ET.Element("testsuites", name="orchestrator")
    for target in targets:
        root.append(suite(target))
    totals = {k: sum(int(s.attrib[k]) for s in root)
              for k in ("tests", "failures", "errors", "skipped")}
    root.attrib.update({k: str(v) for k, v in totals.items()})
    root.set("time", seconds(sum(float(s.attrib["time"]) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def suite(target: Target) -> ET.Element:
    result, cached = target.result, target.status is State.CACHED
    element = ET.Element("testsuite", name=target.module)
    props = {"status": target.status.value, "cached": "true" if cached else "false"}
    cases: list[ET.Element] = []
    if target.status is State.BLOCKED:
        by = ", ".join(target.blocked_by) or "a failed dependency"
        props["blocked_by"] = by
        cases.append(case(target.module, f"test:{target.module}", "skipped", f"blocked by {by}"))
    elif result is None:
        why = "no stored result of this run (see the doit output)"
        cases.append(case(target.module, f"test:{target.module}", "error", why))
    else:
        cases += [test_case(nodeid, test, result, cached) for nodeid, test in result.tests.items()]
        cases += [case(target.module, e["nodeid"], "error", e["message"], location(e))
                  for e in result.collection_errors]
        if not result.passed:
            props.update(cause=result.cause.value, reason=result.reason)
            if not any(c.find("failure") is not None or c.find("error") is not None
                       for c in cases):
                cases.append(case(target.module, f"test:{target.module}", "error", result.reason))
        props["key"] = result.key
        if result.log and not cached:   # logs/NN.log is of NN's latest run, maybe not this one
            props["log"] = result.log
        if result.narrowed:
            props.update(selected=str(result.selected), collected=str(result.collected))
        if result.flaky:
            props["flaky"] = " ".join(result.flaky)   # passed, but only on a retry
        started = datetime.datetime.fromtimestamp(result.finished - result.duration)
        element.set("timestamp", started.isoformat(timespec="seconds"))
        if cached:
            props["stored_duration"] = seconds(result.duration)
            props["stored_finished"] = datetime.datetime.fromtimestamp(
                result.finished).isoformat(timespec="seconds")
    properties = ET.SubElement(element, "properties")
    for name, value in props.items():
        ET.SubElement(properties, "property", name=name, value=text(value))
    element.extend(cases)
    counts = {kind: sum(1 for c in cases if c.find(kind) is not None)
              for kind in ("failure", "error", "skipped")}
    took = 0.0 if cached or result is None else result.duration
    element.attrib.update(tests=str(len(cases)), failures=str(counts["failure"]),
                          errors=str(counts["error"]), skipped=str(counts["skipped"]),
                          time=seconds(took))
    return element


def test_case(nodeid: str, test: dict, result: Result, cached: bool) -> ET.Element:
    outcome = test.get("outcome", "")
    kind = ELEMENT.get(outcome, "error")
    message = test.get("message") or test.get(REASON) or {
        Outcome.XFAILED: "xfailed", Outcome.SKIPPED: "skipped",
        Outcome.XPASSED: "xpassed (strict)"}.get(outcome, outcome)
    if outcome == Outcome.NOT_RUN:
        kind, message = not_run(test, result)
    element = case(None, nodeid, kind, message, location(test))
    element.set("time", seconds(0.0 if cached else test.get("duration", 0.0)))
    return element


def not_run(test: dict, result: Result) -> tuple[str, str]:
    """A test pytest stopped before is skipped, naming why ("not run (-x)"): it did not
    fail, and its suite's failure is shown by the test that did, or by test:NN. One with
    no recorded reason (a result stored before reasons were, a crash) stays an error."""
    if test.get("stopped_by"):
        return "skipped", f"not run ({test['stopped_by']})"
    return "error", f"not run: {result.reason}"


def case(classname: str | None, nodeid: str, kind: str | None, message: str = "",
         where: str = "") -> ET.Element:
    """A <testcase>; `kind` adds a failure, error or skipped child with `message`."""
    derived, name = split_nodeid(nodeid)
    element = ET.Element("testcase", classname=classname or derived, name=text(name),
                         time=seconds(0))
    path = nodeid.split("::")[0]
    if path.endswith(".py"):
        element.set("file", text(path))
    if where:
        element.set("file", text(where.rsplit(":", 1)[0]))
        element.set("line", where.rsplit(":", 1)[1])
    if kind:
        child = ET.SubElement(element, kind, message=text(first_line(message)))
        if kind != "skipped":
            child.text = text(f"{where}: {message}" if where else message)
    return element


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """pytest's junitxml naming: 'tests/02_add/test_add.py::TestX::test_y[1]' ->
    ('tests.02_add.test_add.TestX', 'test_y[1]')."""
    head, bracket, params = nodeid.partition("[")
    parts = head.split("::")
    path = parts[0].removesuffix(".py").replace("/", ".")
    if len(parts) == 1:
        return path, nodeid
    return ".".join([path, *parts[1:-1]]), parts[-1] + bracket + params


def seconds(value: float) -> str:
    return f"{value:.3f}"


# XML 1.0 cannot carry these at all (pytest's junitxml escapes them the same way)
ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: str) -> str:
    return ILLEGAL_XML.sub(lambda m: f"#x{ord(m.group()):02X}", str(value))


def write_junit(path: Path, targets: list[Target]) -> None:
    atomic_write(Path(path), junit_xml(targets))
