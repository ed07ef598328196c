"""Which test targets a change since a git revision affects, in curriculum order.

The same inputs as the cache key (keys.py), read from `git diff REF`:
  a module source whose exported cells changed -> the module and its dependents
  a file under tests/NN (or an input declared for NN) -> NN
  a conftest.py                                -> every module whose tests sit below it
  a shared test helper under tests/support/    -> every module
  a module's graph.toml entry                  -> that module; project settings -> all
  pytest's configuration in pyproject.toml     -> all
"""
from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path, PurePosixPath

from . import export
from .graph import ModuleGraph


class GitError(Exception):
    """git could not answer (not a repository, unknown revision): one printable line."""


def git(root: Path, *args: str) -> str:
    run = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if run.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {run.stderr.strip().splitlines()[-1]}"
                       if run.stderr.strip() else f"git {' '.join(args)} failed")
    return run.stdout


def changed_files(root: Path, since: str) -> list[str]:
    tracked = git(root, "diff", "--name-only", since, "--").split()
    untracked = git(root, "ls-files", "--others", "--exclude-standard").split()
    return sorted(set(tracked) | set(untracked))


def old_text(root: Path, since: str, path: str) -> str | None:
    try:
        return git(root, "show", f"{since}:{path}")
    except GitError:
        return None


def affected(graph: ModuleGraph, since: str) -> list[str]:
    changed = changed_files(graph.root, since)
    hit: set[str] = set()
    for path in changed:
        hit |= _targets_of(graph, since, PurePosixPath(path))
    return [m.id for m in graph if m.id in hit]


def _targets_of(graph: ModuleGraph, since: str, path: PurePosixPath) -> set[str]:
    everything = set(graph.modules)
    if path.as_posix() == graph.path.name:
        return _graph_changes(graph, since)
    if path.name == "pyproject.toml" and path.parent == PurePosixPath("."):
        return everything if _pytest_config_changed(graph, since) else set()
    if PurePosixPath(graph.tests_dir, "support") in path.parents:
        return everything
    hit = set()
    for module in graph:
        tests = PurePosixPath(module.tests.as_posix())
        source = next((s for s in module.sources if path == PurePosixPath(s.as_posix())), None)
        if source is not None:
            if _export_changed(graph, module, source, since):
                hit |= {module.id, *graph.dependents(module.id)}
        elif tests in path.parents:
            hit.add(module.id)
        elif path.name == "conftest.py" and path.parent in tests.parents:
            hit.add(module.id)
        elif any(PurePosixPath(extra) in (path, *path.parents)
                 for extra in module.entry.get("inputs", [])):
            hit.add(module.id)
    return hit


def _export_changed(graph: ModuleGraph, module, source, since: str) -> bool:
    before = old_text(graph.root, since, source.as_posix())
    if before is None:
        return True
    try:
        old_cells = export.exported_cells(module, graph, {source: before})
        new_cells = export.exported_cells(module, graph)
    except export.ExportError:
        return True
    return [c.lines for c in old_cells] != [c.lines for c in new_cells]


def _graph_changes(graph: ModuleGraph, since: str) -> set[str]:
    before = old_text(graph.root, since, graph.path.name)
    try:
        old = tomllib.loads(before) if before is not None else {}
    except tomllib.TOMLDecodeError:
        return set(graph.modules)
    new = tomllib.loads(graph.path.read_text(encoding="utf-8"))
    if old.get("project") != new.get("project") or old.get("categories") != new.get("categories"):
        return set(graph.modules)
    old_modules = old.get("modules", {})
    return {mid for mid, entry in new.get("modules", {}).items() if old_modules.get(mid) != entry}


def _pytest_config_changed(graph: ModuleGraph, since: str) -> bool:
    def pytest_table(text: str | None):
        try:
            return tomllib.loads(text or "").get("tool", {}).get("pytest")
        except tomllib.TOMLDecodeError:
            return None
    now = (graph.root / "pyproject.toml").read_text(encoding="utf-8")
    return pytest_table(old_text(graph.root, since, "pyproject.toml")) != pytest_table(now)
