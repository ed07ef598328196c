"""A seeded mutation campaign: random single edits to a curriculum, and after each one
`doit all` must execute exactly the targets the edit affects, and never report a
broken test as a pass.

The expected set comes from a model that knows nothing of the orchestrator's keys:
an edit dirties targets (a module's exported code: it and its dependents; its tests,
or its graph entry: it alone; a conftest above all tests: everyone; a comment in a
non-exported cell: nobody). A dirty or failed target runs when nothing it waits for
failed or was blocked in the same run; a broken one fails and stays dirty.
Used by tests/orchestrator/test_cache_soundness.py and bench/cache_soundness.py.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from orchestrator.graph import load

BROKEN = "\n\ndef test_broken_by_campaign():\n    assert 'campaign' == 'broken'\n"


@dataclass
class Model:
    graph: object
    dirty: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)

    def expect(self) -> tuple[set[str], dict[str, str]]:
        """(targets that run, {target: status}) for the next `doit all`."""
        status: dict[str, str] = {}
        for module in self.graph:
            deps = self.graph.test_deps(module.id)
            if any(status[d] in ("FAILED", "BLOCKED") for d in deps):
                status[module.id] = "BLOCKED"
            elif module.id in self.dirty:
                status[module.id] = "FAILED" if module.id in self.broken else "PASSED"
            else:
                status[module.id] = "(cached) PASSED"
        ran = {m for m, s in status.items() if s in ("PASSED", "FAILED")}
        self.dirty -= {m for m, s in status.items() if s == "PASSED"}
        return ran, status


class Campaign:
    """Applies seeded random single edits to a project (see conftest.Project)."""

    KINDS = ("export", "demo_cell", "test", "conftest", "graph_entry", "break", "repair")

    def __init__(self, project, seed: int):
        self.project, self.rng = project, random.Random(seed)
        self.graph = load(project.root)
        self.model = Model(self.graph)
        self.counter = 0

    def step(self) -> str:
        kind = self.rng.choice(self.KINDS)
        module = self.rng.choice(list(self.graph.modules))
        if kind == "repair" and not self.model.broken:
            kind = "test"
        if kind == "break" and module in self.model.broken:
            kind = "test"
        self.counter += 1
        getattr(self, f"_{kind}")(module)
        return kind if kind == "conftest" else f"{kind} {module}"

    def _export(self, module: str) -> None:
        path = self.graph[module].source.as_posix()
        text = self.project.read(path)
        at = text.index("#| export\n") + len("#| export\n")
        self.project.write(path, text[:at] + f"_campaign_{self.counter} = {self.counter}\n"
                           + text[at:])
        self.model.dirty |= {module, *self.graph.dependents(module)}

    def _demo_cell(self, module: str) -> None:
        path = self.graph[module].source.as_posix()
        self.project.append(path, f"\n# %%\n# campaign note {self.counter}\n")

    def _test(self, module: str) -> None:
        self.project.append(self._test_file(module), f"\n# campaign edit {self.counter}\n")
        self.model.dirty.add(module)

    def _conftest(self, module: str) -> None:
        path = self.project.root / "tests" / "conftest.py"
        previous = path.read_text(encoding="utf-8") if path.exists() else ""
        self.project.write("tests/conftest.py", previous + f"# campaign {self.counter}\n")
        self.model.dirty |= set(self.graph.modules)

    def _graph_entry(self, module: str) -> None:
        text = self.project.read("graph.toml")
        header = f"[modules.{module}]\ntitle = \""
        at = text.index(header) + len(header)
        self.project.write("graph.toml", text[:at] + f"v{self.counter} " + text[at:])
        self.graph = load(self.project.root)
        self.model.graph = self.graph
        self.model.dirty.add(module)

    def _break(self, module: str) -> None:
        self.project.append(self._test_file(module), BROKEN)
        self.model.broken.add(module)
        self.model.dirty.add(module)

    def _repair(self, module: str) -> None:
        module = self.rng.choice(sorted(self.model.broken))
        path = self._test_file(module)
        self.project.write(path, self.project.read(path).replace(BROKEN, ""))
        self.model.broken.discard(module)
        self.model.dirty.add(module)

    def _test_file(self, module: str) -> str:
        tests = sorted((self.project.root / self.graph[module].tests).glob("test_*.py"))
        return tests[0].relative_to(self.project.root).as_posix()


def run_campaign(project, edits: int, seed: int) -> list[str]:
    """Run the campaign; returns one line per edit; raises AssertionError on the first
    run whose executed set or statuses differ from the model's."""
    first = project.doit("all")
    assert first.returncode == 0, first.stdout + first.stderr
    campaign = Campaign(project, seed)
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


def summarize(log: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for line in log:
        kind = re.split(r"\s+", line.strip())[1]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
