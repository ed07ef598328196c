"""Run one module's tests in its own pytest process and turn the report into a Result.

Fail closed: a Result says "passed" only when pytest's JSON report (written by
orchestrator.run.pytest_plugin) shows at least one test that ran and none that
failed. No report, nothing collected, a crash, a signal or a timeout is a failure
with a one-line reason.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from orchestrator.cache import keys
from orchestrator.cache.store import FAILED_OUTCOMES, RAN_OUTCOMES, Cause, Outcome, Result, Status
from orchestrator.core import strict_env, tree
from orchestrator.core.graph import Module, ModuleGraph
from orchestrator.core.state import StateDir
from orchestrator.run import observe
from orchestrator.run.launch import PLUGIN, REPORT_ENV, ColdLauncher, Ending, TimedOut
from orchestrator.run.observe import read_observations

# The xdist policy's two measured bounds (xdist_workers). On 2 cores, each module run alone
# (`doit -n 2 test:NN`, its deps cached) with 2 workers and without, medians of 3 under a
# load of 1-4: 20_capstone (11 s of tests, its longest 1.1 s) took 7.9 s against 11.5 s;
# every other module lost: by 1.4-3.3 s the balanced ones of 3-6 s (05, 06, 09, 11: each
# worker is a new Python process importing pytest, numpy and the tests' libraries), by
# 3.8-7.2 s those one test dominates (13, 17, 19: 40-70% of the work in one test, which no
# worker can split, and the fixtures each worker builds again).
XDIST_MIN_SECONDS = 10.0   # below this, the workers' start costs more than it saves
XDIST_MAX_SHARE = 0.25     # above this share of the work, one test is the suite's wall time
MARKED_FLAKY_ATTEMPTS = 3  # tests marked flaky (marker or graph.toml) get this many tries
USAGE_ERROR = 4            # pytest's exit status for bad command-line arguments


def run_module(graph: ModuleGraph, module: Module, declared: dict[str, str],
               pytest_args: list[str], xdist_workers: int = 0,
               flaky_attempts: int = 1, blas_threads: int = 0, launcher=None) -> Result:
    """Run the module's suite; re-run failing tests (see `retryable`) up to the attempts
    allowed. A test that fails and then passes is FLAKY, never silently PASSED. The result's
    key covers the declared inputs and what the run was observed to read."""
    state = StateDir(graph.root)
    log = state.log(module.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    observed = state.observed(module.id)
    shutil.rmtree(observed, ignore_errors=True)
    result = Result(module=module.id, status=Status.FAILED, cause=Cause.NO_REPORT, reason="",
                    key="", inputs=declared, log=state.rel(log))
    start = time.perf_counter()
    env = {**strict_env.for_tests(module.env), **thread_limits(blas_threads),
           **observe.environment(observed, graph.root)}
    launcher = launcher or ColdLauncher()
    tree.drop_stale_bytecode(graph.root)     # the tests must run the code the key saw
    report, ending = attempt(graph, module, [module.tests.as_posix()], pytest_args,
                             xdist_workers, log, env, launcher)
    judge(result, module, report, ending, log)
    tries = 1
    while not result.passed and (ids := retryable(result, module, flaky_attempts, tries)):
        tries += 1
        report, ending = attempt(graph, module, ids, pytest_args, 0, log, env, launcher)
        if ending is not None or not report.exists():
            break
        rerun = json.loads(report.read_text(encoding="utf-8"))["tests"]
        for nodeid, test in rerun.items():
            if test["outcome"] == Outcome.PASSED and nodeid in result.tests:
                result.tests[nodeid].update(outcome=Outcome.PASSED.value, flaky=True)
        judge_outcomes(result, module)
    result.duration = round(time.perf_counter() - start, 3)
    result.finished = time.time()
    result.flaky = sorted(n for n, t in result.tests.items() if t.get("flaky"))
    seen = read_observations(observed)
    tree.invalidate_all()               # the run may have written files: walk again
    result.inputs = {**declared, **keys.observed_inputs(graph, module, seen, declared)}
    result.undeclared = keys.undeclared_reads(graph, module, seen, declared)
    result.key = keys.digest(result.inputs)
    return result


def retryable(result: Result, module: Module, flaky_attempts: int, tries: int) -> list[str]:
    """Failing test ids that may run once more: every failure while tries < --flaky-attempts;
    tests marked flaky (pytest marker or graph.toml `flaky`) up to MARKED_FLAKY_ATTEMPTS.
    None when pytest left tests unrun: no retry can make that run pass, and a pass on the
    retry would hide the failure that stopped pytest behind "not run"."""
    if not result.cause.retryable or not result.tests or result.counts.get(Outcome.NOT_RUN):
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
            launcher) -> tuple[Path, Ending]:
    """One pytest run over `selection`; (its report path, None or how pytest itself ended:
    launch.TimedOut, launch.Crashed)."""
    state = StateDir(graph.root)
    report, basetemp = state.report(module.id), state.tmp(module.id)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    report.with_suffix(".running").unlink(missing_ok=True)
    shutil.rmtree(basetemp, ignore_errors=True)
    basetemp.parent.mkdir(parents=True, exist_ok=True)
    args = pytest_args_for(selection, basetemp, pytest_args, xdist_workers)
    if xdist_workers > 1:     # say so in the log: its duration is not one process's
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"orchestrator: pytest -n {xdist_workers} (xdist workers)\n")
    env = {**extra_env, REPORT_ENV: str(report)}     # extra_env: the strict environment
    return report, launcher.run(args, graph.root, env, log, module.timeout)


def pytest_args_for(selection: list[str], basetemp: Path, pytest_args: list[str],
                    xdist_workers: int) -> list[str]:
    # our plugin is loaded whatever the project's pytest configuration says (twice is fine)
    args = [*selection, "-q", "-p", PLUGIN, "-p", "no:cacheprovider",
            f"--basetemp={basetemp}", *pytest_args]
    if xdist_workers > 1:
        args += ["-n", str(xdist_workers)]
    return args


def xdist_workers(last_duration: float | None, doit_workers: int, cores: int,
                  mode: str = "policy", *, alone: bool = False, longest: float = 0.0) -> int:
    """The shipped xdist policy (see README): a long suite no test dominates, given the
    cores no other module can use: all of them when it runs alone (every other target of
    the run has ended or waits on it: the tail of a run, or `doit test:NN` with its deps
    cached), else its share of them (cores // doit workers; none with `doit -n 2` on 2).

    `last_duration`: the suite's time in one process (serial_time); `longest`: its
    longest test. Pure: the campaign decides `alone` from which targets have ended,
    never from a clock. The bounds are measured (XDIST_MIN_SECONDS, XDIST_MAX_SHARE)."""
    if mode == "never":
        return 0
    if mode == "always":
        return max(cores, 2)
    spare = cores if alone else cores // max(doit_workers, 1)
    if last_duration is None or last_duration < XDIST_MIN_SECONDS or spare < 2:
        return 0
    if longest > XDIST_MAX_SHARE * last_duration:
        return 0
    return spare


def serial_time(last: Result | None) -> tuple[float | None, float]:
    """(the suite's time in one process, its longest test) from its last recorded run:
    the longer of the run's wall time and its tests' summed time, as a run under xdist
    took less wall time than its tests did one after another (read alone, the wall time
    of one xdist run would make the next look short and go without workers). (None, 0)
    when it never ran."""
    if last is None:
        return None, 0.0
    took = [t.get("duration", 0.0) for t in last.tests.values()]
    return max(last.duration, sum(took)), max(took, default=0.0)


def blas_threads(cores: int, doit_workers: int, xdist: int) -> int:
    """BLAS threads per pytest process (thread_limits): each doit worker's share of the
    cores, split among its xdist workers; so one per worker when a module that runs alone
    has every core as xdist workers. Not more for a module alone without workers: its
    process has the machine to itself, but measured (20_capstone alone, no xdist, 2 cores)
    two BLAS threads gave no gain over one (12.6 s against 11.8 s, medians of 3)."""
    return max(1, cores // (max(doit_workers, 1) * max(xdist, 1)))


def judge(result: Result, module: Module, report: Path, ending: Ending, log: Path) -> Result:
    def fail(cause: Cause, reason: str) -> Result:
        result.cause, result.reason = cause, reason
        return result

    if ending is not None:    # stopped or crashed: the Cause is the ending's type, not words
        during = running_test(report)
        if isinstance(ending, TimedOut):
            return fail(Cause.TIMED_OUT, f"{ending} (size {module.size}){during}")
        return fail(Cause.CRASHED, f"{ending}{during}")
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        usage = usage_error(log)
        if usage:
            return fail(Cause.BAD_ARGUMENTS, f"bad pytest arguments: {usage}")
        return fail(Cause.NO_REPORT, "pytest ended without a report (a test may have called "
                                     f"os._exit, or pytest could not start): {last_line(log)}")
    result.tests = data["tests"]
    result.collection_errors = [{**e, "nodeid": e["nodeid"] or module.tests.as_posix()}
                                for e in data["collection_errors"]]
    result.exitstatus = data["exitstatus"]
    result.collected, result.selected = data.get("collected"), data.get("selected")
    result.leftovers = data.get("leftovers", [])
    if result.exitstatus == USAGE_ERROR:
        why = usage_error(log) or last_line(log)
        return fail(Cause.BAD_ARGUMENTS, f"bad pytest arguments: {why}")
    return judge_outcomes(result, module)


def judge_outcomes(result: Result, module: Module) -> Result:
    """Status, cause and reason from the per-test outcomes (after the first run or a retry).
    A collection error comes first: the tests it kept from running are not failures of
    their own, and its exception line is the reason. Tests pytest stopped before (-x,
    --maxfail, an interrupt) are counted "not run", never as failures, and fail closed: a
    run that left any unrun fails (NOT_RUN) even when every test that ran passed."""
    tests = result.tests
    result.counts = count(tests)
    ran = sum(result.counts.get(o, 0) for o in RAN_OUTCOMES)
    result.status = Status.FAILED
    if result.collection_errors:
        result.failures = list(result.collection_errors)
        first = result.collection_errors[0]
        more = len(result.collection_errors) - 1
        result.cause = Cause.COLLECTION_ERROR
        result.reason = (f"{first['message'].splitlines()[0][:300]} while collecting "
                         f"{first['nodeid']}" + (f" (and {more} more)" if more else ""))
        return result
    result.failures = [{"nodeid": n, "message": t.get("message", t["outcome"]),
                        **{k: t[k] for k in ("path", "line") if k in t}}
                       for n, t in tests.items() if t["outcome"] in FAILED_OUTCOMES]
    unrun = result.counts.get(Outcome.NOT_RUN, 0)
    if result.exitstatus == 5 or not tests:
        result.cause, result.reason = Cause.NO_TESTS, f"no tests collected for {module.id}"
    elif result.failures:
        result.cause = Cause.TESTS_FAILED
        result.reason = (f"{len(result.failures)} failed, {unrun} not run{stopped_by(tests)}"
                         if unrun else f"{len(result.failures)} of {len(tests)} failed")
    elif unrun:     # before the exit status: it says more than "code 2", and code 0 fails
        result.cause = Cause.NOT_RUN
        result.reason = f"{unrun} of {len(tests)} not run{stopped_by(tests)}"
    elif result.exitstatus != 0 and not any(t.get("flaky") for t in tests.values()):
        result.cause = Cause.PYTEST_EXIT
        result.reason = f"pytest exited with code {result.exitstatus}; see {result.log}"
    elif ran == 0:
        result.cause = Cause.ALL_SKIPPED
        result.reason = f"no test of {module.id} ran (all {len(tests)} skipped)"
    else:
        result.status, result.cause, result.reason = Status.PASSED, Cause.NONE, ""
    return result


def running_test(report: Path) -> str:
    """' while running <nodeid>' if the plugin saw a test start and not finish (the
    first line of its `.running` file: empty between tests)."""
    try:
        text = report.with_suffix(".running").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    nodeid = text.split("\n", 1)[0].strip()
    return f" while running {nodeid}" if nodeid else ""


def usage_error(log: Path) -> str:
    """pytest's own message when it refused its command line (`error: unrecognized
    arguments: --bogus-flag`), or ''."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    for line in lines:    # argparse's "prog: error: ...", or pytest's own "ERROR: ..."
        match = re.match(r"^(?:.*?: error: |ERROR: (?!usage: ))(.+)$", line.strip())
        if match:
            return match.group(1).strip()
    return ""


def last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()]
    except FileNotFoundError:
        return "no output"
    return lines[-1].strip()[:300] if lines else "no output"


def stopped_by(tests: dict[str, dict]) -> str:
    """' (-x)', ' (--maxfail=2)', ' (interrupted)': why pytest stopped before the tests it
    left unrun, as the plugin recorded it; '' if it could not tell."""
    why = sorted({t["stopped_by"] for t in tests.values()
                  if t["outcome"] == Outcome.NOT_RUN and t.get("stopped_by")})
    return f" ({', '.join(why)})" if why else ""


def count(tests: dict[str, dict]) -> dict[str, int]:
    """{outcome: how many tests had it}: every outcome of Outcome that occurs, "not run"
    included (the reporter and the schema check read them from here)."""
    counts: dict[str, int] = {}
    for test in tests.values():
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    return counts
