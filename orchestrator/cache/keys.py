"""Content keys: everything a test target's result depends on, and what changed.

A key is a flat dict {input name: digest}. Names say what the input is, so a
diff of two keys is the explanation of a cache miss. Fail closed: what cannot be ruled
out as an input is one. Declared inputs, known before the run:
  test:tests/03_layers/test_layers_core.py   a file under the module's tests dir
  conftest:tests/conftest.py                 a conftest above the tests dir
  support:tests/support/recorded_graph.py    a shared test helper (tests/support)
  input:data/digits/digits.npz               a file of an `inputs` path (scoped to the
                                             modules that name it)
  file:pyproject.toml                        every other file of the tree that tree.py does
                                             not rule out for this module
  export:tinytorch/core/tensor.py            a generated file of the dependency closure
  graph:03_layers                            the module's graph.toml entry (+ project settings)
  pytest:args / pytest:config                arguments; every config file pytest could read
  envvar:OMP_NUM_THREADS                     a variable the tests see that can change a result
                                             (strict_env.py; its value's sha256, or "unset")
  env:python / env:interpreter               the interpreter's version and executable
  installed:numpy                            every installed distribution, by version
Observed inputs, recorded by the run itself (observe.py) and stored with its result:
  observed:tinytorch/core/training.py        a file outside the module's tree that it read
                                             (a later module's export; "missing" if a
                                             failed open)
  listed:data/probe                          a directory the run listed
  dist:torch                                 a third-party distribution it imported
  outside:$prefix/lib/helpers/answers.py     a module it imported from outside the root
                                             that no distribution owns (relative to the
                                             environment, or to the root: never a home dir)
  absent:fancylib                            an import it attempted that was not found
A result is reused when the digest of declared ∪ its observed inputs, computed now,
equals its key, and its run read nothing its scope rules out (undeclared_reads). Digests
go through a stat cache (digests.py): a no-op reads nothing.
"""
from __future__ import annotations

import configparser
import functools
import hashlib
import importlib.util
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path, PurePosixPath

from orchestrator.cache.store import OBSERVED_KINDS  # noqa: F401  (named here too: the key's vocabulary)
from orchestrator.core import export, strict_env, tree
from orchestrator.core.digests import MISSING, StatCache, cache_for
from orchestrator.core.graph import Module, ModuleGraph
from orchestrator.core.state import StateDir

# Kinds whose name after the colon is a path relative to the root
PATH_KINDS = ("test", "conftest", "support", "input", "file", "export")
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def inputs(graph: ModuleGraph, module: Module, pytest_args: list[str],
           prospective: bool = False, observed: Iterable[str] = ()) -> dict[str, str]:
    """The key of `module`'s test target: its declared inputs, and the `observed` input
    names of a stored result valued now. `prospective` keys the generated files as the
    next export would write them (for `why` and `status`, which do not export)."""
    key = declared(graph, module, pytest_args, prospective)
    key.update(current(graph, observed))
    return key


def declared(graph: ModuleGraph, module: Module, pytest_args: list[str],
             prospective: bool = False) -> dict[str, str]:
    cache = stat_cache(graph)
    key: dict[str, str] = {}
    root = graph.root
    for path in _files_under(root / module.tests):
        key[f"test:{_rel(path, root)}"] = cache.digest(path)
    for path in conftests(graph, module):
        key[f"conftest:{_rel(path, root)}"] = cache.digest(path)
    for path in _files_under(support_dir(graph)):
        key[f"support:{_rel(path, root)}"] = cache.digest(path)
    for extra in module.entry.get("inputs", []):
        files = _files_under(root / extra)
        for path in files:
            key[f"input:{_rel(path, root)}"] = cache.digest(path)
        if not files:          # a file, a missing path, or a folder with nothing in it yet
            key[f"input:{PurePosixPath(extra).as_posix()}"] = cache.digest(root / extra)
    for mid in graph.closure(module.id) + [module.id]:
        rel = _export_rel(graph, mid)
        key[f"export:{rel}"] = (_next_export_digest(graph, graph[mid]) if prospective else
                                _export_digest(root, rel, cache))
    key[f"graph:{module.id}"] = _digest_json({
        "entry": module.entry, "package": graph.package, "categories": graph.categories,
        "ignore": graph.ignore})
    key["pytest:args"] = json.dumps(pytest_args)
    key["pytest:config"] = tree.remembered(
        ("pytest:config", root, module.tests),
        lambda: pytest_config_digest(root, root / module.tests, cache))
    key.update(tree_inputs(graph, module, key))
    key.update(strict_env.key_entries(module.env))
    key.update(environment())
    return key


def _export_digest(root: Path, rel: str, cache: StatCache) -> str:
    """A generated file's body digest, asked once per walk; never remembered while the file
    is missing (a lookup ahead of the export: the remote cache's prefetch). An export task
    that writes the file starts a new walk (tasks.py)."""
    found = tree.remembered(("export", root, rel),
                            lambda: cache.digest(root / rel, "body", export.body_digest))
    if found == MISSING:
        tree.forget(("export", root, rel))
    return found


def _export_rel(graph: ModuleGraph, module_id: str) -> str:
    """The module's generated file, relative to the root (Path arithmetic, once a graph)."""
    rels = graph.__dict__.setdefault("_export_rels", {})
    if module_id not in rels:
        rels[module_id] = _rel(graph[module_id].export_file(graph.root), graph.root)
    return rels[module_id]


def tree_inputs(graph: ModuleGraph, module: Module, named: dict[str, str]) -> dict[str, str]:
    """`file:` entries: every file of the tree that tree.py does not rule out for `module`
    and no other entry of its key (`named`) covers already."""
    scope, cache = scope_of(graph), stat_cache(graph)
    covered = _paths_named(named) | {s.as_posix() for s in module.sources} | \
        scope.generated | {_rel(graph.path, graph.root)} | \
        tree.remembered(("written", graph.root), StateDir(graph.root).written)
    found, files = {}, tree.tree_for(graph.root)
    for rel in scope.candidates(files.files(), module.id):
        if rel in covered:
            continue
        value = files.digest(rel, cache.digest)
        if value != PACKAGE_STUB_DIGEST or not _stub(scope, rel):
            found[f"file:{rel}"] = value
    return found


def scope_of(graph: ModuleGraph) -> tree.Scope:
    """The graph's tree.Scope, made once per loaded graph (it remembers where each file
    stands)."""
    scope = graph.__dict__.get("_scope")
    if scope is None:
        scope = graph.__dict__["_scope"] = tree.Scope.of(graph)
    return scope


PACKAGE_STUB_DIGEST = hashlib.sha256(export.PACKAGE_INIT.encode()).hexdigest()


def _stub(scope: tree.Scope, rel: str) -> bool:
    """A package `__init__.py` that export wrote (its digest is the stub's): the same in
    every checkout."""
    return rel.endswith("__init__.py") and rel.startswith(scope.package + "/")


def _paths_named(key: dict[str, str]) -> set[str]:
    """The root-relative paths a key's path entries name (never a non-path name such as
    `pytest:config`, which a root file called `config` must not be taken for)."""
    return {name.split(":", 1)[1] for name in key if name.split(":", 1)[0] in PATH_KINDS}


def current(graph: ModuleGraph, names) -> dict[str, str]:
    """The observed inputs `names` (as a stored result lists them), valued now."""
    cache, dists = stat_cache(graph), None
    values = {}
    for name in names:
        kind, _, what = name.partition(":")
        if kind == "observed":
            values[name] = cache.digest(graph.root / what)
        elif kind == "listed":
            values[name] = _listing_digest(graph.root / what)
        elif kind == "dist":
            dists = installed_distributions() if dists is None else dists
            values[name] = dists.get(_normalize(what), MISSING)
        elif kind == "outside":
            values[name] = cache.digest(outside_path(graph, what))
        elif kind == "absent":
            values[name] = "found" if _importable(what) else "absent"
    return values


def observed_inputs(graph: ModuleGraph, module: Module, seen: dict,
                    declared_key: dict[str, str]) -> dict[str, str]:
    """A run's observations (observe.read_observations) as key entries, valued now: what it
    read under the root that its declared key does not cover (a failed open too: the file's
    appearing later changes the key), the directories it listed, and what it imported
    from outside the root."""
    names = [f"observed:{rel}" for rel in _uncovered_reads(graph, module, seen, declared_key)]
    names += [f"listed:{rel}" for rel in _listings(graph, module, seen, declared_key)]
    owners = distribution_owners()
    for name, file in seen.get("modules", {}).items():
        if name in owners:                   # keyed by version: an upgrade re-runs
            names += [f"dist:{d}" for d in owners[name]]
        else:                                # e.g. a helper folder on PYTHONPATH
            names.append(f"outside:{outside_name(graph, file)}")
    names += [f"absent:{n}" for n in seen.get("absent", ())]
    return current(graph, names)


def affected_by(graph: ModuleGraph, rel: str) -> set[str]:
    """The modules whose key a change of the file `rel` (relative to the root) can change:
    the one answer `orchestrator affected` and `orchestrator watch` ask for, so that what
    they follow is what a key names. graph.toml: every module (affected.py compares its
    entries itself); a module source: the module and its dependents (through `export:`)."""
    everything = set(graph.modules)
    if rel == _rel(graph.path, graph.root):
        return everything
    if tree.never_input(rel) or _under(rel, _skip_prefixes(graph)) or \
            (graph.root / rel).is_dir():       # a folder's files have events of their own
        return set()
    for module in graph:
        if rel in {s.as_posix() for s in module.sources}:
            return {module.id, *graph.dependents(module.id)}
    scope = scope_of(graph)
    if rel in scope.generated or rel in StateDir(graph.root).written() or \
            (_stub(scope, rel) and export.is_package_stub(graph.root / rel)):
        return set()           # generated, or a report the orchestrator wrote
    glob, owner, scoped = scope.place(rel)
    if scoped is not None:             # an `inputs` path is keyed even where it is ignored
        return set(scoped)
    if glob:
        return set()
    return {owner} if owner else everything


def undeclared_reads(graph: ModuleGraph, module: Module, seen: dict,
                     declared_key: dict[str, str]) -> list[dict[str, str]]:
    """[{"file", "why"}]: what the run read that its scope rules out (an ignored file, one
    scoped to other modules, another module's folder). Observation saw it, but it cannot
    see everything (a non-Python process, a C library): a result that read one is not
    reused, and the reason names the fix."""
    scope = scope_of(graph)
    found = []
    for rel in _uncovered_reads(graph, module, seen, declared_key):
        why = scope.outside(rel, module.id)
        if why:
            found.append({"file": rel, "why": why})
    return found


def _uncovered_reads(graph: ModuleGraph, module: Module, seen: dict,
                     declared_key: dict[str, str]) -> list[str]:
    covered = _paths_named(declared_key) | {_rel(graph.path, graph.root)}
    closure = {_export_rel(graph, m) for m in graph.closure(module.id) + [module.id]}
    skip = _skip_prefixes(graph)
    found = []
    for rel in seen.get("read", ()):
        if rel.startswith("..") or rel in covered or rel in closure or \
                tree.never_input(rel) or _under(rel, skip):
            continue
        path = graph.root / rel
        if path.is_dir() or export.is_package_stub(path):
            continue           # a listing says what a directory holds; a stub is generated
        found.append(rel)
    return sorted(found)


def _listings(graph: ModuleGraph, module: Module, seen: dict,
              declared_key: dict[str, str]) -> list[str]:
    tests = module.tests.as_posix()
    # pytest lists the tests dir and those above it to collect and find conftests: what it
    # can find there is keyed already (test:, conftest: and file: inputs)
    collected = {tests, *(p.as_posix() for p in module.tests.parents if p.as_posix() != ".")}
    package = graph.package.replace(".", "/")
    skip = _skip_prefixes(graph) + [package]   # the package folder lists whatever is exported
    return sorted(rel for rel in seen.get("listed", ())
                  if not rel.startswith("..") and rel not in collected and rel != "." and
                  not rel.startswith(tests + "/") and not tree.never_input(rel + "/x") and
                  not _under(rel, skip))


def _skip_prefixes(graph: ModuleGraph) -> list[str]:
    """The state dir and a virtual environment inside the root (keyed by `installed:`)."""
    return [StateDir(graph.root).path.name, *_under_root(graph, sys.prefix)]


def outside_name(graph: ModuleGraph, file: str) -> str:
    """A file outside the root, named so that no home directory leaves the machine: relative
    to the environment ($prefix, $base) where it is inside one, else to the root."""
    for label, prefix in (("$prefix", sys.prefix), ("$base", sys.base_prefix)):
        try:
            return f"{label}/{Path(file).relative_to(prefix).as_posix()}"
        except ValueError:
            continue
    return Path(os.path.relpath(file, graph.root)).as_posix()


def outside_path(graph: ModuleGraph, name: str) -> Path:
    label, _, rest = name.partition("/")
    prefixes = {"$prefix": sys.prefix, "$base": sys.base_prefix}
    if label in prefixes:
        return Path(prefixes[label]) / rest
    return graph.root / name


def valued_now(graph: ModuleGraph, declared: dict[str, str], result) -> dict[str, str]:
    """A stored result's inputs as they are now: `declared` (computed now by the caller) and
    the result's own observed inputs valued again."""
    return {**declared, **current(graph, result.observed)}


def is_hit(graph: ModuleGraph, declared: dict[str, str], result) -> bool:
    """The cache-hit rule, written once (the local store's lookup, status, the remote and
    directory caches ask it): a reusable pass (store.Result.reusable) whose inputs, valued
    now, digest to its key."""
    return result.reusable and digest(valued_now(graph, declared, result)) == result.key


def digest(key: dict[str, str]) -> str:
    return _digest_json(key)


def changes(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str]]:
    """[(input name, 'changed' | 'added' | 'removed')] between two keys, sorted by name."""
    names = sorted(set(old) | set(new))
    return [(n, "added" if n not in old else "removed" if n not in new else "changed")
            for n in names if old.get(n) != new.get(n)]


def environment() -> dict[str, str]:
    """The interpreter (version, build and executable) and every installed distribution
    by version: installing or removing any package, a pytest plugin among them, re-runs
    every module. The executable is the base interpreter's (so checkouts sharing one
    environment share keys), by a digest of its path."""
    executable = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    # a digest of its path: keys are uploaded, and the path may name the user's home
    env = {"env:python": sys.version,
           "env:interpreter": hashlib.sha256(executable.encode()).hexdigest()}
    for name, version in installed_distributions().items():
        env[f"installed:{name}"] = version
    return env


def stat_cache(graph: ModuleGraph) -> StatCache:
    return cache_for(StateDir(graph.root))


def conftests(graph: ModuleGraph, module: Module) -> list[Path]:
    """Every conftest.py pytest would load above the module's tests dir, up to the root."""
    found, directory = [], (graph.root / module.tests).parent
    while True:
        candidate = directory / "conftest.py"
        if candidate.is_file():
            found.append(candidate)
        if directory == graph.root or graph.root not in directory.parents:
            return found
        directory = directory.parent


def support_dir(graph: ModuleGraph) -> Path:
    """tests/support: helpers any module's tests may import (layering.py allows it)."""
    return graph.root / graph.tests_dir / "support"


@functools.lru_cache(maxsize=1)
def distribution_owners() -> Mapping[str, list[str]]:
    """Top-level import name -> the distributions that provide it (~0.1 s: once per
    process, and only in a run that executed tests)."""
    return metadata.packages_distributions()


@functools.lru_cache(maxsize=1)
def installed_distributions() -> dict[str, str]:
    """{normalized name: version} from the *.dist-info / *.egg-info names on sys.path: one
    directory listing per entry, instead of importlib.metadata's reading of every file."""
    found: dict[str, str] = {}
    for entry in _environment_path():
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = re.fullmatch(r"(.+?)-([^-]+?)\.(dist-info|egg-info)", name)
            if match:
                found.setdefault(_normalize(match.group(1)), match.group(2))
    return found


def _environment_path() -> list[str]:
    """sys.path without the working folder: a project's own metadata (an editable install's
    *.egg-info) is not another distribution."""
    cwd = os.getcwd()
    return [e for e in sys.path if e and os.path.abspath(e) != cwd]


def pytest_config_digest(root: Path, tests_dir: Path, cache: StatCache) -> str:
    """Every file pytest could take its configuration from, from the tests dir up to the
    file system's root, by the part pytest reads: a new pytest.ini anywhere above the tests
    changes the key; an edit of pyproject.toml outside [tool.pytest] does not."""
    found = {}
    for directory in [tests_dir, *tests_dir.parents]:
        compute = functools.partial(_config_files_in, directory, cache)
        for path, value in tree.remembered(("config files", directory), compute):
            found[os.path.relpath(path, root)] = value   # relative: checkouts share keys
    return _digest_json(found)


def _config_files_in(directory: Path, cache: StatCache) -> list[tuple[Path, str]]:
    """[(config file, digest of its pytest part)] in one folder (every module's tests have
    the same folders above them: asked once per folder)."""
    found = []
    for name in CONFIG_FILES:
        value = cache.digest(directory / name, "pytest-config", _pytest_section)
        if value != MISSING:
            found.append((directory / name, value))
    return found


def _pytest_section(path: Path) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.name in ("pytest.ini", ".pytest.ini"):
        return hashlib.sha256(text.encode()).hexdigest()
    if path.name == "pyproject.toml":
        try:
            section = tomllib.loads(text).get("tool", {}).get("pytest", None)
        except tomllib.TOMLDecodeError:
            return hashlib.sha256(text.encode()).hexdigest()
        return _digest_json(section)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return hashlib.sha256(text.encode()).hexdigest()
    section = "pytest" if path.name == "tox.ini" else "tool:pytest"
    return _digest_json(dict(parser[section]) if parser.has_section(section) else None)


def _listing_digest(directory: Path) -> str:
    try:
        return _digest_json(sorted(os.listdir(directory)))
    except OSError:
        return MISSING


@functools.cache
def _importable(name: str) -> bool:
    """Once per process, like installed_distributions: every module's key asks about the
    same few optional imports, and a doit command is one process (watch starts a new one
    for each run)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _under_root(graph: ModuleGraph, path: str) -> list[str]:
    try:
        return [Path(path).resolve().relative_to(graph.root).as_posix()]
    except ValueError:
        return []


def _under(rel: str, prefixes: list[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in prefixes)


def _files_under(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _next_export_digest(graph: ModuleGraph, module: Module) -> str:
    if export.is_current(module, graph):
        return stat_cache(graph).digest(module.export_file(graph.root), "body",
                                        export.body_digest)
    try:
        text = export.render(module, graph)
    except export.ExportError as e:
        return f"export fails: {e}"
    return hashlib.sha256(text.split("\n", export.HEADER_LINES)[-1].encode()).hexdigest()


def _digest_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
