"""A seeded mutation campaign: random single edits to a curriculum, and after each one
`doit all` must execute exactly the targets the edit affects, and never report a
broken test as a pass.

The expected set comes from a model that knows nothing of the orchestrator's keys, only
the rules README.md states ("What a cached result depends on"). It values every input
the way a content-addressed cache must: a file by its content (absent is a value too), a
module's exported code by its own token, a variable by its value. Who keys what:
  - a file of the tree: every module, unless graph.toml scopes it (an `inputs` folder:
    the modules naming it), ignores it (`[project] ignore`: nobody), or it is in a
    module's own tests folder (that module only); a module's source is keyed by its
    exported body only (its code: the module and its dependents; a comment in a demo
    cell: nobody), its graph.toml entry by that module alone;
  - an optional library outside the root: the module that tried to import it
    (observation);
  - a variable of the strict environment (PYTEST_ADDOPTS, OMP_DYNAMIC): every module; one
    a module's `env` declares: that module; any other: nobody (no test sees it).
A module's state is what it keys, valued; a state seen before (a file gone again, a
variable unset again) hits the store if its result passed and was not dropped.
Each edit also says whether a plain pytest of the module would now fail (a broken test,
bad data, a wrong helper, a bad optional library, a waited-for file that appeared with
bad content, a declared variable set to a bad value). A dirty or failed target runs when
nothing it waits for failed or was blocked in the same run; a broken one fails and stays
dirty.

The campaign runs doit with an environment it controls: the keyed variables it toggles
start unset, and PYTHONDONTWRITEBYTECODE=1 (constant) keeps CPython's mtime-and-size
bytecode cache out of the picture, so that what pytest says is what the sources say (an
edit that keeps a file's size and mtime would otherwise run stale bytecode, under plain
pytest as under the orchestrator).
Used by tests/orchestrator/test_cache_soundness.py and bench/cache_soundness.py.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.cache.store import MAX_PER_MODULE
from orchestrator.core.graph import load
from tests.orchestrator.conftest import DoitRun

BROKEN = "\n\ndef test_broken_by_campaign():\n    assert 'campaign' == 'broken'\n"

PROBE_TEST = """\
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "probe" / "{module}"


def test_data_file():
    assert (DATA / "value.txt").read_text().startswith("ok")


@pytest.mark.skipif(not (DATA / "ready.txt").exists(), reason="waits for ready.txt")
def test_waits_for_ready():
    assert (DATA / "ready.txt").read_text().startswith("ok")


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


def test_declared_variable():
    assert os.environ.get("{variable}", "ok").startswith("ok")


def test_undeclared_variable_never_reaches_a_test():
    assert "{undeclared}" not in os.environ


def test_stamp():
    assert "ok" == "ok"  # stamp 000000
"""
STAMP = re.compile(r'assert "ok" == "(ok|no)"  # stamp \d{6}')
PYTEST_INI = ("[pytest]\npythonpath = .\n"
              "addopts = --import-mode=importlib -p orchestrator.run.pytest_plugin\n")
IGNORED = "notes"                       # graph.toml: [project] ignore = ["notes/**"]
# keyed variables of the strict environment the campaign sets and unsets (README: PYTEST_*,
# OMP_*): a change re-runs every module, and breaks nothing
KEYED_VARIABLES = {"PYTEST_ADDOPTS": ("-p no:randomly",), "OMP_DYNAMIC": ("FALSE", "TRUE")}
UNDECLARED = "CAMPAIGN_NOISE"           # in no module's `env`: no test sees it, nobody re-runs
# constant for the whole campaign (a keyed variable: changing it would re-run everything)
CONSTANT_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}
RACY_SECONDS = 2.0                      # a file hashed younger than this is not stat-cached


def declared_variable(module: str) -> str:
    """The variable a module's graph.toml `env` names."""
    return f"CAMPAIGN_FLAG_{module.upper()}"


def scoped_modules(graph) -> list[str]:
    """Every other module names its probe data folder in `inputs` (scoped to it alone); the
    others leave it an input of every module."""
    return list(graph.modules)[1::2]


def _within(rel: str, area: str) -> bool:
    return rel == area or rel.startswith(area.rstrip("/") + "/")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Model:
    """Each input's value as the campaign knows it (a file's content digest, None when
    absent), who keys it, and the results a content-addressed store keeps: the
    MAX_PER_MODULE most recently used per module."""
    graph: object
    scoped: dict[str, frozenset[str]]                           # an `inputs` folder -> modules
    values: dict[str, object] = field(default_factory=dict)     # input name -> value
    reasons: dict[str, set[str]] = field(default_factory=dict)  # module -> why it is broken
    stored: dict[str, list] = field(default_factory=dict)       # module -> [(state, passed)]
    _keyed: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def broken(self) -> set[str]:
        return {m for m, why in self.reasons.items() if why}

    def set_broken(self, module: str, reason: str, broken: bool) -> None:
        self.reasons.setdefault(module, set())
        (self.reasons[module].add if broken else self.reasons[module].discard)(reason)

    def set(self, name: str, value) -> None:
        self.values[name] = value

    def keyed_by(self, name: str) -> frozenset[str]:
        """The modules whose key holds the input `name` (README's rules, nothing else)."""
        found = self._keyed.get(name)
        if found is None:
            found = self._keyed[name] = frozenset(self._who_keys(name))
        return found

    def _who_keys(self, name: str) -> set[str]:
        kind, _, what = name.partition(":")
        everyone = set(self.graph.modules)
        if kind == "export":                  # the module and what builds on it
            return {what, *self.graph.dependents(what)}
        if kind in ("graph", "lib"):          # its graph.toml entry; what its tests imported
            return {what}
        if kind == "env":
            owner = [m for m in self.graph.modules if what in self.graph[m].env]
            return set(owner) if owner else everyone if what in KEYED_VARIABLES else set()
        assert kind == "file", name
        for folder, modules in self.scoped.items():
            if _within(what, folder):
                return set(modules)
        if _within(what, IGNORED):
            return set()
        for module in self.graph:
            if _within(what, module.tests.as_posix()):
                return {module.id}
            if _within(what, module.source.parent.as_posix()):
                return {module.id}
        return everyone

    def state(self, module: str) -> frozenset:
        return frozenset((name, value) for name, value in self.values.items()
                         if value is not None and module in self.keyed_by(name))

    def remember(self, module: str, state, passed: bool) -> None:
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


def environment(project, variables: dict[str, str | None]) -> dict[str, str]:
    """doit's environment: the project's, without any variable the campaign controls, plus
    the campaign's constant ones and `variables` that are set."""
    env = project.env()
    for name in list(env):
        if name in KEYED_VARIABLES or name.startswith("CAMPAIGN_"):
            del env[name]
    env.update(CONSTANT_ENV)
    env.update({n: v for n, v in variables.items() if v is not None})
    return env


def doit(project, variables: dict[str, str | None], *args: str) -> DoitRun:
    return DoitRun(subprocess.run([sys.executable, "-m", "doit", *args], cwd=project.root,
                                  env=environment(project, variables), capture_output=True,
                                  text=True, timeout=300))


class Campaign:
    """Applies seeded random single edits to a project (see conftest.Project): the kinds
    are drawn from shuffled rounds (every kind once a round, so any seed covers them all in
    about len(ROUND) edits), and while a module is broken, an edit repairs one of its faults
    with probability REPAIR_RATE, mostly the first broken module's (else most runs would
    only say that 01 fails and block the rest)."""

    ROUND = ("export", "demo_cell", "test", "conftest", "graph_entry", "break",
             "data", "helper", "package_file", "optional", "pytest_ini",
             "scratch", "waits", "same_size", "env", "env_declared", "env_undeclared",
             "ignored", "tests_folder")
    KINDS = ROUND + ("repair",)
    REPAIR_RATE = 0.3

    def __init__(self, project, seed: int):
        self.project, self.rng = project, random.Random(seed)
        self.graph = load(project.root)
        self.model = Model(self.graph, {f"data/probe/{m}": frozenset({m})
                                        for m in scoped_modules(self.graph)})
        self.counter = 0
        self.round: list[str] = []
        self.variables: dict[str, str | None] = {}   # the campaign's variables for doit
        self.last_run = 0.0                          # when the last doit started
        self._snapshot()

    def _snapshot(self) -> None:
        """Every file of the tree by content: a later edit that restores one is a state
        seen before. graph.toml and the sources are valued by `graph:` and `export:`."""
        skip = {"graph.toml", *(m.source.as_posix() for m in self.graph)}
        for path in sorted(self.project.root.rglob("*")):
            rel = path.relative_to(self.project.root).as_posix()
            if path.is_file() and rel not in skip and not any(
                    part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
                self.model.set(f"file:{rel}", _digest(path.read_bytes()))

    @staticmethod
    def prepare(project) -> None:
        """Give every module a test of inputs that are no test file (a data file, one it
        waits for, a helper outside the tests dir, a file in the package, an optional
        library, variables); scope half of the modules' data in graph.toml, ignore notes/;
        put a site dir on the path."""
        project.site = project.root.parent / "site"
        project.site.mkdir(exist_ok=True)
        graph = load(project.root)
        scoped = scoped_modules(graph)
        for module in graph.modules:
            project.write(f"data/probe/{module}/value.txt", "ok\n")
            project.write(f"helpers/answers_{module}.py", "ANSWER = 42\n")
            project.write(f"{graph.package}/own_{module}.py", "ANSWER = 42\n")
            project.write(f"tests/{module}/test_probes.py", PROBE_TEST.format(
                module=module, package=graph.package, variable=declared_variable(module),
                undeclared=UNDECLARED))
        project.write(f"{IGNORED}/todo.md", "# notes nothing reads\n")
        text = project.read("graph.toml").replace(
            "[project]\n", f'[project]\nignore = ["{IGNORED}/**"]\n', 1)

        def entry(match: re.Match) -> str:
            module = match.group(2)
            extra = f'env = ["{declared_variable(module)}"]\n'
            if module in scoped:
                extra += f'inputs = ["data/probe/{module}"]\n'
            return match.group(1) + extra
        project.write("graph.toml", re.sub(r'(\[modules\.(\w+)\]\ntitle = "[^"]*"\n)', entry,
                                           text))

    def doit(self, *args: str) -> DoitRun:
        self.last_run = time.time()
        return doit(self.project, self.variables, *args)

    # -- the edits --------------------------------------------------------------------

    def step(self) -> str:
        self.counter += 1
        if self.model.broken and self.rng.random() < self.REPAIR_RATE:
            return self._repair()
        if not self.round:
            self.round = list(self.ROUND)
            self.rng.shuffle(self.round)
        kind = self.round.pop()
        module = self.rng.choice(list(self.graph.modules))
        if kind == "break" and "test" in self.model.reasons.get(module, ()):
            kind = "test"
        detail = getattr(self, f"_{kind}")(module)
        return f"{kind} {detail or module}"

    def write(self, rel: str, text: str) -> Path:
        path = self.project.write(rel, text)
        self.model.set(f"file:{rel}", _digest(text.encode("utf-8")))
        return path

    def remove(self, rel: str) -> None:
        (self.project.root / rel).unlink()
        self.model.set(f"file:{rel}", None)

    def _export(self, module: str) -> None:
        path = self.graph[module].source.as_posix()
        text = self.project.read(path)
        at = text.index("#| export\n") + len("#| export\n")
        self.project.write(path, text[:at] + f"_campaign_{self.counter} = {self.counter}\n"
                           + text[at:])
        self.model.set(f"export:{module}", self.counter)

    def _demo_cell(self, module: str) -> None:
        path = self.graph[module].source.as_posix()
        self.project.append(path, f"\n# %%\n# campaign note {self.counter}\n")

    def _test(self, module: str) -> None:
        path = self._test_file(module)
        self.write(path, self.project.read(path) + f"\n# campaign edit {self.counter}\n")

    def _conftest(self, module: str) -> str:
        path = self.project.root / "tests" / "conftest.py"
        previous = path.read_text(encoding="utf-8") if path.exists() else ""
        self.write("tests/conftest.py", previous + f"# campaign {self.counter}\n")
        return "tests/conftest.py"

    def _graph_entry(self, module: str) -> None:
        text = self.project.read("graph.toml")
        header = f"[modules.{module}]\ntitle = \""
        at = text.index(header) + len(header)
        self.project.write("graph.toml", text[:at] + f"v{self.counter} " + text[at:])
        self.graph = load(self.project.root)
        self.model.graph = self.graph
        self.model.set(f"graph:{module}", self.counter)

    def _break(self, module: str) -> None:
        path = self._test_file(module)
        self.write(path, self.project.read(path) + BROKEN)
        self.model.set_broken(module, "test", True)

    def _data(self, module: str, fix: bool = False) -> str:
        path = f"data/probe/{module}/value.txt"
        good = self._stays_good(module, "data", fix)
        self.write(path, f"ok {self.counter}\n" if good else f"changed {self.counter}\n")
        self.model.set_broken(module, "data", not good)
        return f"{module} ({'scoped' if path.startswith(tuple(self.model.scoped)) else 'everyone'})"

    def _stays_good(self, module: str, reason: str, fix: bool) -> bool:
        """Whether an edit that can break `module` for `reason` leaves it good: it does when
        repairing, it repairs what `reason` broke, and it breaks a good one half the time."""
        return fix or reason in self.model.reasons.get(module, ()) or self.rng.random() < 0.5

    def _helper(self, module: str, fix: bool = False) -> None:
        self._flip_answer(module, f"helpers/answers_{module}.py", "helper", fix)

    def _package_file(self, module: str, fix: bool = False) -> None:
        """The course's own file inside the package folder, beside the generated ones."""
        self._flip_answer(module, f"{self.graph.package}/own_{module}.py", "package_file", fix)

    def _flip_answer(self, module: str, path: str, reason: str, fix: bool) -> None:
        """A module the tests import: repair it if it was broken, else maybe break it."""
        good = self._stays_good(module, reason, fix)
        self.write(path, f"ANSWER = 42  # {self.counter}\n" if good else
                   f"ANSWER = 41  # {self.counter}\n")
        self.model.set_broken(module, reason, not good)

    def _optional(self, module: str, fix: bool = False) -> str:
        """An optional library outside the root: absent (the test skips), good or bad. Its
        contents are fixed, so good again is a state seen before."""
        library = self.project.site / f"campaignlib_{module}.py"
        current = library.read_text() if library.exists() else None
        choices = [None, "VALUE = 1\n"] + ([] if fix else ["VALUE = 2\n"])
        text = self.rng.choice([c for c in choices if c != current])
        if text is None:
            library.unlink()
        else:
            library.write_text(text)
        self.model.set(f"lib:{module}", text)
        self.model.set_broken(module, "optional", text == "VALUE = 2\n")
        return f"{module} {'absent' if text is None else 'good' if '1' in text else 'bad'}"

    def _pytest_ini(self, module: str) -> str:
        if (self.project.root / "pytest.ini").exists():
            self.remove("pytest.ini")
            return "removed"
        self.write("pytest.ini", PYTEST_INI + f"# campaign {self.counter}\n")
        return "added"

    def _scratch(self, module: str) -> str:
        """A new file at the root (every module keys the tree), or one such file gone
        again; nothing breaks."""
        scratch = sorted(p.name for p in self.project.root.glob("scratch_*.txt"))
        if scratch and self.rng.random() < 1 / 3:
            name = self.rng.choice(scratch)
            self.remove(name)
            return f"-{name}"
        name = f"scratch_{self.counter}.txt"
        self.write(name, f"scratch {self.counter}\n")
        return f"+{name}"

    def _waits(self, module: str, fix: bool = False) -> str:
        """The data file a skipped test waits for appears (with good or bad content),
        changes or goes again (the test skips again: a state seen before)."""
        path = f"data/probe/{module}/ready.txt"
        full = self.project.root / path
        current = full.read_text() if full.exists() else None
        choices = [None, "ok\n"] + ([] if fix else ["no\n"])
        text = self.rng.choice([c for c in choices if c != current])
        if text is None:
            self.remove(path)
        else:
            self.write(path, text)
        self.model.set_broken(module, "waits", text == "no\n")
        return f"{module} {'gone' if text is None else text.strip()}"

    def _same_size(self, module: str, fix: bool = False) -> str:
        """A test file rewritten in place with its size and mtime kept (`tar --mtime`,
        `touch -r`): only its ctime and content say it changed. It flips the test's verdict.
        'aged' when the old file was older than the stat cache's racy window at the last
        run, so a stat cache that trusted size and mtime would have kept its old digest."""
        path = f"tests/{module}/test_probes.py"
        full = self.project.root / path
        before = full.stat()
        aged = self.last_run - max(before.st_mtime, before.st_ctime) > RACY_SECONDS
        good = self._stays_good(module, "stamp", fix)
        text = STAMP.sub(f'assert "ok" == "{"ok" if good else "no"}"  # stamp '
                         f'{self.counter:06d}', self.project.read(path))
        self.write(path, text)
        os.utime(full, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = full.stat()
        assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
            (before.st_size, before.st_mtime_ns, before.st_ino), path
        self.model.set_broken(module, "stamp", not good)
        return f"{module}{' aged' if aged else ''}"

    def _env(self, module: str) -> str:
        """A keyed variable set, changed or unset between runs: every module re-runs."""
        name = self.rng.choice(sorted(KEYED_VARIABLES))
        value = self.rng.choice([v for v in (None, *KEYED_VARIABLES[name])
                                 if v != self.variables.get(name)])
        self._set_variable(name, value)
        return f"{name}={value}" if value is not None else f"{name}-unset"

    def _env_declared(self, module: str, fix: bool = False) -> str:
        """The variable the module's `env` names: set to a good or bad value, or unset."""
        name = declared_variable(module)
        choices = [None, f"ok {self.counter}"] + ([] if fix else [f"bad {self.counter}"])
        value = self.rng.choice([v for v in choices if v != self.variables.get(name)])
        self._set_variable(name, value)
        self.model.set_broken(module, "env_declared", value is not None and
                              value.startswith("bad"))
        return f"{module} {(value or 'unset').split()[0]}"

    def _env_undeclared(self, module: str) -> str:
        """A variable no module declares: no test sees it, nobody re-runs."""
        value = None if self.variables.get(UNDECLARED) else f"noise {self.counter}"
        self._set_variable(UNDECLARED, value)
        return "set" if value else "unset"

    def _set_variable(self, name: str, value: str | None) -> None:
        self.variables[name] = value
        self.model.set(f"env:{name}", value)

    def _ignored(self, module: str) -> str:
        """A file graph.toml ignores: nothing re-runs."""
        if self.rng.random() < 0.5:
            path = f"{IGNORED}/note_{self.counter}.md"
            self.write(path, f"note {self.counter}\n")
        else:
            path = f"{IGNORED}/todo.md"
            self.write(path, self.project.read(path) + f"- item {self.counter}\n")
        return path

    def _tests_folder(self, module: str) -> None:
        """A file that is no test in a module's tests folder: that module only."""
        path = f"tests/{module}/fixtures/notes.txt"
        full = self.project.root / path
        previous = full.read_text(encoding="utf-8") if full.exists() else ""
        self.write(path, previous + f"fixture {self.counter}\n")

    def _repair(self) -> str:
        """One fault of one broken module, fixed with new content (or by going back to a
        good state seen before: a library or a waited-for file gone, a variable unset)."""
        broken = [m for m in self.graph.modules if m in self.model.broken]
        # mostly the first in graph order: while it fails, everything after it is blocked
        module = broken[0] if self.rng.random() < 2 / 3 else self.rng.choice(broken)
        reason = self.rng.choice(sorted(self.model.reasons[module]))
        if reason == "test":
            path = self._test_file(module)
            text = self.project.read(path)
            self.write(path, text.replace(BROKEN, f"\n# repaired {self.counter}\n"))
            self.model.set_broken(module, "test", False)
        else:
            getattr(self, f"_{'same_size' if reason == 'stamp' else reason}")(module, fix=True)
        return f"repair {module} {reason}"

    def _test_file(self, module: str) -> str:
        tests = sorted(p for p in (self.project.root / self.graph[module].tests).glob("test_*.py")
                       if p.name != "test_probes.py")
        return tests[0].relative_to(self.project.root).as_posix()


class StalePass(AssertionError):
    """doit reported as passing (or cached) a module that a plain pytest fails."""


def run_campaign(project, edits: int, seed: int) -> list[str]:
    """Run the campaign; returns one line per edit; raises StalePass on the first run that
    reports a broken module as passing, and AssertionError on the first whose executed set
    or statuses differ from the model's (each saying what plain pytest says of the modules
    in question)."""
    Campaign.prepare(project)
    first = doit(project, {}, "all")
    assert first.returncode == 0, first.stdout + first.stderr
    campaign = Campaign(project, seed)
    project.campaign_variables = campaign.variables     # switch_arguments goes on from here
    for module in campaign.graph.modules:
        campaign.model.remember(module, campaign.model.state(module), True)
    log = []
    for i in range(edits):
        edit = campaign.step()
        expected_ran, expected_status = campaign.model.expect()
        run = campaign.doit("all")
        log.append(f"{i:3} {edit:32} ran {sorted(run.executed)}")
        stale = sorted(m for m in campaign.model.broken if "PASSED" in run.statuses.get(m, ""))
        if stale:
            raise StalePass(f"edit {i} ({edit}): broken modules reported passed: {stale}"
                            f"{plain_pytest(project, campaign.variables, stale)}\n{run.stdout}")
        differ = sorted(m for m in expected_status if run.statuses.get(m) != expected_status[m])
        where = f"{plain_pytest(project, campaign.variables, differ)}\n{run.stdout}" \
            f"{run.stderr[-3000:]}"
        assert run.executed == expected_ran, \
            f"edit {i} ({edit}): ran {sorted(run.executed)}, expected {sorted(expected_ran)}" \
            + where
        assert run.statuses == expected_status, \
            f"edit {i} ({edit}): {run.statuses} != {expected_status}" + where
    return log


def plain_pytest(project, variables: dict[str, str | None], modules) -> str:
    """What `python -m pytest tests/NN` says of each module now, with doit's environment:
    the referee when the model and the orchestrator disagree."""
    lines = []
    for module in modules:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p",
                              "no:cacheprovider", f"tests/{module}"], cwd=project.root,
                             env=environment(project, variables), capture_output=True,
                             text=True, timeout=300)
        out = run.stdout.strip().splitlines() or [""]
        lines.append(f"plain pytest {module}: exit {run.returncode}, {out[-1]}")
        lines += [f"    {line}" for line in out if line.startswith("FAILED")]
    return "".join(f"\n{line}" for line in lines)


def switch_arguments(project, times: int = 3) -> list[str]:
    """Narrowed and full runs in turn, from whatever state the campaign left: after the
    first run of each, a module that passed is `(cached) PASSED` and one that did not says
    the same again (a failure is never reused); a narrowed pass is reported as narrowed.
    Returns one line per run."""
    log, first = [], {}
    variables = getattr(project, "campaign_variables", {})
    for i in range(times):
        for args in (["pytest=-k data_file"], []):
            run = doit(project, variables, "all", *args)
            statuses = {m: "(cached) PASSED" if s == "PASSED" else s
                        for m, s in run.statuses.items()}
            log.append(f"switch {i} {args or ['full']}: {sorted(set(run.statuses.values()))}")
            if i == 0:
                first[tuple(args)] = statuses
                if args and "PASSED" in run.statuses.values():
                    assert re.search(r"\(\d+ of \d+ selected\b", run.stdout), run.stdout
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
