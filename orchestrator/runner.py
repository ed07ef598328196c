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
import time
from pathlib import Path

from .graph import Module, ModuleGraph
from .launch import ColdLauncher
from .store import Result, state_dir

# How the runner talks to orchestrator.pytest_plugin inside the pytest process. (Defined
# here, not in the plugin, so that a no-op `doit all` never imports pytest.)
REPORT_ENV = "ORCHESTRATOR_REPORT"        # where the plugin writes its JSON report

FAILED_OUTCOMES = ("failed", "error", "xpassed", "not run")
XDIST_MIN_SECONDS = 10.0   # below this, xdist's ~0.5 s per worker start costs more than it saves
MARKED_FLAKY_ATTEMPTS = 3  # tests marked flaky (marker or graph.toml) get this many tries


def run_module(graph: ModuleGraph, module: Module, inputs: dict[str, str], key: str,
               pytest_args: list[str], xdist_workers: int = 0,
               flaky_attempts: int = 1, blas_threads: int = 0, launcher=None) -> Result:
    """Run the module's suite; re-run failing tests (see `retryable`) up to the attempts
    allowed. A test that fails and then passes is FLAKY, never silently PASSED."""
    log = state_dir(graph.root) / "logs" / f"{module.id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    result = Result(module=module.id, status="failed", reason="", key=key, inputs=inputs,
                    log=str(log.relative_to(graph.root)))
    start = time.perf_counter()
    env = thread_limits(blas_threads)
    launcher = launcher or ColdLauncher()
    report, crash = attempt(graph, module, [module.tests.as_posix()], pytest_args,
                            xdist_workers, log, env, launcher)
    judge(result, module, report, crash, log)
    tries = 1
    while not result.passed and (ids := retryable(result, module, flaky_attempts, tries)):
        tries += 1
        report, crash = attempt(graph, module, ids, pytest_args, 0, log, env, launcher)
        if crash or not report.exists():
            break
        rerun = json.loads(report.read_text(encoding="utf-8"))["tests"]
        for nodeid, test in rerun.items():
            if test["outcome"] == "passed" and nodeid in result.tests:
                result.tests[nodeid].update(outcome="passed", flaky=True)
        judge_outcomes(result, module)
    result.duration = round(time.perf_counter() - start, 3)
    result.finished = time.time()
    result.flaky = sorted(n for n, t in result.tests.items() if t.get("flaky"))
    return result


def retryable(result: Result, module: Module, flaky_attempts: int, tries: int) -> list[str]:
    """Failing test ids that may run once more: every failure while tries < --flaky-attempts;
    tests marked flaky (pytest marker or graph.toml `flaky`) up to MARKED_FLAKY_ATTEMPTS."""
    if result.reason.startswith(("crashed", "timed out", "pytest ended", "no test")) or \
            not result.tests:
        return []
    ids = []
    for failure in result.failures:
        test = result.tests.get(failure["nodeid"])
        if test is None:        # a collection error: retrying will not help
            return []
        marked = "flaky" in test.get("markers", []) or failure["nodeid"] in module.flaky
        if tries < flaky_attempts or (marked and tries < MARKED_FLAKY_ATTEMPTS):
            ids.append(failure["nodeid"])
    return ids if len(ids) == len(result.failures) else []


def thread_limits(threads: int) -> dict[str, str]:
    """BLAS/OpenMP threads per pytest process: with doit running several modules at once,
    each using every core oversubscribes them (measured 5-20x slower steps under load).
    A value the user set in the environment wins."""
    if threads < 1:
        return {}
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    return {name: str(threads) for name in names if name not in os.environ}


def attempt(graph: ModuleGraph, module: Module, selection: list[str], pytest_args: list[str],
            xdist_workers: int, log: Path, extra_env: dict[str, str],
            launcher) -> tuple[Path, str]:
    """One pytest run over `selection`; (its report path, '' or why it crashed)."""
    state = state_dir(graph.root)
    report = state / "reports" / f"{module.id}.json"
    basetemp = state / "tmp" / module.id
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    shutil.rmtree(basetemp, ignore_errors=True)
    basetemp.parent.mkdir(parents=True, exist_ok=True)
    args = pytest_args_for(selection, basetemp, pytest_args, xdist_workers)
    env = {**os.environ, **extra_env, REPORT_ENV: str(report)}
    return report, launcher.run(args, graph.root, env, log, module.timeout)


def pytest_args_for(selection: list[str], basetemp: Path, pytest_args: list[str],
                    xdist_workers: int) -> list[str]:
    args = [*selection, "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *pytest_args]
    if xdist_workers > 1:
        args += ["-n", str(xdist_workers)]
    return args


XDIST_MODES = ("policy", "never", "always")


def xdist_workers(last_duration: float | None, doit_workers: int, cores: int,
                  mode: str = "policy") -> int:
    """The shipped xdist policy (see README): only long suites, only with spare cores.

    Measured on 2 cores: a pytest-xdist worker costs ~0.5 s to start, and xdist
    inside parallel doit tasks was slower than plain pytest per module."""
    if mode == "never":
        return 0
    if mode == "always":
        return max(cores, 2)
    spare = cores // max(doit_workers, 1)
    if last_duration is None or last_duration < XDIST_MIN_SECONDS or spare < 2:
        return 0
    return spare


def judge(result: Result, module: Module, report: Path, crash: str, log: Path) -> Result:
    def fail(reason: str) -> Result:
        result.reason = reason
        return result

    if crash:
        return fail(f"{crash} (size {module.size})" if "timed out" in crash else crash)
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return fail("pytest ended without a report (a test may have called os._exit, "
                    f"or pytest could not start): {last_line(log)}")
    result.tests = data["tests"]
    result.collection_errors = [{"nodeid": e["nodeid"] or module.tests.as_posix(),
                                 "message": e["message"]} for e in data["collection_errors"]]
    result.exitstatus = data["exitstatus"]
    return judge_outcomes(result, module)


def judge_outcomes(result: Result, module: Module) -> Result:
    """Status and reason from the per-test outcomes (after the first run or a retry)."""
    tests = result.tests
    result.counts = count(tests)
    result.failures = [{"nodeid": n, "message": t.get("message", t["outcome"])}
                       for n, t in tests.items() if t["outcome"] in FAILED_OUTCOMES]
    result.failures += result.collection_errors
    ran = result.counts.get("passed", 0) + result.counts.get("xfailed", 0)
    if result.collection_errors:
        result.reason = f"{len(result.collection_errors)} error(s) while collecting {module.id}"
    elif result.exitstatus == 5 or not tests:
        result.reason = f"no tests collected for {module.id}"
    elif result.failures:
        result.reason = f"{len(result.failures)} of {len(tests)} failed"
    elif result.exitstatus != 0 and not any(t.get("flaky") for t in tests.values()):
        result.reason = f"pytest exited with code {result.exitstatus}; see {result.log}"
    elif ran == 0:
        result.reason = f"no test of {module.id} ran (all {len(tests)} skipped)"
    else:
        result.status, result.reason = "passed", ""
    return result


def last_line(log: Path) -> str:
    try:
        lines = [l for l in log.read_text(encoding="utf-8", errors="replace").splitlines()
                 if l.strip()]
    except FileNotFoundError:
        return "no output"
    return lines[-1].strip()[:300] if lines else "no output"


def count(tests: dict[str, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for test in tests.values():
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    return counts
