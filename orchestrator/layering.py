"""The layering check: a module's exported code and its tests import only what it builds on.

Read by AST, never by importing. An import of the package must name an export
path of the module's dependency closure (or the module itself, or a bare
package); anything else must be the standard library or a declared
third-party distribution (pyproject's dependencies and optional dependencies).
A project with no pyproject.toml declares none: third-party imports are then not
judged. Tests may always import pytest, which runs them.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import export
from .graph import Module, ModuleGraph

TEST_RUNNER = {"pytest", "_pytest"}
# Distributions whose import name differs from their normalized name.
IMPORT_NAMES = {"pytest_xdist": "xdist", "scikit_learn": "sklearn", "pyyaml": "yaml"}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    name: str      # what was imported
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.name}: {self.problem}"


def check(graph: ModuleGraph) -> list[Violation]:
    third_party = declared_packages(graph.root)     # None: nothing declared, nothing judged
    owner = {m.export: m.id for m in graph}
    found = []
    shared_test_helpers = f"{graph.tests_dir}.support"   # keys.support_dir: keyed for all
    for module in graph:
        allowed = {graph[m].export for m in graph.closure(module.id)} | {module.export}
        for path, line, name in imports_of(graph, module):
            if path.startswith(f"{graph.tests_dir}/") and \
                    (name == shared_test_helpers or name.startswith(shared_test_helpers + ".")):
                continue   # tests/support imports nothing from the package (see its __init__)
            if path.startswith(f"{graph.tests_dir}/") and name.split(".")[0] in TEST_RUNNER:
                continue
            problem = judge(name, graph.package, allowed, owner, third_party, module)
            if problem:
                found.append(Violation(path, line, name, problem))
    return found + eager_package_imports(graph)


def eager_package_imports(graph: ModuleGraph) -> list[Violation]:
    """An `__init__.py` of the package that imports its modules (as nbdev's often do):
    importing any one module then loads them all, so a module's tests see code outside
    its closure and its cache key is wrong. The package's __init__ files must import
    nothing of the package (export writes them that way when they are missing)."""
    found = []
    for init in sorted((graph.root / graph.package.replace(".", "/")).rglob("__init__.py")):
        path = init.relative_to(graph.root).as_posix()
        try:
            tree = ast.parse(init.read_text(encoding="utf-8"), path)
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in tree.body:
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "."] if node.level or \
                    (node.module or "").split(".")[0] == graph.package else []
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.split(".")[0] == graph.package]
            for name in names:
                found.append(Violation(path, node.lineno, name, (
                    "the package's __init__ imports its modules eagerly: importing any one "
                    "module loads them all, so its tests run code outside their dependency "
                    "closure; empty this __init__.py")))
    return found


def judge(name: str, package: str, allowed: set[str], owner: dict[str, str],
          third_party: set[str] | None, module: Module) -> str | None:
    top = name.split(".")[0]
    if top == package:
        if any(name == a or name.startswith(a + ".") for a in allowed):
            return None
        if any(a.startswith(name + ".") for a in owner):   # a bare package: imports nothing
            return None
        provider = next((mid for path, mid in owner.items()
                         if name == path or name.startswith(path + ".")), None)
        if provider is None:
            return f"no module in graph.toml exports {name}"
        return (f"{provider} is not in {module.id}'s dependency closure "
                f"(add it to deps of {module.id} in graph.toml, or drop the import)")
    if top in sys.stdlib_module_names or top == "__future__" or third_party is None or \
            top in third_party:
        return None
    return f"'{top}' is neither the standard library nor a declared dependency in pyproject.toml"


def imports_of(graph: ModuleGraph, module: Module):
    """(path, line, dotted name) of every absolute import in the module's export cells and tests."""
    try:
        cells = export.exported_cells(module, graph)
    except export.ExportError as e:
        yield module.source.as_posix(), 0, f"<export failed: {e}>"
        return
    for cell in cells:
        for line, name in imports_in(ast.parse("\n".join(cell.lines))):
            yield (cell.origin or module.source).as_posix(), cell.line + line - 1, name
    for path in sorted((graph.root / module.tests).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, name in imports_in(tree):
            yield path.relative_to(graph.root).as_posix(), line, name


def imports_in(tree: ast.AST):
    """(line, dotted name) of every absolute import in an AST."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                # `from pkg.sub import x` may import the submodule pkg.sub.x
                yield node.lineno, f"{node.module}.{alias.name}" if alias.name != "*" \
                    else node.module
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.lineno, node.args[0].value


def _is_import_module(func: ast.AST) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or \
        (isinstance(func, ast.Name) and func.id == "import_module")


def declared_packages(root: Path) -> set[str] | None:
    """Import names of the distributions pyproject.toml declares (all extras included);
    None when there is no pyproject.toml [project] to declare them."""
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    except (FileNotFoundError, KeyError):
        return None
    except tomllib.TOMLDecodeError:
        return set()
    specs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    names = set()
    for spec in specs:
        name = re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("-", "_")
        names.add(IMPORT_NAMES.get(name, name))
    return names
