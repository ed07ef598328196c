"""graph.toml -> ModuleGraph: load the curriculum and refuse anything malformed.

Every mistake is reported as one GraphError line that names the file, the
module and the reason; callers print it and exit non-zero, no traceback.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

GRAPH_FILE = "graph.toml"
SIZE_TIMEOUTS = {"small": 60, "medium": 300, "large": 900}  # seconds, like Bazel's size
PROJECT_KEYS = {"package", "modules_dir", "tests_dir", "progressive", "preload"}
MODULE_KEYS = {"title", "export", "deps", "api", "requires", "not_applicable", "size",
               "source", "flaky", "inputs"}
REQUIRED_MODULE_KEYS = {"title", "export", "deps"}
MODULE_ID = re.compile(r"^(\d+)_([a-z][a-z0-9_]*)$")
MARKER = "marker"


class GraphError(Exception):
    """A mistake in graph.toml (or the tree it describes), as one printable line."""


@dataclass(frozen=True)
class Module:
    id: str                      # "03_layers"
    name: str                    # "layers"
    index: int                   # position in graph.toml: the curriculum order
    title: str
    export: str                  # "tinytorch.core.layers"
    deps: tuple[str, ...]        # direct deps, all earlier
    api: tuple[str, ...]         # names the export must provide
    requires: tuple[str, ...]    # categories the plan requires
    not_applicable: tuple[str, ...]
    size: str
    source: Path                 # relative to the project root
    tests: Path                  # relative to the project root
    flaky: tuple[str, ...]       # test ids known to be flaky (retried)
    entry: dict = field(compare=False, repr=False)  # the raw table, for cache keys

    @property
    def timeout(self) -> int:
        return SIZE_TIMEOUTS[self.size]

    def export_file(self, root: Path) -> Path:
        return root.joinpath(*self.export.split(".")).with_suffix(".py")


@dataclass
class ModuleGraph:
    root: Path
    path: Path
    package: str
    modules_dir: str
    tests_dir: str
    progressive: str
    preload: list[str]           # imported once by the warm pytest server (launch.py)
    categories: dict[str, str]
    modules: dict[str, Module]   # in curriculum order
    dag: nx.DiGraph              # edge dep -> module

    def __iter__(self):
        return iter(self.modules.values())

    def __getitem__(self, module_id: str) -> Module:
        return self.modules[module_id]

    def closure(self, module_id: str) -> list[str]:
        """Every module `module_id` builds on, directly or not, in curriculum order."""
        return self._ordered(nx.ancestors(self.dag, module_id))

    def dependents(self, module_id: str) -> list[str]:
        return self._ordered(nx.descendants(self.dag, module_id))

    def test_deps(self, module_id: str, strict: bool | None = None) -> list[str]:
        """The test targets that must pass before `module_id`'s tests run."""
        strict = self.progressive == "strict" if strict is None else strict
        if strict:
            return [m.id for m in self if m.index < self[module_id].index]
        return list(self[module_id].deps)

    def _ordered(self, ids) -> list[str]:
        return sorted(ids, key=lambda i: self.modules[i].index)

    def resolve(self, name: str) -> str:
        """'03', '3', 'layers' or '03_layers' -> '03_layers'."""
        if name in self.modules:
            return name
        for m in self:
            number = MODULE_ID.match(m.id).group(1)
            if name in (m.name, number) or (name.isdigit() and int(name) == int(number)):
                return m.id
        raise GraphError(f"{self.path.name}: unknown module '{name}'{suggest(name, self.modules)}")


def suggest(name: str, choices) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.75)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def load(root: Path | str = ".", filename: str = GRAPH_FILE) -> ModuleGraph:
    root = Path(root).resolve()
    path = root / filename
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphError(f"{path}: no such file (run from the project root)") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's error has no lineno attribute: "msg (at line L, column C)"
        match = re.search(r"^(.*) \(at line (\d+), column \d+\)$", str(e))
        msg, line = match.groups() if match else (str(e), "?")
        raise GraphError(f"{path.name}:{line}: TOML syntax error: {msg}") from None
    return _build(root, path, text, raw)


def _build(root: Path, path: Path, text: str, raw: dict) -> ModuleGraph:
    fail = _Failer(path, text)
    unknown = set(raw) - {"project", "categories", "modules"}
    if unknown:
        fail(None, f"unknown top-level table '{sorted(unknown)[0]}'")
    project = raw.get("project", {})
    for key in set(project) - PROJECT_KEYS:
        fail(None, f"unknown key '{key}' in [project]")
    if "package" not in project:
        fail(None, "[project] needs 'package'")
    progressive = project.get("progressive", "declared")
    if progressive not in ("declared", "strict"):
        fail(None, f"[project] progressive must be 'declared' or 'strict', not '{progressive}'")
    preload = project.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(p, str) and p for p in preload):
        fail(None, "[project] preload must be a list of module names")
    for name in preload:
        if name.split(".")[0] == project["package"]:
            fail(None, f"[project] preload '{name}': the project's own package is imported "
                       "fresh for every test run, never preloaded")
    categories = raw.get("categories", {})
    if not categories:
        fail(None, "[categories] is missing or empty")
    modules_raw = raw.get("modules", {})
    if not modules_raw:
        fail(None, "no [modules.*] tables")

    graph = ModuleGraph(
        root=root, path=path, package=project["package"],
        modules_dir=project.get("modules_dir", "modules"),
        tests_dir=project.get("tests_dir", "tests"), progressive=progressive,
        preload=list(preload), categories=dict(categories), modules={}, dag=nx.DiGraph())
    for index, (mid, entry) in enumerate(modules_raw.items()):
        graph.modules[mid] = _module(graph, fail, index, mid, entry)
    _check_edges(graph, fail)
    return graph


def _module(graph: ModuleGraph, fail, index: int, mid: str, entry) -> Module:
    match = MODULE_ID.match(mid)
    if not match:
        fail(mid, "module ids look like NN_name (digits, underscore, lowercase name)")
    if not isinstance(entry, dict):
        fail(mid, "must be a table")
    for key in sorted(set(entry) - MODULE_KEYS):
        fail(mid, f"unknown key '{key}' (known: {', '.join(sorted(MODULE_KEYS))})")
    for key in sorted(REQUIRED_MODULE_KEYS - set(entry)):
        fail(mid, f"missing key '{key}'")
    name = match.group(2)
    export = entry["export"]
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", export) or \
            not export.startswith(graph.package + "."):
        fail(mid, f"export '{export}' must be a dotted path inside package '{graph.package}'")
    size = entry.get("size", "small")
    if size not in SIZE_TIMEOUTS:
        fail(mid, f"size '{size}' is not one of {', '.join(SIZE_TIMEOUTS)}")
    lists = {k: entry.get(k, []) for k in
             ("deps", "api", "requires", "not_applicable", "flaky", "inputs")}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(mid, f"'{key}' must be a list of strings")
    for key in ("requires", "not_applicable"):
        for cat in lists[key]:
            if cat not in graph.categories:
                fail(mid, f"unknown category '{cat}' in {key}{suggest(cat, graph.categories)}")
    both = set(lists["requires"]) & set(lists["not_applicable"])
    if both:
        fail(mid, f"category '{sorted(both)[0]}' is both required and not applicable")
    source = Path(entry.get("source", f"{graph.modules_dir}/{mid}/{name}_dev.py"))
    tests = Path(graph.tests_dir) / mid
    if not (graph.root / source).is_file():
        fail(mid, f"module source {source} does not exist")
    if not (graph.root / tests).is_dir():
        fail(mid, f"tests directory {tests} does not exist")
    return Module(id=mid, name=name, index=index, title=entry["title"], export=export,
                  deps=tuple(lists["deps"]), api=tuple(lists["api"]),
                  requires=tuple(lists["requires"]),
                  not_applicable=tuple(lists["not_applicable"]), size=size,
                  source=source, tests=tests, flaky=tuple(lists["flaky"]), entry=entry)


def _check_edges(graph: ModuleGraph, fail) -> None:
    exports: dict[str, str] = {}
    for m in graph:
        graph.dag.add_node(m.id)
        if m.export in exports:
            fail(m.id, f"export path {m.export} is already used by {exports[m.export]}")
        exports[m.export] = m.id
        for dep in m.deps:
            if dep not in graph.modules:
                fail(m.id, f"unknown dep '{dep}'{suggest(dep, graph.modules)}")
            graph.dag.add_edge(dep, m.id)
    try:
        cycle = nx.find_cycle(graph.dag)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        loop = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        fail(cycle[0][1], f"dependency cycle: {loop}")
    for m in graph:
        for dep in m.deps:
            if graph[dep].index >= m.index:
                fail(m.id, f"dep '{dep}' does not come earlier in {graph.path.name}: "
                           "a module may only build on earlier modules")


class _Failer:
    """Raises GraphError with the file, the line of the module's table and the reason."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def __call__(self, module_id: str | None, reason: str):
        where = self.path.name
        if module_id:
            header = re.compile(rf"^\s*\[modules\.{re.escape(module_id)}\]")
            line = next((i + 1 for i, l in enumerate(self.lines) if header.match(l)), None)
            where = f"{where}:{line}" if line else where
            raise GraphError(f"{where}: module {module_id}: {reason}")
        raise GraphError(f"{where}: {reason}")
