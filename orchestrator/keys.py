"""Content keys: everything a test target's result depends on, and what changed.

A key is a flat dict {input name: digest}. Names say what the input is, so a
diff of two keys is the explanation of a cache miss:
  test:tests/03_layers/test_layers_core.py   a file under the module's tests dir
  conftest:tests/conftest.py                 a conftest above the tests dir
  support:tests/support/recorded_graph.py    a shared test helper (tests/support)
  input:data/digits/digits.npz               an extra input declared in graph.toml
  export:tinytorch/core/tensor.py            a generated file of the dependency closure
  graph:03_layers                            the module's graph.toml entry (+ project settings)
  pytest:args / pytest:config                arguments and ini options
  env:python / env:numpy / env:pytest        the environment
"""
from __future__ import annotations

import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path

from .export import read_generated
from .graph import Module, ModuleGraph
from .files import file_digest

ENV_PACKAGES = ("numpy", "pytest", "pytest-xdist")
MISSING = "missing"


def inputs(graph: ModuleGraph, module: Module, pytest_args: list[str],
           prospective: bool = False) -> dict[str, str]:
    """The key of `module`'s test target. `prospective` keys the generated files as
    the next export would write them (for `why` and `status`, which do not export)."""
    key: dict[str, str] = {}
    root = graph.root
    for path in _files_under(root / module.tests):
        key[f"test:{_rel(path, root)}"] = file_digest(path)
    for path in conftests(graph, module):
        key[f"conftest:{_rel(path, root)}"] = file_digest(path)
    for path in _files_under(support_dir(graph)):
        key[f"support:{_rel(path, root)}"] = file_digest(path)
    for extra in module.entry.get("inputs", []):
        for path in _files_under(root / extra) or [root / extra]:
            key[f"input:{_rel(path, root)}"] = file_digest(path) if path.exists() else MISSING
    for mid in graph.closure(module.id) + [module.id]:
        path = graph[mid].export_file(root)
        key[f"export:{_rel(path, root)}"] = (
            _next_export_digest(graph, graph[mid]) if prospective else _export_digest(path))
    key[f"graph:{module.id}"] = _digest_json({
        "entry": module.entry, "package": graph.package, "categories": graph.categories})
    key["pytest:args"] = json.dumps(pytest_args)
    key["pytest:config"] = _pytest_config_digest(root)
    key.update(environment())
    return key


def digest(key: dict[str, str]) -> str:
    return _digest_json(key)


def changes(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str]]:
    """[(input name, 'changed' | 'added' | 'removed')] between two keys, sorted by name."""
    names = sorted(set(old) | set(new))
    return [(n, "added" if n not in old else "removed" if n not in new else "changed")
            for n in names if old.get(n) != new.get(n)]


def environment() -> dict[str, str]:
    env = {"env:python": sys.version.split()[0]}
    for package in ENV_PACKAGES:
        try:
            env[f"env:{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[f"env:{package}"] = MISSING
    return env


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


def _files_under(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _export_digest(path: Path) -> str:
    # The body only: the header carries the source hash, and a change to a
    # markdown cell of the source must not re-run anyone's tests.
    parsed = read_generated(path)
    if parsed is None:
        return file_digest(path) if path.exists() else MISSING
    return hashlib.sha256(parsed[1].encode()).hexdigest()


def _next_export_digest(graph: ModuleGraph, module: Module) -> str:
    from . import export
    if export.is_current(module, graph):
        return _export_digest(module.export_file(graph.root))
    try:
        text = export.render(module, graph)
    except export.ExportError as e:
        return f"export fails: {e}"
    return hashlib.sha256(text.split("\n", export.HEADER_LINES)[-1].encode()).hexdigest()


def _pytest_config_digest(root: Path) -> str:
    import tomllib
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return MISSING
    try:
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return file_digest(pyproject)
    return _digest_json(config.get("tool", {}).get("pytest", {}))


def _digest_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
