"""Content keys: everything a test target's result depends on, and what changed.

A key is a flat dict {input name: digest}. Names say what the input is, so a
diff of two keys is the explanation of a cache miss. Declared inputs, known
before the run:
  test:tests/03_layers/test_layers_core.py   a file under the module's tests dir
  conftest:tests/conftest.py                 a conftest above the tests dir
  support:tests/support/recorded_graph.py    a shared test helper (tests/support)
  input:data/digits/digits.npz               an extra input declared in graph.toml
  export:tinytorch/core/tensor.py            a generated file of the dependency closure
  graph:03_layers                            the module's graph.toml entry (+ project settings)
  pytest:args / pytest:config                arguments; every config file pytest could read
  envvar:TINYTORCH_SEED                      a variable named by the module's `env` (its
                                             value's sha256, or "unset": keys are uploaded)
  env:python / env:numpy / env:pytest        the environment
Observed inputs, recorded by the run itself (observe.py) and stored with its result:
  observed:tests/fixtures/answers.py         a file the run read or imported
  listed:data/probe                          a directory the run listed
  dist:torch                                 a third-party distribution it imported
  outside:/srv/helpers/answers.py            a module it imported from outside the root
                                             that no distribution owns
  absent:fancylib                            an import it attempted that was not found
A result is reused when the digest of declared ∪ its observed inputs, computed now,
equals its key. Digests go through a stat cache (digests.py): a no-op reads nothing.
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
from importlib import metadata
from pathlib import Path

from . import export
from .digests import MISSING, StatCache, cache_for
from .graph import Module, ModuleGraph
from .state import StateDir

ENV_PACKAGES = ("numpy", "pytest", "pytest-xdist")
OBSERVED_KINDS = ("observed", "listed", "dist", "outside", "absent")
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
NEVER_OBSERVED = (".git", "__pycache__", ".pytest_cache")


def inputs(graph: ModuleGraph, module: Module, pytest_args: list[str],
           prospective: bool = False, observed: list[str] = ()) -> dict[str, str]:
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
        for path in _files_under(root / extra) or [root / extra]:
            key[f"input:{_rel(path, root)}"] = cache.digest(path)
    for mid in graph.closure(module.id) + [module.id]:
        path = graph[mid].export_file(root)
        key[f"export:{_rel(path, root)}"] = (
            _next_export_digest(graph, graph[mid]) if prospective else
            cache.digest(path, "body", export.body_digest))
    key[f"graph:{module.id}"] = _digest_json({
        "entry": module.entry, "package": graph.package, "categories": graph.categories})
    key["pytest:args"] = json.dumps(pytest_args)
    key["pytest:config"] = pytest_config_digest(root, root / module.tests, cache)
    for name in module.env:
        value = os.environ.get(name)
        key[f"envvar:{name}"] = "unset" if value is None else \
            hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    key.update(environment())
    return key


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
            values[name] = cache.digest(Path(what))
        elif kind == "absent":
            values[name] = "found" if _importable(what) else "absent"
    return values


def observed_inputs(graph: ModuleGraph, module: Module, seen: dict,
                    declared_key: dict[str, str]) -> dict[str, str]:
    """A run's observations (observe.read_observations) as key entries, valued now: the
    files and directories under the root that no declared input already covers."""
    covered = {name.split(":", 1)[1] for name in declared_key if ":" in name}
    covered.add(graph.path.relative_to(graph.root).as_posix())    # keyed by `graph:` entries
    tests = module.tests.as_posix()
    # pytest lists the tests dir and those above it to collect and find conftests: what it
    # can find there is keyed already (test: and conftest: inputs)
    collected = {tests, *(p.as_posix() for p in module.tests.parents if p.as_posix() != ".")}
    skip = [StateDir(graph.root).path.name, *_under_root(graph, sys.prefix)]
    package = graph.package.replace(".", "/")
    names = []
    for kind, paths in (("observed", seen.get("read", ())), ("listed", seen.get("listed", ()))):
        for rel in paths:
            if rel.startswith("..") or rel in covered or _skipped(rel, skip):
                continue
            if kind == "listed" and (rel in collected or rel.startswith(tests + "/") or
                                     _skipped(rel, [package])):
                continue       # a package folder lists whatever else happens to be exported
            if kind == "observed" and (not (graph.root / rel).is_file() or
                                       export.is_package_stub(graph.root / rel)):
                continue       # a stub is the same everywhere; the course's own files are not
            names.append(f"{kind}:{rel}")
    owners = distribution_owners()
    for name, file in seen.get("modules", {}).items():
        if name in owners:                   # keyed by version: an upgrade re-runs
            names += [f"dist:{d}" for d in owners[name]]
        else:                                # e.g. a helper folder on PYTHONPATH
            names.append(f"outside:{file}")
    names += [f"absent:{n}" for n in seen.get("absent", ())]
    return current(graph, names)


def digest(key: dict[str, str]) -> str:
    return _digest_json(key)


def changes(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str]]:
    """[(input name, 'changed' | 'added' | 'removed')] between two keys, sorted by name."""
    names = sorted(set(old) | set(new))
    return [(n, "added" if n not in old else "removed" if n not in new else "changed")
            for n in names if old.get(n) != new.get(n)]


def environment() -> dict[str, str]:
    env = {"env:python": sys.version.split()[0]}
    dists = installed_distributions()
    for package in ENV_PACKAGES:
        env[f"env:{package}"] = dists.get(_normalize(package), MISSING)
    return env


def stat_cache(graph: ModuleGraph) -> StatCache:
    return cache_for(StateDir(graph.root).path)


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
def distribution_owners() -> dict[str, list[str]]:
    """Top-level import name -> the distributions that provide it (~0.1 s: once per
    process, and only in a run that executed tests)."""
    return metadata.packages_distributions()


@functools.lru_cache(maxsize=1)
def installed_distributions() -> dict[str, str]:
    """{normalized name: version} from the *.dist-info / *.egg-info names on sys.path: one
    directory listing per entry, instead of importlib.metadata's reading of every file."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = re.fullmatch(r"(.+?)-([^-]+?)\.(dist-info|egg-info)", name)
            if match:
                found.setdefault(_normalize(match.group(1)), match.group(2))
    return found


def pytest_config_digest(root: Path, tests_dir: Path, cache: StatCache) -> str:
    """Every file pytest could take its configuration from, from the tests dir up to the
    file system's root, by the part pytest reads: a new pytest.ini anywhere above the tests
    changes the key; an edit of pyproject.toml outside [tool.pytest] does not."""
    found = {}
    for directory in [tests_dir, *tests_dir.parents]:
        for name in CONFIG_FILES:
            path = directory / name
            value = cache.digest(path, "pytest-config", _pytest_section)
            if value != MISSING:     # named relative to the root: checkouts share keys
                found[os.path.relpath(path, root)] = value
    return _digest_json(found)


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


@functools.lru_cache(maxsize=None)
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


def _skipped(rel: str, skip: list[str]) -> bool:
    """Caches, the state dir, the generated package, a venv, and distribution metadata
    (pytest reads every *.egg-info's entry points on the path, including an editable
    install's in the checkout: distributions are keyed by version, `dist:` entries)."""
    parts = rel.split("/")
    return any(p in NEVER_OBSERVED or p.endswith((".egg-info", ".dist-info")) for p in parts) \
        or any(rel == s or rel.startswith(s + "/") for s in skip)


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
