"""Which test targets a change since a git revision affects, in curriculum order.

The same inputs as the cache key, read from `git diff REF`: keys.affected_by says which
modules' keys a changed file can change (a tests folder -> its module; an `inputs` path ->
the modules naming it; an ignored file -> none; any other file of the tree, pytest.ini and
pyproject.toml among them -> every module). Two are compared more finely here:
  a module source whose exported cells changed -> the module and its dependents
  a module's graph.toml entry                  -> that module; project settings -> all
"""
from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path, PurePosixPath

from orchestrator.cache import keys
from orchestrator.core import export
from orchestrator.core.graph import ModuleGraph


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
    if path.as_posix() == graph.path.name:
        return _graph_changes(graph, since)
    for module in graph:
        source = next((s for s in module.sources if path == PurePosixPath(s.as_posix())), None)
        if source is not None:
            if not _export_changed(graph, module, source, since):
                return set()        # an explanation cell: the exported body is the same
    return keys.affected_by(graph, path.as_posix())


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
