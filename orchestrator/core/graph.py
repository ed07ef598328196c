"""graph.toml -> ModuleGraph: load the curriculum and refuse anything malformed.

Every mistake is reported as one GraphError line that names the file, the
module and the reason; callers print it and exit non-zero, no traceback.
"""
from __future__ import annotations

import functools
import json
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NoReturn

from orchestrator.core.urls import url_problem

GRAPH_FILE = "graph.toml"
SIZE_TIMEOUTS = {"small": 60, "medium": 300, "large": 900}  # seconds, like Bazel's size
PROJECT_KEYS = {"package", "modules_dir", "tests_dir", "progressive", "preload", "remote_cache",
                "ignore"}
MODULE_KEYS = {"title", "export", "deps", "api", "requires", "not_applicable", "size",
               "source", "sources", "tests", "flaky", "inputs", "env"}
REQUIRED_MODULE_KEYS = {"export", "deps"}   # the rest have defaults (README's graph.toml reference)
MODULE_ID = re.compile(r"^(\d+)_([a-z][a-z0-9_]*)$")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MARKER = "marker"


class GraphError(Exception):
    """A mistake in graph.toml (or the tree it describes), as one printable line."""


@dataclass(frozen=True)
class Module:
    id: str                      # "03_layers"
    name: str                    # "layers"
    index: int                   # position in graph.toml: the curriculum order
    title: str                   # default: the name in words, "Layers"
    export: str                  # "tinytorch.core.layers" (graph.toml may say "layers" for
                                 # the package's top-level file tinytorch/layers.py)
    deps: tuple[str, ...]        # direct deps, all earlier
    api: tuple[str, ...]         # names the export must provide
    requires: tuple[str, ...]    # categories the plan requires
    not_applicable: tuple[str, ...]
    size: str
    source: Path                 # relative to the project root (the first, if several)
    tests: Path                  # relative to the project root
    flaky: tuple[str, ...]       # test ids known to be flaky (retried)
    entry: dict = field(compare=False, repr=False)  # the raw table, for cache keys
    more_sources: tuple[Path, ...] = ()   # `sources = [...]`: exported in order after `source`
    env: tuple[str, ...] = ()    # environment variables its tests read (keyed by value)

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self.source, *self.more_sources)

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
    remote_cache: str = ""       # the shared remote cache's URL (remote_http.py); env wins
    ignore: list[str] = field(default_factory=list)   # globs never an input (tree.py)

    def __iter__(self):
        return iter(self.modules.values())

    def __getitem__(self, module_id: str) -> Module:
        return self.modules[module_id]

    def closure(self, module_id: str) -> list[str]:
        """Every module `module_id` builds on, directly or not, in curriculum order."""
        return self._ordered(self._ancestors[module_id])

    def dependents(self, module_id: str) -> list[str]:
        return [m for m, above in self._ancestors.items() if module_id in above]

    @functools.cached_property
    def _ancestors(self) -> dict[str, frozenset[str]]:
        # Every dep comes earlier (checked at load), so one pass in curriculum order finds
        # all ancestors. Not networkx here: importing it is a quarter of a no-op `doit all`.
        found: dict[str, frozenset[str]] = {}
        for m in self:
            found[m.id] = frozenset().union(*({d, *found[d]} for d in m.deps))
        return found

    def test_deps(self, module_id: str, strict: bool | None = None) -> list[str]:
        """The test targets that must pass before `module_id`'s tests run."""
        strict = self.progressive == "strict" if strict is None else strict
        if strict:
            return [m.id for m in self if m.index < self[module_id].index]
        return list(self[module_id].deps)

    def waiting_on(self, module_id: str, strict: bool | None = None) -> list[str]:
        """The test targets that wait, directly or not, for `module_id`'s to pass (the
        reverse of test_deps, closed), in curriculum order."""
        strict = self.progressive == "strict" if strict is None else strict
        if strict:
            return [m.id for m in self if m.index > self[module_id].index]
        return self.dependents(module_id)

    def _ordered(self, ids) -> list[str]:
        return sorted(ids, key=lambda i: self.modules[i].index)

    def resolve(self, name: str) -> str:
        """'03', '3', 'layers' or '03_layers' -> '03_layers'."""
        if name in self.modules:
            return name
        for m in self:
            number = m.id.partition("_")[0]     # a module id is NN_name (_module checks)
            if name in (m.name, number) or (name.isdigit() and int(name) == int(number)):
                return m.id
        raise GraphError(f"{self.path.name}: unknown module '{name}'{suggest(name, self.modules)}")


def suggest(name: str, choices) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.75)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def find_root(start: Path | str = ".") -> Path:
    """The nearest folder holding graph.toml: `start` itself or the closest one above it."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / GRAPH_FILE).is_file():
            return folder
    raise GraphError(f"no {GRAPH_FILE} in {start} or any folder above it "
                     "(run inside a checkout, or pass --root)")


def load(root: Path | str = ".", filename: str = GRAPH_FILE) -> ModuleGraph:
    root = Path(root).resolve()
    path = root / filename
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GraphError(f"{path}: no such file (run from the project root)") from None
    except OSError as e:
        raise GraphError(f"{path}: cannot read it: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - data.rfind(b"\n", 0, e.start)
        raise GraphError(f"{path.name}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} "
                         f"at column {column}); save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's error has no lineno attribute: "msg (at line L, column C)"
        match = re.search(r"^(.*) \(at line (\d+), column \d+\)$", str(e))
        msg, where = match.groups() if match else (str(e), "?")
        raise GraphError(f"{path.name}:{where}: TOML syntax error: {msg}") from None
    return _build(root, path, text, raw)


def _build(root: Path, path: Path, text: str, raw: dict) -> ModuleGraph:
    fail = _Failer(path, text)
    unknown = sorted(set(raw) - {"project", "categories", "modules"})
    if unknown:
        fail(None, f"unknown top-level table '{unknown[0]}'", key=unknown[0])
    project = _table(fail, raw, "project", required=True)
    at = {"table": "project", "prefix": "[project] "}
    for key in sorted(set(project) - PROJECT_KEYS):
        fail(None, f"unknown key '{key}' in [project]", table="project", key=key)
    if "package" not in project:
        fail(None, "[project] needs 'package'", table="project")
    package = _typed(fail, project, "package", str, **at)
    if not package.isidentifier():
        fail(None, f"[project] package '{package}' must be a Python package name",
             table="project", key="package")
    progressive = _typed(fail, project, "progressive", str, "declared", **at)
    if progressive not in ("declared", "strict"):
        fail(None, f"[project] progressive must be 'declared' or 'strict', not '{progressive}'",
             table="project", key="progressive")
    preload = project.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(p, str) and p for p in preload):
        fail(None, "[project] preload must be a list of module names", table="project",
             key="preload")
    for name in preload:
        if name.split(".")[0] == package:
            fail(None, f"[project] preload '{name}': the project's own package is imported "
                       "fresh for every test run, never preloaded", table="project",
                 key="preload")
    modules_dir = _path(fail, project, "modules_dir", "modules", **at)
    tests_dir = _path(fail, project, "tests_dir", "tests", **at)
    categories = _table(fail, raw, "categories")      # optional: no testing plan
    for name in categories:
        _typed(fail, categories, name, str, table="categories", prefix="[categories] ")
    modules_raw = _table(fail, raw, "modules")
    if not modules_raw:
        fail(None, "no [modules.*] tables")

    graph = ModuleGraph(
        root=root, path=path, package=package, modules_dir=modules_dir.as_posix(),
        tests_dir=tests_dir.as_posix(), progressive=progressive, preload=list(preload),
        categories=dict(categories), modules={},
        remote_cache=_remote_cache(fail, project, at), ignore=_ignore(fail, project))
    for index, (mid, entry) in enumerate(modules_raw.items()):
        graph.modules[mid] = _module(graph, fail, index, mid, entry)
    _check_edges(graph, fail)
    return graph


def _module(graph: ModuleGraph, fail: _Failer, index: int, mid: str, entry) -> Module:
    match = MODULE_ID.match(mid)
    if not match:
        fail(mid, "module ids look like NN_name (digits, underscore, lowercase name)")
    if not isinstance(entry, dict):
        fail(mid, "must be a table")
    for key in sorted(set(entry) - MODULE_KEYS):
        fail(mid, f"unknown key '{key}' (known: {', '.join(sorted(MODULE_KEYS))})", key=key)
    for key in sorted(REQUIRED_MODULE_KEYS - set(entry)):
        fail(mid, f"missing key '{key}'")
    name = match.group(2)
    at = {"module": mid}
    title = _typed(fail, entry, "title", str, name.replace("_", " ").title(), **at)
    export = _typed(fail, entry, "export", str, **at)
    if export == graph.package:
        fail(mid, f"export '{export}' is the package itself: name a file inside it, "
                  f"'{export}.{name}' or just '{name}' (the package's __init__.py is generated "
                  "and imports nothing)", key="export")
    if export.isidentifier():               # a top-level file of the package
        export = f"{graph.package}.{export}"
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", export) or \
            not export.startswith(graph.package + "."):
        fail(mid, f"export '{export}' must be a dotted path inside package '{graph.package}'",
             key="export")
    size = _typed(fail, entry, "size", str, "small", **at)
    if size not in SIZE_TIMEOUTS:
        fail(mid, f"size '{size}' is not one of {', '.join(SIZE_TIMEOUTS)}", key="size")
    lists = {k: entry.get(k, []) for k in
             ("deps", "api", "requires", "not_applicable", "flaky", "inputs", "env")}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(mid, f"'{key}' must be a list of strings", key=key)
    for key in ("requires", "not_applicable"):
        for cat in lists[key]:
            if cat not in graph.categories:
                fail(mid, f"unknown category '{cat}' in {key}{suggest(cat, graph.categories)}",
                     key=key)
    both = set(lists["requires"]) & set(lists["not_applicable"])
    if both:
        fail(mid, f"category '{sorted(both)[0]}' is both required and not applicable",
             key="requires")
    for extra in lists["inputs"]:
        # keys.py hashes these: one outside the checkout, or missing, is a mistake
        if not (graph.root / _path(fail, entry, "inputs", value=extra, **at)).exists():
            fail(mid, f"inputs '{extra}' does not exist", key="inputs")
    for variable in lists["env"]:
        if not ENV_NAME.fullmatch(variable):
            fail(mid, f"env '{variable}' is not an environment variable's name", key="env")
        if variable.upper().startswith("ORCHESTRATOR_"):
            fail(mid, f"env '{variable}': the orchestrator's own variables (its remote cache's "
                      "key and token among them) never reach a test", key="env")
    sources = _sources(graph, fail, mid, name, entry, at)
    source = sources[0]
    tests = _path(fail, entry, "tests", f"{graph.tests_dir}/{mid}", **at)
    if not (graph.root / tests).is_dir():
        fail(mid, f"tests directory {tests.as_posix()} does not exist",
             key="tests" if "tests" in entry else None)
    return Module(id=mid, name=name, index=index, title=title, export=export,
                  deps=tuple(lists["deps"]), api=tuple(lists["api"]),
                  requires=tuple(lists["requires"]),
                  not_applicable=tuple(lists["not_applicable"]), size=size,
                  source=source, tests=tests, flaky=tuple(lists["flaky"]), entry=entry,
                  more_sources=tuple(sources[1:]), env=tuple(lists["env"]))


def _remote_cache(fail: _Failer, project: dict, at: dict) -> str:
    url = _typed(fail, project, "remote_cache", str, "", **at)
    if url:
        problem = url_problem(url, "[project] remote_cache", credentials=False,
                              instead="use ORCHESTRATOR_REMOTE_CACHE or "
                                      "ORCHESTRATOR_REMOTE_CACHE_TOKEN")
        if problem:
            fail(None, problem, table="project", key="remote_cache")
    return url


def _ignore(fail: _Failer, project: dict) -> list[str]:
    """`[project] ignore`: globs of files that are no module's input (tree.py), relative
    to the root like every path here."""
    globs = project.get("ignore", [])
    if not isinstance(globs, list) or not all(isinstance(g, str) and g.strip() for g in globs):
        fail(None, "[project] ignore must be a list of globs (e.g. \"docs/**\")",
             table="project", key="ignore")
    for glob in globs:
        _path(fail, project, "ignore", value=glob, prefix="[project] ", table="project")
    return list(globs)


def _sources(graph: ModuleGraph, fail: _Failer, mid: str, name: str, entry: dict,
             at: dict) -> list[Path]:
    """`source = "x.py"` (default modules/NN_name/name_dev.py) or `sources = [...]`, several
    files exported in order into one module; each must exist inside the project."""
    if "source" in entry and "sources" in entry:
        fail(mid, "give 'source' or 'sources', not both", key="sources")
    if "sources" in entry:
        listed = entry["sources"]
        if not isinstance(listed, list) or not listed or \
                not all(isinstance(v, str) for v in listed):
            fail(mid, "'sources' must be a non-empty list of strings", key="sources")
        paths = [_path(fail, entry, "sources", value=v, **at) for v in listed]
        key: str | None = "sources"
    else:
        paths = [_path(fail, entry, "source", f"{graph.modules_dir}/{mid}/{name}_dev.py", **at)]
        key = "source" if "source" in entry else None
    for path in paths:
        if not (graph.root / path).is_file():
            fail(mid, f"module source {path.as_posix()} does not exist", key=key)
    return paths


# Type checks: a value of the wrong TOML type is one line naming the key, never a TypeError.
TOML_TYPES = ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a float"),
              (list, "an array"), (dict, "a table"))


def _described(value) -> str:
    kind = next((name for t, name in TOML_TYPES if isinstance(value, t)), "a date or time")
    return f"{kind} ({json.dumps(value, default=str)})"


def _table(fail: _Failer, raw: dict, name: str, required: bool = False) -> dict:
    """A top-level table of graph.toml ({} if it is absent and not required)."""
    if name not in raw:
        if required:
            fail(None, f"no [{name}] table")
        return {}
    if not isinstance(raw[name], dict):
        fail(None, f"'{name}' must be a table, not {_described(raw[name])}", key=name)
    return raw[name]


def _typed(fail: _Failer, values: dict, key: str, kind: type, default=None,
           module: str | None = None, prefix: str = "", **where):
    """values[key] (`default` if absent), refused unless it is of type `kind`."""
    if key not in values:
        return default
    value = values[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        fail(module, f"{prefix}'{key}' must be {dict(TOML_TYPES)[kind]}, not "
                     f"{_described(value)}", key=key, **where)
    return value


def _path(fail: _Failer, values: dict, key: str, default: str | None = None,
          module: str | None = None, prefix: str = "", value: str | None = None,
          **where) -> Path:
    """A path relative to the project root that stays inside it (not absolute, no '../')."""
    if value is None:
        value = _typed(fail, values, key, str, default, module, prefix, **where)
    normal = posixpath.normpath(value) if value else ""
    if not normal or PurePosixPath(normal).is_absolute() or normal == ".." or \
            normal.startswith("../"):
        fail(module, f"{prefix}{key} '{value}' is outside the project (paths are relative "
                     f"to the folder of {GRAPH_FILE})", key=key, **where)
    return Path(normal)


def _check_edges(graph: ModuleGraph, fail: _Failer) -> None:
    exports: dict[str, str] = {}
    tests: dict[str, str] = {}
    for m in graph:
        _check_tests_dir(m, tests, fail)
        if m.export in exports:
            fail(m.id, f"export path {m.export} is already used by {exports[m.export]}",
                 key="export")
        exports[m.export] = m.id
        for dep in m.deps:
            if dep not in graph.modules:
                fail(m.id, f"unknown dep '{dep}'{suggest(dep, graph.modules)}", key="deps")
    later = [(m, dep) for m in graph for dep in m.deps if graph[dep].index >= m.index]
    if later:
        _check_cycle(graph, fail)       # a cycle is the clearer thing to say, if there is one
        m, dep = later[0]
        fail(m.id, f"dep '{dep}' does not come earlier in {graph.path.name}: "
                   "a module may only build on earlier modules", key="deps")


def _check_cycle(graph: ModuleGraph, fail: _Failer) -> None:
    import networkx as nx  # only on this error path: see ModuleGraph._ancestors
    dag = nx.DiGraph([(dep, m.id) for m in graph for dep in m.deps])
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return
    loop = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
    fail(cycle[0][1], f"dependency cycle: {loop}")


def _check_tests_dir(module: Module, seen: dict[str, str], fail: _Failer) -> None:
    """Each module's tests in a folder of its own: not shared, not inside another's.
    (Compared as posix strings: this runs for every pair of modules on every command.)"""
    at = {"key": "tests" if "tests" in module.entry else None}
    where = module.tests.as_posix()
    for folder, owner in seen.items():
        if folder == where:
            fail(module.id, f"tests directory {where} is already the tests of {owner}", **at)
        if where.startswith(folder + "/") or folder.startswith(where + "/"):
            inner, outer = (where, folder) if where.startswith(folder + "/") else \
                (folder, where)
            other = owner if outer == folder else module.id
            fail(module.id, f"tests directory {inner} is inside {outer}, the tests of "
                            f"{other} (pytest would run it twice)", **at)
    seen[where] = module.id


class _Failer:
    """Raises GraphError: the file, the line, the module and the reason.

    The line is the `key`'s line in the module's table ([modules.NN_name]) or in
    `table` ([project], [categories]; no table: above the first table header), or
    else that table's header line, or else no line."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def __call__(self, module_id: str | None, reason: str, key: str | None = None,
                 table: str | None = None) -> NoReturn:
        if module_id:
            table, reason = f"modules.{module_id}", f"module {module_id}: {reason}"
        line = self.line(table, key)
        where = f"{self.path.name}:{line}" if line else self.path.name
        raise GraphError(f"{where}: {reason}")

    def line(self, table: str | None, key: str | None) -> int | None:
        start = header = None
        if table:
            name = r"\s*\.\s*".join(rf'(?:{re.escape(p)}|"{re.escape(p)}")'
                                    for p in table.split("."))
            pattern = re.compile(rf"^\s*\[\s*{name}\s*\]")
            header = next((i for i, line in enumerate(self.lines) if pattern.match(line)), None)
            if header is None:
                return None
            start = header + 1
        if key:
            assignment = re.compile(rf'^\s*(?:{re.escape(key)}|"{re.escape(key)}")\s*=')
            for i in range(start or 0, len(self.lines)):
                if self.lines[i].lstrip().startswith("["):
                    break
                if assignment.match(self.lines[i]):
                    return i + 1
        return None if header is None else header + 1
