"""Run one module's tests in its own pytest process and turn the report into a Result.

Fail closed: a Result says "passed" only when pytest's JSON report (written by
orchestrator.pytest_plugin) shows at least one test that ran and none that
failed. No report, nothing collected, a crash, a signal or a timeout is a failure
with a one-line reason.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .graph import Module, ModuleGraph
from .pytest_plugin import REPORT_ENV
from .store import Result, state_dir

FAILED_OUTCOMES = ("failed", "error", "xpassed", "not run")
XDIST_MIN_SECONDS = 10.0   # below this, xdist's ~0.5 s per worker start costs more than it saves


def run_module(graph: ModuleGraph, module: Module, inputs: dict[str, str], key: str,
               pytest_args: list[str], xdist_workers: int = 0) -> Result:
    state = state_dir(graph.root)
    report = state / "reports" / f"{module.id}.json"
    log = state / "logs" / f"{module.id}.log"
    basetemp = state / "tmp" / module.id
    for path in (report, log):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    shutil.rmtree(basetemp, ignore_errors=True)
    command = pytest_command(module, basetemp, pytest_args, xdist_workers)
    env = {**os.environ, REPORT_ENV: str(report)}
    start = time.perf_counter()
    crash = _run(command, graph.root, env, log, module.timeout)
    duration = time.perf_counter() - start
    result = Result(module=module.id, status="failed", reason="", key=key, inputs=inputs,
                    duration=round(duration, 3), log=str(log.relative_to(graph.root)))
    return judge(result, module, report, crash)


def pytest_command(module: Module, basetemp: Path, pytest_args: list[str],
                   xdist_workers: int) -> list[str]:
    command = [sys.executable, "-m", "pytest", module.tests.as_posix(), "-q",
               "-p", "no:cacheprovider", f"--basetemp={basetemp}", *pytest_args]
    if xdist_workers > 1:
        command += ["-n", str(xdist_workers)]
    return command


def xdist_workers(last_duration: float | None, doit_workers: int, cores: int) -> int:
    """The shipped xdist policy (see README): only long suites, only with spare cores.

    Measured on 2 cores: a pytest-xdist worker costs ~0.5 s to start, and xdist
    inside parallel doit tasks was slower than plain pytest per module."""
    spare = cores // max(doit_workers, 1)
    if last_duration is None or last_duration < XDIST_MIN_SECONDS or spare < 2:
        return 0
    return spare


def _run(command, cwd: Path, env, log: Path, timeout: int) -> str:
    """Run pytest; return '' or why the process itself went wrong."""
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return f"timed out after {timeout}s"
        except BaseException:
            # Ctrl-C or an error in the orchestrator: never leave pytest running.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if code < 0:
        return f"crashed: pytest was killed by {signal.Signals(-code).name}"
    return ""


def judge(result: Result, module: Module, report: Path, crash: str) -> Result:
    def fail(reason: str) -> Result:
        result.reason = reason
        return result

    if crash:
        return fail(f"{crash} (size {module.size})" if "timed out" in crash else crash)
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return fail("pytest ended without a report (a test may have called os._exit, "
                    f"or pytest could not start); see {result.log}")
    tests = data["tests"]
    result.tests = tests
    result.counts = count(tests)
    result.failures = [{"nodeid": n, "message": t.get("message", t["outcome"])}
                       for n, t in tests.items() if t["outcome"] in FAILED_OUTCOMES]
    for error in data["collection_errors"]:
        result.failures.append({"nodeid": error["nodeid"] or module.tests.as_posix(),
                                "message": error["message"]})
    ran = result.counts.get("passed", 0) + result.counts.get("xfailed", 0)
    if data["collection_errors"]:
        return fail(f"{len(data['collection_errors'])} error(s) while collecting {module.id}")
    if data["exitstatus"] == 5 or not tests:
        return fail(f"no tests collected for {module.id}")
    if result.failures:
        return fail(f"{len(result.failures)} of {len(tests)} failed")
    if data["exitstatus"] != 0:
        return fail(f"pytest exited with code {data['exitstatus']}; see {result.log}")
    if ran == 0:
        return fail(f"no test of {module.id} ran (all {len(tests)} skipped)")
    result.status = "passed"
    return result


def count(tests: dict[str, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for test in tests.values():
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    return counts
