"""The orchestrator's modules import each other one way: no cycle, counting the imports
made inside functions too (a function-level import is for start-up speed, never to dodge
a cycle). A cycle is a layer pointing back up (docs/ARCHITECTURE.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"


def imports_of(path: Path) -> set[str]:
    """The orchestrator modules `path` imports, wherever in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:            # from .x import y
                found.add(node.module.split(".")[0])
            elif node.level == 1:                          # from . import x, y
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("orchestrator."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("orchestrator."))
    return found


def import_graph() -> nx.DiGraph:
    modules = {p.stem: p for p in PACKAGE.glob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        graph.add_edges_from((name, other) for other in imports_of(path)
                             if other in modules and other != name)
    return graph


def test_no_import_cycles():
    cycles = sorted(sorted(c) for c in nx.simple_cycles(import_graph()))
    assert cycles == [], f"import cycles: {cycles}"


def test_the_graph_sees_function_level_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from . import keys\n    from .store import Result\n")
    assert imports_of(source) == {"keys", "store"}
