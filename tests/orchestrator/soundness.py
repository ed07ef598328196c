"""A seeded mutation campaign: random single edits to a curriculum, and after each one
`doit all` must execute exactly the targets the edit affects, and never report a
broken test as a pass.

The expected set comes from a model that knows nothing of the orchestrator's keys:
an edit dirties targets (a module's exported code: it and its dependents; its tests,
or its graph entry: it alone; a conftest above all tests: everyone; a comment in a
non-exported cell: nobody). Some edits are to inputs nothing declares, which only
observation can key: a data file a test reads, a helper imported from outside the
tests dir, an optional library appearing, changing or disappearing on the path, a
pytest.ini appearing at the root or going away. A dirty or failed target runs when
nothing it waits for failed or was blocked in the same run; a broken one fails and
stays dirty.
Used by tests/orchestrator/test_cache_soundness.py and bench/cache_soundness.py.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from orchestrator.graph import load
from orchestrator.store import MAX_PER_MODULE

BROKEN = "\n\ndef test_broken_by_campaign():\n    assert 'campaign' == 'broken'\n"


PROBE_TEST = """\
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_data_file():
    assert (ROOT / "data" / "probe" / "{module}.txt").read_text().startswith("ok")


def test_helper_outside_the_tests_dir():
    sys.path.insert(0, str(ROOT / "helpers"))
    try:
        from answers_{module} import ANSWER
    finally:
        sys.path.remove(str(ROOT / "helpers"))
    assert ANSWER == 42


def test_own_file_inside_the_package():
    from {package}.own_{module} import ANSWER
    assert ANSWER == 42


def test_optional_library():
    library = pytest.importorskip("campaignlib_{module}")
    assert library.VALUE == 1
"""
PYTEST_INI = ("[pytest]\npythonpath = .\n"
              "addopts = --import-mode=importlib -p orchestrator.pytest_plugin\n")


@dataclass
class Model:
    """Each module's input state as the campaign knows it, and the results a content-addressed
    store keeps: the MAX_PER_MODULE most recently used per module. A state seen before (an
    optional library removed again, pytest.ini gone again) is a cache hit if its result
    passed and was not dropped."""
    graph: object
    version: dict[str, int] = field(default_factory=dict)       # bumped by every edit
    toggles: dict[str, tuple] = field(default_factory=dict)     # reversible per-module facts
    shared: tuple = ()                                          # reversible facts for everyone
    reasons: dict[str, set[str]] = field(default_factory=dict)  # module -> why it is broken
    stored: dict[str, list] = field(default_factory=dict)       # module -> [(state, passed)]

    @property
    def broken(self) -> set[str]:
        return {m for m, why in self.reasons.items() if why}

    def set_broken(self, module: str, reason: str, broken: bool) -> None:
        self.reasons.setdefault(module, set())
        (self.reasons[module].add if broken else self.reasons[module].discard)(reason)

    def bump(self, modules) -> None:
        for module in modules:
            self.version[module] = self.version.get(module, 0) + 1

    def state(self, module: str) -> tuple:
        return self.version.get(module, 0), self.toggles.get(module), self.shared

    def remember(self, module: str, state: tuple, passed: bool) -> None:
        kept = [entry for entry in self.stored.get(module, []) if entry[0] != state]
        self.stored[module] = [(state, passed)] + kept[:MAX_PER_MODULE - 1]

    def expect(self) -> tuple[set[str], dict[str, str]]:
        """(targets that run, {target: status}) for the next `doit all`."""
        status: dict[str, str] = {}
        for module in self.graph:
            deps = self.graph.test_deps(module.id)
            state = self.state(module.id)
            if any(status[d] in ("FAILED", "BLOCKED") for d in deps):
                status[module.id] = "BLOCKED"
            elif (state, True) in self.stored.get(module.id, []):
                status[module.id] = "(cached) PASSED"
                self.remember(module.id, state, True)
            else:
                passed = module.id not in self.broken
                status[module.id] = "PASSED" if passed else "FAILED"
                self.remember(module.id, state, passed)
        ran = {m for m, s in status.items() if s in ("PASSED", "FAILED")}
        return ran, status


class Campaign:
    """Applies seeded random single edits to a project (see conftest.Project)."""

    KINDS = ("export", "demo_cell", "test", "conftest", "graph_entry", "break", "repair",
             "data", "helper", "package_file", "optional", "pytest_ini")

    def __init__(self, project, seed: int):
        self.project, self.rng = project, random.Random(seed)
        self.graph = load(project.root)
        self.model = Model(self.graph)
        self.counter = 0
        self.optional: dict[str, str] = {}      # module -> "absent" | "good" | "bad"

    @staticmethod
    def prepare(project) -> None:
        """Give every module a test of undeclared inputs; put a site dir on the path."""
        project.site = project.root.parent / "site"
        project.site.mkdir(exist_ok=True)
        graph = load(project.root)
        for module in graph.modules:
            project.write(f"data/probe/{module}.txt", "ok\n")
            project.write(f"helpers/answers_{module}.py", "ANSWER = 42\n")
            project.write(f"{graph.package}/own_{module}.py", "ANSWER = 42\n")
            project.write(f"tests/{module}/test_probes.py",
                          PROBE_TEST.format(module=module, package=graph.package))

    def step(self) -> str:
        kind = self.rng.choice(self.KINDS)
        module = self.rng.choice(list(self.graph.modules))
        if kind == "repair" and not self.model.broken:
            kind = "test"
        if kind == "break" and module in self.model.broken:
            kind = "test"
        self.counter += 1
        getattr(self, f"_{kind}")(module)
        return kind if kind in ("conftest", "pytest_ini") else f"{kind} {module}"

    def _export(self, module: str) -> None:
        path = self.graph[module].source.as_posix()
        text = self.project.read(path)
        at = text.index("#| export\n") + len("#| export\n")
        self.project.write(path, text[:at] + f"_campaign_{self.counter} = {self.counter}\n"
                           + text[at:])
        self.model.bump({module, *self.graph.dependents(module)})

    def _demo_cell(self, module: str) -> None:
        path = self.graph[module].source.as_posix()
        self.project.append(path, f"\n# %%\n# campaign note {self.counter}\n")

    def _test(self, module: str) -> None:
        self.project.append(self._test_file(module), f"\n# campaign edit {self.counter}\n")
        self.model.bump({module})

    def _conftest(self, module: str) -> None:
        path = self.project.root / "tests" / "conftest.py"
        previous = path.read_text(encoding="utf-8") if path.exists() else ""
        self.project.write("tests/conftest.py", previous + f"# campaign {self.counter}\n")
        self.model.bump(self.graph.modules)

    def _graph_entry(self, module: str) -> None:
        text = self.project.read("graph.toml")
        header = f"[modules.{module}]\ntitle = \""
        at = text.index(header) + len(header)
        self.project.write("graph.toml", text[:at] + f"v{self.counter} " + text[at:])
        self.graph = load(self.project.root)
        self.model.graph = self.graph
        self.model.bump({module})

    def _break(self, module: str) -> None:
        self.project.append(self._test_file(module), BROKEN)
        self.model.set_broken(module, "test", True)
        self.model.bump({module})

    def _repair(self, module: str) -> None:
        module = self.rng.choice(sorted(self.model.broken))
        path = self._test_file(module)
        text = self.project.read(path)
        if BROKEN in text:    # a new content, not the one before the break
            self.project.write(path, text.replace(BROKEN, f"\n# repaired {self.counter}\n"))
            self.model.set_broken(module, "test", False)
        else:
            self._test(module)
        self.model.bump({module})

    def _data(self, module: str) -> None:
        path = f"data/probe/{module}.txt"
        good = "data" in self.model.reasons.get(module, ())
        self.project.write(path, f"ok {self.counter}\n" if good else f"changed {self.counter}\n")
        self.model.set_broken(module, "data", not good)
        self.model.bump({module})

    def _helper(self, module: str) -> None:
        self._flip_answer(module, f"helpers/answers_{module}.py", "helper")

    def _package_file(self, module: str) -> None:
        """The course's own file inside the package folder, beside the generated ones."""
        self._flip_answer(module, f"{self.graph.package}/own_{module}.py", "package_file")

    def _flip_answer(self, module: str, path: str, reason: str) -> None:
        """A module the tests import: break it if it was good, repair it if it was broken."""
        good = reason in self.model.reasons.get(module, ())
        self.project.write(path, f"ANSWER = 42  # {self.counter}\n" if good else
                           f"ANSWER = 41  # {self.counter}\n")
        self.model.set_broken(module, reason, not good)
        self.model.bump({module})

    def _optional(self, module: str) -> None:
        state = self.optional.get(module, "absent")
        state = self.rng.choice([s for s in ("absent", "good", "bad") if s != state])
        library = self.project.site / f"campaignlib_{module}.py"
        if state == "absent":
            library.unlink()
        else:
            library.write_text(f"VALUE = {1 if state == 'good' else 2}\n")
        self.optional[module] = state
        self.model.set_broken(module, "optional", state == "bad")
        # a library that is absent again is a state seen before: not a new version
        self.model.toggles[module] = None if state == "absent" else (state, self.counter)

    def _pytest_ini(self, module: str) -> None:
        path = self.project.root / "pytest.ini"
        if path.exists():
            path.unlink()
            self.model.shared = ()
        else:
            self.project.write("pytest.ini", PYTEST_INI + f"# campaign {self.counter}\n")
            self.model.shared = ("pytest.ini", self.counter)

    def _test_file(self, module: str) -> str:
        tests = sorted((self.project.root / self.graph[module].tests).glob("test_*.py"))
        return tests[0].relative_to(self.project.root).as_posix()


def run_campaign(project, edits: int, seed: int) -> list[str]:
    """Run the campaign; returns one line per edit; raises AssertionError on the first
    run whose executed set or statuses differ from the model's."""
    Campaign.prepare(project)
    first = project.doit("all")
    assert first.returncode == 0, first.stdout + first.stderr
    campaign = Campaign(project, seed)
    for module in campaign.graph.modules:
        campaign.model.remember(module, campaign.model.state(module), True)
    log = []
    for i in range(edits):
        edit = campaign.step()
        expected_ran, expected_status = campaign.model.expect()
        run = project.doit("all")
        log.append(f"{i:3} {edit:28} ran {sorted(run.executed)}")
        assert run.executed == expected_ran, \
            f"edit {i} ({edit}): ran {sorted(run.executed)}, expected {sorted(expected_ran)}"
        assert run.statuses == expected_status, \
            f"edit {i} ({edit}): {run.statuses} != {expected_status}"
        stale = [m for m in campaign.model.broken if "PASSED" in run.statuses[m]]
        assert not stale, f"edit {i} ({edit}): broken modules reported passed: {stale}"
    return log


def switch_arguments(project, times: int = 3) -> list[str]:
    """Narrowed and full runs in turn, from whatever state the campaign left: after the
    first run of each, a module that passed is `(cached) PASSED` and one that did not says
    the same again (a failure is never reused); a narrowed pass is reported as narrowed.
    Returns one line per run."""
    log, first = [], {}
    for i in range(times):
        for args in (["pytest=-k data_file"], []):
            run = project.doit("all", *args)
            statuses = {m: "(cached) PASSED" if s == "PASSED" else s
                        for m, s in run.statuses.items()}
            log.append(f"switch {i} {args or ['full']}: {sorted(set(run.statuses.values()))}")
            if i == 0:
                first[tuple(args)] = statuses
                if args and "PASSED" in run.statuses.values():
                    assert "selected)" in run.stdout, run.stdout
            else:
                assert statuses == first[tuple(args)], (args, run.stdout)
    return log


def summarize(log: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for line in log:
        words = re.split(r"\s+", line.strip())
        kind = words[0] if words[0] == "switch" else words[1]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
