"""A result cache shared across machines: a plain directory of passing results, keyed by content.

`export` copies every passing result to DIR/<key>.json; `import` installs, for each
module, the result stored under the module's *current* key, and only after checking
that the file is a passing result of that module whose inputs digest to that key.
A result whose key does not match is never used. Any shared directory (or CI cache,
e.g. actions/cache on the directory) moves the files between machines.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from . import keys, store
from .files import atomic_write
from .graph import ModuleGraph


def export_results(graph: ModuleGraph, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    exported = []
    for module in graph:
        result = store.load(graph.root, module.id)
        if result is not None and result.passed:
            atomic_write(directory / f"{result.key}.json", json.dumps(asdict(result)))
            exported.append(module.id)
    return exported


def import_results(graph: ModuleGraph, directory: Path, pytest_args=()) -> dict[str, str]:
    """{module: 'imported' | 'no entry' | 'rejected: why'}."""
    outcome = {}
    for module in graph:
        current = keys.digest(keys.inputs(graph, module, list(pytest_args), prospective=True))
        path = directory / f"{current}.json"
        if not path.is_file():
            outcome[module.id] = "no entry"
            continue
        problem = _problem(path, module.id, current)
        if problem:
            outcome[module.id] = f"rejected: {problem}"
            continue
        local = store.result_path(graph.root, module.id)
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, local)
        outcome[module.id] = "imported"
    return outcome


def _problem(path: Path, module_id: str, key: str) -> str:
    try:
        result = store.Result(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as e:
        return f"unreadable ({type(e).__name__})"
    if result.module != module_id:
        return f"it is a result of {result.module}"
    if not result.passed:
        return "not a passing result"
    if result.key != key or keys.digest(result.inputs) != key:
        return "its inputs do not match its key"
    return ""
