"""The coverage matrix: modules x the testing plan's categories, from the last test results.

A test belongs to a category by its file name (`[categories]` patterns) or by a
marker (categories whose value is "marker"). `@pytest.mark.covers("02_x")` also
credits it to module 02_x: gradient checks of 02-04 live in 05, the first
module with autograd. A cell is the number of passing tests, "n/a" where the
plan says the category does not apply; `--check` fails on any required
category with no passing test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from orchestrator.cache import store
from orchestrator.core.graph import MARKER, ModuleGraph

NOT_APPLICABLE = "n/a"


@dataclass
class Cell:
    passed: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # other module -> tests credited

    def text(self) -> str:
        if not self.sources:
            return str(self.passed)
        credited = ", ".join(f"{n} from {m}" for m, n in sorted(self.sources.items()))
        return f"{self.passed} ({credited})"


def test_categories(graph: ModuleGraph, module_name: str, nodeid: str,
                    markers: list[str]) -> set[str]:
    filename = nodeid.split("::")[0].rsplit("/", 1)[-1]
    found = {c for c, pattern in graph.categories.items()
             if pattern != MARKER and pattern.format(name=module_name) == filename}
    return found | {c for c in markers if graph.categories.get(c) == MARKER}


def matrix(graph: ModuleGraph) -> dict[str, dict[str, Cell | str]]:
    cells = {m.id: {c: (NOT_APPLICABLE if c in m.not_applicable else Cell())
                    for c in graph.categories} for m in graph}
    for module in graph:
        result = store.load(graph.root, module.id)
        if result is None:
            continue
        for nodeid, test in result.tests.items():
            if test.get("outcome") != "passed":
                continue
            categories = test_categories(graph, module.name, nodeid, test.get("markers", []))
            for target in [module.id] + [c for c in test.get("covers", []) if c in cells]:
                for category in categories:
                    cell = cells[target][category]
                    if isinstance(cell, Cell):
                        cell.passed += 1
                        if target != module.id:
                            cell.sources[module.id] = cell.sources.get(module.id, 0) + 1
    return cells


def missing(graph: ModuleGraph, cells) -> list[str]:
    """'03_layers: gradient_flow' for every required category with no passing test."""
    return [f"{m.id}: {c}" for m in graph for c in m.requires
            if isinstance(cells[m.id][c], Cell) and cells[m.id][c].passed == 0]


def to_text(graph: ModuleGraph, cells, markdown: bool = False) -> str:
    header = ["module"] + list(graph.categories)
    rows = [[mid] + [c if isinstance(c, str) else c.text() for c in row.values()]
            for mid, row in cells.items()]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                     for r in [header] + rows)


def to_json(graph: ModuleGraph, cells) -> str:
    return json.dumps({mid: {c: v if isinstance(v, str) else
                             {"passed": v.passed, "credited_from": v.sources}
                             for c, v in row.items()} for mid, row in cells.items()}, indent=2)
