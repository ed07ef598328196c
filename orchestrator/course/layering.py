"""The layering check: a module's exported code and its tests import only what it builds on.

Read by AST, never by importing. An import of the package must name an export
path of the module's dependency closure (or the module itself, a bare package, or a
file of the package folder that no module exports: the course's own, an input of
every module); anything else must be the standard library, a helper of the course
(a top-level module or package of the root or of the tests folder), or a declared
third-party distribution (pyproject's dependencies and optional dependencies). A
project with no pyproject.toml declares none: third-party imports are then not
judged. Tests may always import pytest, which runs them.

`orchestrator check` prints what is found as `Finding`s of a `Kind`, grouped by kind and
module, the worst first (`groups`). The same imports fail in the module's runs, where
the closure guard (closure_guard.py) refuses what the closure does not hold.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from orchestrator.core import export
from orchestrator.core.graph import Module, ModuleGraph

TEST_RUNNER = {"pytest", "_pytest"}
# Distributions whose import name differs from their normalized name.
IMPORT_NAMES = {"pytest_xdist": "xdist", "scikit_learn": "sklearn", "pyyaml": "yaml"}


class Kind(Enum):
    """What a finding is, worst first: the order `orchestrator check` prints them in.
    Each value: (the JSON name, one finding, several, what it does to a run)."""
    SETUP = ("setup", "doit setup problem", "doit setup problems",
             "doit runs without the orchestrator's tasks or run command")
    EAGER_INIT = ("eager_init", "eager import in a package __init__",
                  "eager imports in a package __init__",
                  "importing any module loads them all, which fails every module's runs")
    EXPORT = ("export", "export that fails", "exports that fail",
              "the module and what builds on it cannot run")
    UNREADABLE = ("unreadable", "file that does not parse", "files that do not parse",
                  "pytest fails to collect it")
    FORWARD = ("forward", "import of a later module", "imports of a later module",
               "raises ImportError in this module's runs, which see only what it builds on")
    OUTSIDE = ("outside", "import outside the dependency closure",
               "imports outside the dependency closure",
               "raises ImportError in this module's runs, which see only what it builds on")
    UNKNOWN = ("unknown", "import of what no module exports",
               "imports of what no module exports", "fails wherever it runs")
    UNDECLARED_READ = ("undeclared_read", "undeclared read", "undeclared reads",
                       "its result is never reused until the file is declared")
    THIRD_PARTY = ("third_party", "undeclared third-party import",
                   "undeclared third-party imports", "a fresh install may lack it")

    @property
    def rank(self) -> int:
        return list(Kind).index(self)

    def counted(self, n: int) -> str:
        return f"{n} {self.value[1] if n == 1 else self.value[2]}"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    name: str      # what was imported
    problem: str
    kind: Kind = Kind.OUTSIDE
    module: str | None = None      # the module whose code or tests hold it (None: project)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.kind in (Kind.EXPORT, Kind.UNREADABLE):      # no import to name
            return f"{where}: {self.problem}"
        return f"{where}: imports {self.name}: {self.problem}"


@dataclass(frozen=True)
class Finding:
    """One line of `orchestrator check`."""
    kind: Kind
    module: str | None             # None: the project as a whole
    text: str
    path: str = ""
    line: int = 0

    @classmethod
    def of(cls, violation: Violation) -> Finding:
        return cls(violation.kind, violation.module, str(violation), violation.path,
                   violation.line)


@dataclass
class Group:
    """The findings of one kind in one module."""
    kind: Kind
    module: str | None
    findings: list[Finding]

    def header(self) -> str:
        return (f"== {self.module or 'project'}: {self.kind.counted(len(self.findings))} "
                f"({self.kind.value[3]})")

    def as_json(self) -> dict:
        return {"kind": self.kind.value[0], "module": self.module,
                "count": len(self.findings), "what": self.kind.value[1],
                "effect": self.kind.value[3],
                "findings": [{"text": f.text, "path": f.path or None, "line": f.line or None}
                             for f in self.findings]}


def groups(findings: list[Finding], graph: ModuleGraph) -> list[Group]:
    """By kind (worst first), then module (project-wide first, then curriculum order);
    findings keep the order they were found in."""
    found: dict[tuple[Kind, str | None], Group] = {}
    for finding in findings:
        key = (finding.kind, finding.module)
        found.setdefault(key, Group(finding.kind, finding.module, [])).findings.append(finding)
    index = {m.id: m.index for m in graph}
    return sorted(found.values(), key=lambda g: (g.kind.rank, -1 if g.module is None
                                                 else index.get(g.module, len(index))))


def summary(groups_: list[Group]) -> str:
    """'5 findings in 3 modules: 3 imports of a later module, 2 undeclared reads'."""
    total = sum(len(g.findings) for g in groups_)
    modules = {g.module for g in groups_ if g.module}
    by_kind: dict[Kind, int] = {}
    for group in groups_:
        by_kind[group.kind] = by_kind.get(group.kind, 0) + len(group.findings)
    where = f" in {len(modules)} module{'s' if len(modules) != 1 else ''}" if modules else ""
    return (f"{total} finding{'s' if total != 1 else ''}{where}: " +
            ", ".join(kind.counted(n) for kind, n in by_kind.items()))


def check(graph: ModuleGraph) -> list[Violation]:
    third_party = declared_packages(graph.root)     # None: nothing declared, nothing judged
    owner = {m.export: m.id for m in graph}
    found = []
    shared_test_helpers = f"{graph.tests_dir}.support"   # keys.support_dir: keyed for all
    for module in graph:
        allowed = {graph[m].export for m in graph.closure(module.id)} | {module.export}
        for path, line, name in imports_of(graph, module):
            if isinstance(name, Unreadable):
                found.append(Violation(path, line, name.what, name.problem, name.kind,
                                       module.id))
                continue
            in_tests = path.startswith(f"{graph.tests_dir}/")
            if in_tests and (name == shared_test_helpers or
                             name.startswith(shared_test_helpers + ".")):
                continue   # tests/support imports nothing from the package (see its __init__)
            if in_tests and name.split(".")[0] in TEST_RUNNER:
                continue
            if not name.startswith(graph.package + ".") and \
                    _local(graph, module, name.split(".")[0], in_tests):
                continue
            judged = judge(name, graph, allowed, owner, third_party, module, in_tests)
            if judged:
                found.append(Violation(path, line, name, judged[1], judged[0], module.id))
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
                    "closure; empty this __init__.py"), Kind.EAGER_INIT))
    return found


def judge(name: str, graph: ModuleGraph, allowed: set[str], owner: dict[str, str],
          third_party: set[str] | None, module: Module,
          in_tests: bool = True) -> tuple[Kind, str] | None:
    """(kind, problem) of an import that `module`'s code or tests may not make, or None."""
    package = graph.package
    top = name.split(".")[0]
    if top == package:
        if any(name == a or name.startswith(a + ".") for a in allowed):
            return None
        if any(a.startswith(name + ".") for a in owner):   # a bare package: imports nothing
            return None
        provider = next((mid for path, mid in owner.items()
                         if name == path or name.startswith(path + ".")), None)
        if provider is None:
            if _package_file(graph, name):         # the course's own file: an input of all
                return None
            return Kind.UNKNOWN, f"no module in graph.toml exports {name}"
        if graph[provider].index > module.index:
            way = (f"move this test to {provider}'s tests" if in_tests else
                   f"move the code that needs it to {provider} or later")
            return Kind.FORWARD, (f"{provider} comes after {module.id} in graph.toml, so "
                                  f"{module.id}'s runs do not have it ({way}, or renumber "
                                  f"{provider} before {module.id})")
        return Kind.OUTSIDE, (f"{provider} is not in {module.id}'s dependency closure "
                              f"(add it to deps of {module.id} in graph.toml, or drop the "
                              "import)")
    if top in sys.stdlib_module_names or top == "__future__" or third_party is None or \
            top in third_party:
        return None
    return Kind.THIRD_PARTY, (f"'{top}' is neither the standard library nor a declared "
                              "dependency in pyproject.toml")


def _package_file(graph: ModuleGraph, name: str) -> bool:
    """Whether `name` (or a module it starts with) is a file or package of the package
    folder, one no module exports (an export target is judged by its module)."""
    parts = name.split(".")
    for i in range(len(parts), 1, -1):
        path = graph.root.joinpath(*parts[:i])
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return True
    return False


def _local(graph: ModuleGraph, module: Module, top: str, in_tests: bool) -> bool:
    """A helper of the course, not a distribution: a top-level module or package of the
    root, or (for tests) of the tests folder or the module's own test folder, which
    pytest and conftests put on the path."""
    folders = [graph.root]
    if in_tests:
        folders += [graph.root / graph.tests_dir, graph.root / module.tests]
    return any((f / f"{top}.py").is_file() or (f / top / "__init__.py").is_file()
               for f in folders)


@dataclass(frozen=True)
class Unreadable:
    """What imports_of yields for a file whose imports cannot be read."""
    what: str
    problem: str
    kind: Kind


def imports_of(graph: ModuleGraph, module: Module):
    """(path, line, dotted name) of every absolute import in the module's export cells and
    tests; (path, line, Unreadable) for an export that fails or a test that does not parse."""
    try:
        cells = export.exported_cells(module, graph)
    except export.ExportError as e:
        yield module.source.as_posix(), 0, Unreadable(
            "nothing", f"its export fails: {e}", Kind.EXPORT)
        return
    for cell in cells:
        for line, name in imports_in(ast.parse("\n".join(cell.lines))):
            yield (cell.origin or module.source).as_posix(), cell.line + line - 1, name
    for path in sorted((graph.root / module.tests).rglob("*.py")):
        rel = path.relative_to(graph.root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as e:
            line = getattr(e, "lineno", 0) or 0
            yield rel, line, Unreadable("nothing", f"it does not parse: "
                                                   f"{getattr(e, 'msg', None) or e}",
                                        Kind.UNREADABLE)
            continue
        for line, name in imports_in(tree):
            yield rel, line, name


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
