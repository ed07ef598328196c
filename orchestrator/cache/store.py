"""The results store: results addressed by their content key, several per module.

    .orchestrator/results/03_layers/<key>.json

A result is written atomically as soon as its target finishes, so an interrupted
run keeps what it finished. Several results per module (the last MAX_PER_MODULE
used) mean that switching pytest arguments back and forth hits both ways, as
Bazel's action cache does. Every file is checked against one schema when it is
read (here and by `cache import`); one that does not fit is set aside with one
line and its module runs again. Failed results are kept for status and graph
colours, never reused.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path

from orchestrator.core.files import atomic_write
from orchestrator.core.state import StateDir

MAX_PER_MODULE = 8
# The kinds of key entry a run records itself (keys.py names them all): stored with the
# result and valued again at each lookup, since they are known only after a run.
OBSERVED_KINDS = ("observed", "listed", "dist", "outside", "absent")


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"


class Outcome(str, Enum):
    """What happened to one test in a run (pytest_plugin.py writes them, `tests[id]["outcome"]`).

    NOT_RUN: selected, but pytest stopped before it (-x, --maxfail, an interrupt); never a
    failure of its own (no rerun line), yet a run that left one can never pass."""
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"              # in setup or teardown
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"          # strict xfail that passed
    NOT_RUN = "not run"


class Cause(str, Enum):
    """Why a run failed (NONE when it passed): decided once by the runner, read by all."""
    NONE = "none"
    TESTS_FAILED = "tests failed"
    NOT_RUN = "tests not run"        # none failed, but pytest stopped before some
    COLLECTION_ERROR = "collection error"
    NO_TESTS = "no tests"
    ALL_SKIPPED = "all skipped"
    CRASHED = "crashed"
    TIMED_OUT = "timed out"
    NO_REPORT = "no report"
    PYTEST_EXIT = "pytest exit status"
    BAD_ARGUMENTS = "bad pytest arguments"

    @property
    def retryable(self) -> bool:
        return self is Cause.TESTS_FAILED


class InvalidResult(ValueError):
    """A stored result that does not fit the schema."""


@dataclass
class Result:
    module: str
    status: Status
    cause: Cause
    reason: str                      # one line: why it failed ("" when passed)
    key: str                         # digest of `inputs`
    inputs: dict[str, str]           # declared and observed inputs, see keys.py
    counts: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    failures: list[dict] = field(default_factory=list)  # [{nodeid, message, ...}]
    tests: dict[str, dict] = field(default_factory=dict)
    finished: float = field(default_factory=time.time)
    log: str = ""
    flaky: list[str] = field(default_factory=list)      # failed, then passed on a retry
    collection_errors: list[dict] = field(default_factory=list)
    exitstatus: int | None = None
    collected: int | None = None     # tests pytest collected ...
    selected: int | None = None      # ... and how many the arguments selected
    leftovers: list[str] = field(default_factory=list)  # processes the tests left, killed
    # files the run read that its scope rules out ({"file", "why"}, keys.undeclared_reads):
    # such a result is kept for status, never reused
    undeclared: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def reusable(self) -> bool:
        """A pass that read nothing its scope rules out: what a cache hit may reuse, once
        its inputs are valued again (keys.py)."""
        return self.passed and not self.undeclared

    @property
    def narrowed(self) -> bool:
        """Only part of the suite ran (-k, -m, node ids): a pass of what was selected."""
        return self.selected is not None and self.collected is not None and \
            self.selected < self.collected

    @property
    def observed(self) -> list[str]:
        return [name for name in self.inputs if name.split(":", 1)[0] in OBSERVED_KINDS]

    def to_json(self) -> str:
        # not asdict: it deep-copies, 3x slower for a result of a few hundred tests
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"], data["cause"] = self.status.value, self.cause.value
        return json.dumps(data, indent=1)

    @classmethod
    def from_dict(cls, data) -> Result:
        """The one schema of a stored result; raises InvalidResult naming the first misfit."""
        if not isinstance(data, dict):
            raise InvalidResult("not a JSON object")
        known = {f.name for f in fields(cls)}
        for name in data:
            if name not in known:
                raise InvalidResult(f"unknown field '{name}'")
        for name, check in SCHEMA.items():
            if name not in data:
                if name in REQUIRED:
                    raise InvalidResult(f"missing field '{name}'")
                continue
            if not check(data[name]):
                raise InvalidResult(f"field '{name}' has the wrong type or value")
        result = cls(**{**data, "status": Status(data["status"]), "cause": Cause(data["cause"])})
        problem = consistency(result)
        if problem:
            raise InvalidResult(problem)
        return result


def _str(v) -> bool:
    return isinstance(v, str)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return (_int(v) or isinstance(v, float)) and math.isfinite(v) and v >= 0


def _dict_of(check) -> Callable:
    return lambda v: isinstance(v, dict) and all(_str(k) and check(x) for k, x in v.items())


def _list_of(check) -> Callable:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _failure(v) -> bool:
    return isinstance(v, dict) and _str(v.get("nodeid")) and _str(v.get("message"))


SCHEMA: dict[str, Callable] = {
    "module": _str, "status": lambda v: v in {s.value for s in Status},
    "cause": lambda v: v in {c.value for c in Cause}, "reason": _str,
    "key": lambda v: _str(v) and len(v) == 64, "inputs": _dict_of(_str),
    "counts": _dict_of(lambda n: _int(n) and n >= 0), "duration": _number,
    "failures": _list_of(_failure), "tests": _dict_of(lambda t: isinstance(t, dict)
                                                      and _str(t.get("outcome"))),
    "finished": _number, "log": _str, "flaky": _list_of(_str),
    "collection_errors": _list_of(_failure), "exitstatus": lambda v: v is None or _int(v),
    "collected": lambda v: v is None or (_int(v) and v >= 0),
    "selected": lambda v: v is None or (_int(v) and v >= 0), "leftovers": _list_of(_str),
    "undeclared": _list_of(lambda v: isinstance(v, dict) and _str(v.get("file")) and
                           _str(v.get("why"))),
}
REQUIRED = {"module", "status", "cause", "reason", "key", "inputs"}
FAILED_OUTCOMES = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.XPASSED})
RAN_OUTCOMES = frozenset({Outcome.PASSED, Outcome.XFAILED})     # a pass needs one of these


def consistency(result: Result) -> str:
    """A passing result must show tests that ran, none that failed and none left unrun:
    '' or the problem."""
    if result.passed:
        if result.cause is not Cause.NONE:
            return f"status passed with cause '{result.cause.value}'"
        if any(result.counts.get(o, 0) for o in FAILED_OUTCOMES) or result.failures:
            return "status passed but its counts show failures"
        if result.counts.get(Outcome.NOT_RUN, 0):
            return "status passed but some of its tests did not run"
        if sum(result.counts.get(o, 0) for o in RAN_OUTCOMES) == 0:
            return "status passed but no test ran"
    elif result.cause is Cause.NONE:
        return "status failed without a cause"
    return ""


class Store:
    """The results of one project, by module and key."""

    def __init__(self, project: Path, repair: bool = True):
        self.state = StateDir(Path(project))
        self.repair = repair        # set unreadable files aside (False: only skip them)

    def save(self, result: Result) -> Path:
        path = self.state.result(result.module, result.key)
        text = result.to_json()
        atomic_write(path, text)
        try:        # the reporter reads it next: as a reader would have it, from its text
            _PARSED[path] = (_stamp(path), Result.from_dict(json.loads(text)))
        except OSError:
            pass
        self._bound(result.module)
        return path

    def results(self, module_id: str) -> list[Result]:
        """Every readable result of the module, newest (by when it finished) first."""
        found = [r for r in (self._read(p, module_id) for p in self._paths(module_id))
                 if r is not None]
        return sorted(found, key=lambda r: r.finished, reverse=True)

    def recently_used(self, module_id: str) -> Iterator[Result]:
        """The module's readable results, most recently written or reused first, read one
        at a time: a no-op run reads one result per module, not all of them."""
        def used(path: Path) -> int:
            try:
                return path.stat().st_mtime_ns
            except OSError:
                return 0
        for path in sorted(self._paths(module_id), key=used, reverse=True):
            result = self._read(path, module_id)
            if result is not None:
                yield result

    def latest(self, module_id: str) -> Result | None:
        found = self.results(module_id)
        return found[0] if found else None

    def last_pass(self, module_id: str) -> Result | None:
        return next((r for r in self.results(module_id) if r.passed), None)

    def lookup(self, module_id: str, current: Callable[[Result], bool]) -> Result | None:
        """A reusable result for which `current(result)` holds (its inputs are unchanged),
        tried in LRU order; marked as used, so it is the last to be dropped. Which one
        does not matter: any result whose key is current is what a fresh run would say."""
        for result in self.recently_used(module_id):
            if result.reusable and current(result):
                path = self.state.result(module_id, result.key)
                try:
                    os.utime(path)
                    _PARSED[path] = (_stamp(path), result)     # still parsed, still valid
                except OSError:
                    pass
                return result
        return None

    def _paths(self, module_id: str) -> list[Path]:
        folder = self.state.results(module_id)
        try:        # a listing, not Path.glob: asked several times for each module of a run
            return [folder / e.name for e in os.scandir(folder) if e.name.endswith(".json")]
        except OSError:
            return []

    def _read(self, path: Path, module_id: str) -> Result | None:
        try:
            stamp = _stamp(path)
            cached = _PARSED.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            result = Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
            if result.module != module_id or path.stem != result.key:
                raise InvalidResult(f"it is filed under {module_id}/{path.stem}")
            _PARSED[path] = (stamp, result)
            return result
        except FileNotFoundError:
            return None
        except (ValueError, OSError, UnicodeDecodeError) as e:
            if self.repair:
                self.set_aside(path, f"{module_id} will run again", e)
            return None

    def _bound(self, module_id: str) -> None:
        """Keep the MAX_PER_MODULE most recently used results of a module."""
        try:
            paths = sorted(self.state.results(module_id).glob("*.json"),
                           key=lambda p: p.stat().st_mtime_ns, reverse=True)
        except OSError:
            return
        for old in paths[MAX_PER_MODULE:]:
            old.unlink(missing_ok=True)

    def set_aside(self, path: Path, consequence: str, error: Exception | None = None) -> Path:
        """Move a corrupt state file to corrupt/, saying so in one line."""
        corrupt = self.state.corrupt
        corrupt.mkdir(parents=True, exist_ok=True)
        target = corrupt / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
        try:
            os.replace(path, target)
        except FileNotFoundError:      # another reader set it aside first
            return target
        why = f" ({error})" if isinstance(error, InvalidResult) else ""
        print(f"warning: {self.state.rel(path)} was unreadable{why}; set aside as "
              f"{self.state.rel(target)}; {consequence}", file=sys.stderr)
        return target

    def record_flaky(self, nodeids: list[str]) -> None:
        """Count flaky outcomes per test across runs, so repeat offenders can be listed."""
        if not nodeids:
            return
        counts = self.flaky_counts()
        for nodeid in nodeids:
            counts[nodeid] = counts.get(nodeid, 0) + 1
        atomic_write(self.state.flaky, json.dumps(counts, indent=1, sort_keys=True))

    def flaky_counts(self) -> dict[str, int]:
        try:
            data = json.loads(self.state.flaky.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if _dict_of(_int)(data) else {}


# Each result file is parsed and checked once per process (a run reads a module's results
# for the cache lookup, the schedule and the reporter): by path, while its stat is the same.
_PARSED: dict[Path, tuple[tuple, Result]] = {}


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def load(root: Path, module_id: str) -> Result | None:
    """The module's most recent result (what status, graph and coverage show)."""
    return Store(root).latest(module_id)
