"""A result cache shared across machines: a plain directory of passing results, keyed by content.

`export` copies every stored passing result to DIR/<key>.json; `import` installs, for
each module, the entries whose inputs, valued now on this checkout, digest to their
key, after checking each file against the result schema (store.Result.from_dict: types,
and a passing status that agrees with its counts) and that its key is the digest of
its own inputs. Anything else is rejected with its reason and never used. Any shared
directory (or CI cache, e.g. actions/cache on the directory) moves the files.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import keys
from .files import atomic_write
from .graph import ModuleGraph
from .store import InvalidResult, Result, Store

MAX_ENTRY_BYTES = 16 << 20     # a result is kilobytes; refuse to parse anything huge


def export_results(graph: ModuleGraph, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    store, exported = Store(graph.root), []
    for module in graph:
        passing = [r for r in store.results(module.id) if r.passed]
        for result in passing:
            atomic_write(directory / f"{result.key}.json", result.to_json())
        if passing:
            exported.append(module.id)
    return exported


def import_results(graph: ModuleGraph, directory: Path, pytest_args=()) -> dict[str, str]:
    """{module: 'imported' | 'no entry' | 'rejected: why'}."""
    outcome = {m.id: "no entry" for m in graph}
    declared = {m.id: keys.declared(graph, m, list(pytest_args), prospective=True)
                for m in graph}
    store = Store(graph.root)
    for path in sorted(directory.glob("*.json")):
        result, problem = read_entry(path)
        if result is None or result.module not in outcome:
            if result is None:
                print(f"warning: {path.name} rejected: {problem}", file=sys.stderr)
            continue
        if problem:
            outcome[result.module] = f"rejected: {problem}"
            continue
        now = {**declared[result.module], **keys.current(graph, result.observed)}
        if keys.digest(now) == result.key and outcome[result.module] != "imported":
            store.save(result)
            outcome[result.module] = "imported"
    return outcome


def read_entry(path: Path) -> tuple[Result | None, str]:
    """(the entry, '' or why it must not be used)."""
    try:
        if path.stat().st_size > MAX_ENTRY_BYTES:
            return None, f"larger than {MAX_ENTRY_BYTES} bytes"
        result = Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        why = str(e) if isinstance(e, InvalidResult) else type(e).__name__
        return None, f"unreadable ({why})"
    if not result.passed:
        return result, "not a passing result"
    if result.key != path.stem or keys.digest(result.inputs) != result.key:
        return result, "its inputs do not match its key"
    return result, ""
