"""pytest plugin, loaded in every pytest run of a project (`-p orchestrator.run.pytest_plugin`).

- When a plain `pytest` runs in a project with a graph.toml, it first exports every
  module, so tests never import a stale or missing generated package.
- It registers the graph's marker categories and `covers(module)`.
- In every run, each failure is put in the student's words (verdict.py): the exception
  type and the lines of its message that matter, and where to look: the deepest frame
  in the module's own source, mapped from the generated file to the line the student
  wrote (sourcemap.py); the traceback pytest prints (the log) names that line too.
- When the orchestrator's runner starts pytest (ORCHESTRATOR_REPORT is set), it
  writes a JSON report of every selected test: outcome, duration, markers, covers,
  where a failure happened, why a test was skipped; how many tests were collected and
  selected. A selected test that never got a report is "not run", with why pytest
  stopped before it (`stopped_by`: -x, --maxfail=N, interrupted). The runner trusts
  only that report, never pytest's exit code alone.
- When ORCHESTRATOR_OBSERVE is set, it records what the run read (observe.py), in
  this process and in each xdist worker.

A plain `pytest` in a student's shell imports only what every run needs (observe.py, the
closure guard, launch.py's names for the runner's environment); what only the runner's
runs or only a failure need is imported where it is used, each import saying why.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# what every run needs at once: observation starts at import, the closure guard joins at
# pytest_addoption, launch.py names the environment a runner's run is told through (and
# brings reaper.py: both are light, standard library only)
from orchestrator.run import closure_guard, reaper
from orchestrator.run.launch import PARENT_ENV, REPORT_ENV, die_with
from orchestrator.run.observe import start_from_environment

if TYPE_CHECKING:
    from orchestrator.cache.store import Outcome

# Started at import, before any conftest or test module is imported or reads a file.
OBSERVER = start_from_environment()
FAILURE = "orchestrator_failure"     # the report attribute a failure's verdict travels in


def pytest_addoption(parser, pluginmanager):
    global OBSERVER
    # when this module was imported before the run's environment was set (the warm
    # server preloads it, forkserver.py), observation starts here: pytest calls this as
    # it registers the plugin, right after importing it, so at the same moment
    OBSERVER = start_from_environment()
    # the closure guard (closure_guard.py) joins before any conftest is imported
    closure_guard.register(pluginmanager)


def pytest_load_initial_conftests(early_config, parser, args):
    """Export before any conftest is imported: a conftest importing the package at its
    top must see the current code, never a stale export."""
    graph = _graph(early_config)
    started_by_runner = REPORT_ENV in os.environ      # doit's export tasks already ran
    if graph is None or started_by_runner or "PYTEST_XDIST_WORKER" in os.environ:
        return
    early_config.pluginmanager.register(ExportGuard(graph, export_all(graph)), "orch-export")


def pytest_configure(config):
    # the markers a curriculum uses come from here and graph.toml, never from a copy of
    # them in the project's pytest configuration (--strict-markers needs them registered)
    config.addinivalue_line("markers", "covers(module): credit this test to another module")
    config.addinivalue_line("markers", "flaky: a test known to be flaky; the orchestrator "
                                       "retries it")
    graph = _graph(config)
    if graph is None:
        return
    for category, where in graph.categories.items():
        if where == "marker":
            config.addinivalue_line("markers", f"{category}: testing-plan category")
    if REPORT_ENV in os.environ and not hasattr(config, "workerinput"):
        die_with_parent()
        # processes the tests orphan (setsid, double fork) come back to this pytest,
        # which kills and names them at the end of the session (reaper.py)
        reaper.become_subreaper()
        config.pluginmanager.register(ReportWriter(Path(os.environ[REPORT_ENV]), config),
                                      "orch-report")


SESSION = pytest.StashKey["pytest.Session"]()
INSIDE = pytest.StashKey[dict]()        # folder -> whether it lies in the selection


def pytest_sessionstart(session):
    session.config.stash[SESSION] = session


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path, config):
    """Skip what lies beside the selection, before pytest's own checks of it. Collecting
    `tests/07_x` lists every folder of `tests/` on the way down and asks each whether it is
    ignored (ten glob matches), then drops it, as it is not on the way to the selection:
    on a course of a hundred modules, ~10 ms of each module's run. pytest asks only of a
    path that is neither selected nor on the way to the selection; unless it lies below
    a selected path, nothing of it would be collected: skipping it changes no result.
    (A conftest beside the selection is not imported either way.)"""
    session = config.stash.get(SESSION, None)
    if session is None:
        return None
    # asked of every entry of a folder: whether the folder lies in the selection, once
    inside = config.stash.setdefault(INSIDE, {})
    folder = collection_path.parent
    if folder not in inside:
        inside[folder] = any(session.isinitpath(f) for f in (folder, *folder.parents))
    return None if inside[folder] else True     # inside: pytest's own rules decide


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if OBSERVER is not None:
        OBSERVER.write()


def die_with_parent() -> None:
    """If the orchestrator is killed (even SIGKILL), this pytest must not live on and
    write a report nobody reads, or hold a test hanging forever: ask Linux to kill us
    with our parent, and check we were not orphaned before asking."""
    die_with(int(os.environ.get(PARENT_ENV, "0")))


def _graph(config):
    """The project's graph, loaded once per process (two hooks ask for it; a module's run
    pays for it once)."""
    from orchestrator.core.graph import GraphError  # only a curriculum has one
    from orchestrator.run.session_graph import graph_of
    try:
        return graph_of(Path(config.rootpath))
    except GraphError as e:
        raise pytest.UsageError(str(e)) from None


# --- a failure in the student's words (in every process: xdist workers too) -------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Name a failure at the student's source line: on the report (it travels from xdist
    workers to the controller) and in the traceback pytest prints into the log."""
    report = yield
    if report.failed and call.excinfo is not None:
        try:
            root = Path(item.config.rootpath)
            setattr(report, FAILURE, failure_verdict(item, call.excinfo, root))
            annotate(report.longrepr, root)
        except Exception:         # a verdict is a courtesy: it must never break a run
            pass
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A collection error (an exception while importing a generated module) named at the
    source line too."""
    report = yield
    if report.failed:
        try:
            from orchestrator.core import sourcemap  # only a failure is mapped to its source
            root = Path(collector.config.rootpath)
            text = str(report.longrepr)
            places = [sourcemap.locate(root, m.group("path"), int(m.group("line")))
                      for m in sourcemap.PYTEST_PLACE.finditer(text)]
            places = [p for p in places if _in_project(root / p.path, root)]
            if places:
                setattr(report, FAILURE, {"path": places[-1].path, "line": places[-1].line})
            annotate(report.longrepr, root)
        except Exception:
            pass
    return report


MAX_CALLERS = 3


def failure_verdict(item, excinfo, root: Path) -> dict:
    """{"message", "path", "line", ["generated", "called_from", "raised_in"]}: where to look
    is the deepest frame in the tested module's own source, else the deepest in the
    project; `called_from` the frames of that source and of the test that led there
    (innermost first), `raised_in` the deepest frame when it lies elsewhere."""
    from orchestrator.core import sourcemap  # only a failure is mapped to its source
    from orchestrator.run import verdict  # only a failure is put in words
    frames = [sourcemap.locate(root, entry.path, entry.lineno + 1)
              for entry in excinfo.traceback
              if isinstance(entry.path, Path) and _in_project(entry.path, root)]
    found: dict = {"message": verdict.summarize(excinfo.exconly())}
    if not frames:
        return found
    own = _own_sources(item)
    at = max((i for i, f in enumerate(frames) if f.path in own), default=len(frames) - 1)
    place = frames[at]
    found.update(path=place.path, line=place.line)
    if place.generated:
        found["generated"] = place.generated
    ours = own | {sourcemap.locate(root, Path(item.path), 1).path}
    callers = [str(f) for f in reversed(frames[:at]) if f.path in ours and f != place]
    if callers:
        found["called_from"] = ", ".join(list(dict.fromkeys(callers))[:MAX_CALLERS])
    if at != len(frames) - 1:
        found["raised_in"] = str(frames[-1])
    return found


TOOL = Path(__file__).resolve().parent.parent      # the orchestrator itself: never the place


def _in_project(path: Path, root: Path) -> bool:
    """A frame in the project's own code: under the root, not in an environment's
    packages (a venv may live in the checkout) nor in the orchestrator."""
    try:
        path = path.resolve()
        path.relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return not ({"site-packages", "dist-packages"} & set(path.parts)) and \
        not any(p == path or p in path.parents for p in prefixes | {TOOL})


def _own_sources(item) -> set[str]:
    """The sources of the module whose tests hold `item` (none outside a curriculum)."""
    try:
        graph = _graph(item.config)
    except pytest.UsageError:
        return set()
    for module in graph or ():
        if (graph.root / module.tests) in Path(item.path).parents:
            return {p.as_posix() for p in module.sources}
    return set()


def annotate(longrepr, root: Path) -> None:
    """Rewrite, in place, each traceback entry in a generated file to its source line,
    keeping the generated place beside it (what pytest prints: the run's log)."""
    from orchestrator.core import sourcemap  # only a failure's traceback is rewritten
    if isinstance(getattr(longrepr, "longrepr", None), str):      # a collection error
        longrepr.longrepr = sourcemap.rewrite_text(longrepr.longrepr, root)
        return
    chain = getattr(longrepr, "chain", None)
    tracebacks = [element[0] for element in chain] if chain else \
        [getattr(longrepr, "reprtraceback", None)]
    for traceback in tracebacks:
        for entry in getattr(traceback, "reprentries", None) or []:
            place = getattr(entry, "reprfileloc", None)
            if place is not None:
                where = sourcemap.locate(root, place.path, place.lineno)
                if where.generated:
                    said = place.message.split("\n")[0]
                    place.path, place.lineno = where.path, where.line
                    place.message = " ".join(filter(None, [said,
                                                           f"(generated {where.generated})"]))
            elif getattr(entry, "style", None) == "native":
                entry.lines = [sourcemap.rewrite_text(line, root) for line in entry.lines]


def export_all(graph) -> dict[str, str]:
    """Export every stale module; {module id: error} for those that failed."""
    # only a plain run exports (the runner's export tasks ran before it)
    from orchestrator.core.export import ExportError, export_module, is_current
    failures = {}
    for module in graph:
        if is_current(module, graph):
            continue
        try:
            export_module(module, graph)
        except ExportError as e:
            failures[module.id] = str(e)
    return failures


class ExportGuard:
    """Fails (never skips) the tests of a module whose closure did not export."""

    def __init__(self, graph, failures: dict[str, str]):
        self.blocked: dict[Path, str] = {}
        for failed, reason in failures.items():
            for mid in [failed] + graph.dependents(failed):
                tests_dir = graph.root / graph[mid].tests
                self.blocked.setdefault(tests_dir, f"export of {failed} failed: {reason}")

    def pytest_runtest_setup(self, item):
        for tests_dir, reason in self.blocked.items():
            if tests_dir in Path(item.path).parents:
                pytest.fail(reason, pytrace=False)


class ReportWriter:
    """Collects each selected test's outcome and writes them as one JSON file at the end.
    Registered only in the runner's runs: what it writes with is imported where used."""

    def __init__(self, path: Path, config):
        self.path = path
        self.config = config
        self.tests: dict[str, dict] = {}
        self.errors: list[dict] = []
        self.deselected = 0
        self.selected: int | None = None
        self.interrupted = False
        self.running: int | None = None      # the open `.running` file (_running)

    def pytest_deselected(self, items):
        self.deselected += len(items)

    def pytest_collection_finish(self, session):
        # after -k/-m/--deselect: a deselected test is not part of this run at all
        self.selected = len(session.items)
        for item in session.items:
            covers = [m.args[0] for m in item.iter_markers("covers") if m.args]
            markers = sorted({m.name for m in item.iter_markers()} - {"covers", "parametrize"})
            # until a report says otherwise: a test pytest stops before keeps it
            self.tests[item.nodeid] = unrun(markers, covers)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        # under xdist this process collects nothing: each worker names the tests it will
        # share out (after -k/-m), so one that -x or an interrupt stops before is not run
        # here too, instead of missing from the report
        for nodeid in ids:
            self.tests.setdefault(nodeid, unrun([], []))

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append({"nodeid": report.nodeid, "message": _message(report),
                                **(getattr(report, FAILURE, None) or _location(report))})

    def pytest_runtest_logstart(self, nodeid, location):
        # if this process dies or hangs here, the runner names the test it was running
        self._running(nodeid)

    def pytest_runtest_logfinish(self, nodeid, location):
        self._running("")

    def _running(self, nodeid: str) -> None:
        """The test running now, as the first line of the `.running` file (an empty line
        between tests; what follows the first line is left over from longer ids). One
        file kept open and its start rewritten in place: creating and removing it for each
        test cost ~0.3 ms a test on ext4, truncating it ~0.05 ms, metadata the journal
        writes."""
        if self.running is None:
            self.running = os.open(self.path.with_suffix(".running"),
                                   os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.lseek(self.running, 0, os.SEEK_SET)
        os.write(self.running, nodeid.encode("utf-8") + b"\n")

    def pytest_runtest_logreport(self, report):
        from orchestrator.cache import tally  # the report's skip-reason field
        from orchestrator.cache.store import Outcome  # the report's outcome words
        test = self.tests.setdefault(report.nodeid, {"markers": [], "covers": [],
                                                     "duration": 0.0})
        test["duration"] = test.get("duration", 0.0) + report.duration
        outcome = outcome_of(report, self.config)
        if outcome is None:
            return
        if report.when == "call" or test.get("outcome") in (None, Outcome.NOT_RUN,
                                                            Outcome.PASSED):
            test["outcome"] = outcome.value
        if report.failed:
            said = getattr(report, FAILURE, None)
            test.update(said if said else {"message": _message(report), **_location(report)})
        elif outcome in (Outcome.SKIPPED, Outcome.XFAILED):
            test[tally.REASON] = skip_reason(report)

    def pytest_keyboard_interrupt(self, excinfo):
        # pytest calls this for Ctrl-C, a test raising KeyboardInterrupt, pytest.exit(),
        # and session.shouldstop (from a plugin, or xdist stopping its workers)
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        from orchestrator.cache.store import Outcome  # the report's outcome words
        killed = reaper.sweep()        # after xdist's own sessionfinish took its workers down
        reaper.report(killed, sys.stderr)
        why = stopped_by(session, self.interrupted)
        for test in self.tests.values():
            if why and test["outcome"] == Outcome.NOT_RUN:
                test["stopped_by"] = why
        selected = self.selected
        data = {"exitstatus": int(exitstatus), "selected": selected, "leftovers": killed,
                "collected": None if selected is None else selected + self.deselected,
                "collection_errors": self.errors, "tests": self.tests}
        if self.running is not None:   # kept: after an interrupt it names the test stopped
            os.close(self.running)
        tmp = self.path.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def stopped_by(session, interrupted: bool) -> str:
    """Why pytest stopped before running every selected test: '-x', '--maxfail=N',
    'interrupted', or '' (it did not stop early, or we cannot tell)."""
    # pytest sets shouldfail when its --maxfail count is reached (-x is --maxfail=1), in
    # xdist's controller too (it sees every report); check it first, as under xdist the
    # stop then arrives as an interrupt
    if session.shouldfail:
        maxfail = session.config.getoption("maxfail")
        return "-x" if maxfail == 1 else f"--maxfail={maxfail}"
    if interrupted or session.shouldstop:
        return "interrupted"
    return ""


def unrun(markers: list[str], covers: list[str]) -> dict:
    """A selected test's entry until a report says otherwise: not run."""
    from orchestrator.cache.store import Outcome  # the report's outcome words
    return {"outcome": Outcome.NOT_RUN.value, "duration": 0.0, "markers": markers,
            "covers": covers}


def outcome_of(report, config) -> Outcome | None:
    """What a test report says of its test, in pytest's own words: the category of its
    `pytest_report_teststatus` hook (passed, failed, error, skipped, xfailed, xpassed: the
    Outcome of the same word), so a plugin's wording of a report is honoured (pytest's
    subtests, for one, fails there a test whose subtests failed). None: the report says
    nothing of the test (a setup or teardown that passed: pytest's category "").
    A category of a plugin's own ("rerun", "subtests passed") is what pytest counts the
    report as: failed (its exit status counts it so), skipped, or a passed call; a report
    that is none of those (a rerun's) says nothing."""
    from orchestrator.cache.store import Outcome  # the report's outcome words
    said = config.hook.pytest_report_teststatus(report=report, config=config)
    category = said[0] if said else None
    if category == "":
        return None
    try:
        outcome = Outcome(category)
    except ValueError:
        outcome = Outcome.NOT_RUN          # ours alone: never a category of pytest's
    if outcome is not Outcome.NOT_RUN:
        return outcome
    if report.failed:
        return Outcome.FAILED if report.when == "call" else Outcome.ERROR
    if report.skipped:
        return Outcome.SKIPPED
    return Outcome.PASSED if report.passed and report.when == "call" else None


def _message(report) -> str:
    """The exception, summarized (verdict.summarize), from a report whose exception is gone
    (a collection error, a strict xpass): `ModuleNotFoundError: No module named 'x'`."""
    from orchestrator.run import verdict  # only a failure is put in words
    text = str(report.longrepr) if report.longrepr else ""
    crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    if crash:
        return verdict.summarize(crash)
    lines = text.strip().splitlines() or ["failed"]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return verdict.summarize(errors[-1] if errors else lines[-1])


def skip_reason(report) -> str:
    """Why a test was skipped (`pytest.skip`, a skip marker, importorskip) or xfailed."""
    from orchestrator.cache import tally  # the report's word for no reason
    from orchestrator.run import verdict  # the report's longest line
    if hasattr(report, "wasxfail"):
        return (report.wasxfail or "xfailed")[:verdict.MAX_CHARS]
    longrepr = report.longrepr
    said = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return said.removeprefix("Skipped: ").strip()[:verdict.MAX_CHARS] or tally.NO_REASON


def _location(report) -> dict:
    """{"path", "line"} of where a failure was raised in the project's test code, if known."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None or not getattr(crash, "path", None):
        return {}
    try:
        path = Path(crash.path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return {}
    return {"path": path, "line": int(crash.lineno)}
