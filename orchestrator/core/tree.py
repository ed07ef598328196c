"""The project tree as an input: every file under the root is an input of every module's
key unless it is ruled out, the way Turborepo and Nx hash a whole package by default.

Ruled out, for every module:
  - what is never an input (NEVER_INPUT below): version control, virtual environments
    (any folder holding a pyvenv.cfg), __pycache__, the caches of pytest, mypy, ruff,
    import-linter, hypothesis, tox and nox, build outputs (build/, dist/, *.egg-info), editor files,
    and the orchestrator's own state dir;
  - the generated package files (keys.py keys a module's closure by their exported
    bodies, and a stub `__init__.py` is the same everywhere);
  - globs in graph.toml's `[project] ignore` (e.g. "docs/**", "*.md").
Ruled out for some modules only (each is still an input of the module it belongs to):
  - another module's sources and tests folder: editing a module re-runs it and its
    dependents (through their `export:` entries), not everything;
  - a path named in some module's `inputs` (graph.toml): it is *scoped* to the modules
    that name it, and no longer everyone's input.
Being ignored by git is not enough: a downloaded data set is usually git-ignored, and it
is exactly what tests read. What a run reads that its scope rules out (an ignored file,
one scoped to another module) is caught by observation (keys.undeclared_reads).

One walk of the tree per process, until a test run ends (a run may write files).
"""
from __future__ import annotations

import fnmatch
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator.core.digests import RACY_SECONDS
from orchestrator.core.graph import ModuleGraph
from orchestrator.core.state import STATE_DIR

# Folders that are never an input, wherever they are (matched against the folder's name).
NEVER_INPUT_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", ".jj",                       # version control
    "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".import_linter_cache",
    ".hypothesis", ".tox", ".nox", ".eggs", ".ipynb_checkpoints", "node_modules", "htmlcov",
    ".idea", ".vscode", ".venv", STATE_DIR,
})
NEVER_INPUT_DIR_SUFFIXES = (".egg-info", ".dist-info")
# Folders that are build outputs at the root only (a module may well have a `build` folder
# of test data deeper down).
ROOT_BUILD_DIRS = frozenset({"build", "dist"})
# Files that are never an input: compiled bytecode, what editors and tools leave behind,
# and hidden temp files (`.name.XXXX.tmp`: the orchestrator's own atomic writes, e.g. an
# export in progress while another module's key is computed).
NEVER_INPUT_FILES = ("*.pyc", "*.pyo", "*.swp", "*.swo", "*~", ".#*", "#*#", ".DS_Store",
                     ".coverage", ".coverage.*", ".*.tmp")
# the globs as one pattern: the walk asks it of every file of the tree, for every key
_NEVER_INPUT_FILE = re.compile("|".join(fnmatch.translate(g) for g in NEVER_INPUT_FILES))


class Scope:
    """Who may key what: the rules above, from one graph. Where a file stands (ignored, whose
    folder, scoped to whom) is worked out once per file and remembered: a no-op asks it for
    every file of the tree and every module."""

    def __init__(self, ignore: tuple[str, ...], owned: dict[str, str],
                 scoped: dict[str, frozenset[str]], generated: frozenset[str], package: str):
        self.ignore = ignore          # graph.toml [project] ignore globs
        self.owned = owned            # a module's own folder or file -> its id
        self.scoped = scoped          # an `inputs` path -> the modules naming it
        self.generated = generated    # export files of every module
        self.package = package        # the package's folder, e.g. "tinytorch"
        self._places: dict[str, tuple[str | None, str | None, frozenset[str] | None]] = {}
        # (the walk's files, those every module keys, {module: those only it keys})
        self._partition: tuple[dict, list[str], dict[str, list[str]]] | None = None

    @classmethod
    def of(cls, graph: ModuleGraph) -> Scope:
        owned: dict[str, str] = {}
        folders: dict[Path, set[str]] = {}       # source folder -> the modules with a source there
        for m in graph:
            for source in m.sources:
                folders.setdefault(source.parent, set()).add(m.id)
        for m in graph:
            owned[m.tests.as_posix()] = m.id
            for source in m.sources:
                owned[_source_area(graph, source, folders)] = m.id
        scoped: dict[str, set[str]] = {}
        for m in graph:
            for path in m.entry.get("inputs", []):
                scoped.setdefault(PurePosixPath(path).as_posix(), set()).add(m.id)
        generated = frozenset(_rel(m.export_file(graph.root), graph.root) for m in graph)
        return cls(tuple(graph.ignore), owned, {p: frozenset(s) for p, s in scoped.items()},
                   generated, graph.package.replace(".", "/"))

    def place(self, rel: str) -> tuple[str | None, str | None, frozenset[str] | None]:
        """(the `ignore` glob that rules `rel` out, the module whose own sources or tests
        folder holds it, the modules an `inputs` path holding it is scoped to)."""
        found = self._places.get(rel)
        if found is None:
            glob = next((g for g in self.ignore if matches(rel, g)), None)
            owner = next((m for area, m in self.owned.items() if _within(rel, area)), None)
            scopes = [mods for path, mods in self.scoped.items() if _within(rel, path)]
            found = (glob, owner, frozenset().union(*scopes) if scopes else None)
            self._places[rel] = found
        return found

    def keyed_by(self, rel: str) -> frozenset[str] | None:
        """The modules whose keys `rel` is an input of, by the rules above: None for every
        module (nothing rules it out for anyone)."""
        glob, owner, scoped = self.place(rel)
        if glob:
            return frozenset()
        if owner is None:
            return scoped
        return frozenset({owner}) if scoped is None or owner in scoped else frozenset()

    def candidates(self, files: dict[str, Path], module_id: str) -> list[str]:
        """The files of `files` (one walk's) that are among `module_id`'s inputs: those of
        every module, then its own and those scoped to it. Sorted out once per walk:
        asking of every file for every module made a no-op of a hundred modules 30,000
        questions."""
        if self._partition is None or self._partition[0] is not files:
            every: list[str] = []
            some: dict[str, list[str]] = {}
            for rel in files:
                modules = self.keyed_by(rel)
                if modules is None:
                    every.append(rel)
                for module in modules or ():
                    some.setdefault(module, []).append(rel)
            self._partition = (files, every, some)
        _, every, some = self._partition
        return every + some.get(module_id, [])

    def outside(self, rel: str, module_id: str) -> str | None:
        """Why `rel` is not among `module_id`'s inputs (None: it is one), in words that
        end with the fix."""
        modules = self.keyed_by(rel)
        if modules is None or module_id in modules:
            return None
        glob, owner, scoped = self.place(rel)
        if glob:
            return f"graph.toml ignores it ('{glob}'): remove that glob from [project] " \
                   f"ignore, or name the file in {module_id}'s inputs"
        if owner and owner != module_id:
            return f"it belongs to {owner}: move what {module_id} needs into tests/support " \
                   f"or into {module_id}'s own folder, or name it in {module_id}'s inputs"
        return f"graph.toml scopes it to {', '.join(sorted(scoped or ()))}: add it to " \
               f"{module_id}'s inputs"


def matches(rel: str, glob: str) -> bool:
    """gitignore-like: a glob without '/' matches a name at any depth ('*.md'); one with
    '/' matches from the root ('docs/**', 'data/raw/*.csv'); 'dir/**' is all below dir."""
    glob = glob.rstrip("/")
    if "/" not in glob:
        return any(fnmatch.fnmatchcase(part, glob) for part in rel.split("/"))
    if glob.endswith("/**"):
        return _within(rel, glob[:-3]) or fnmatch.fnmatchcase(rel, glob)
    return fnmatch.fnmatchcase(rel, glob) or any(
        fnmatch.fnmatchcase("/".join(rel.split("/")[:i]), glob)
        for i in range(1, rel.count("/") + 1))


def never_input(rel: str) -> bool:
    """What the default list rules out (for paths the walk did not produce: observations)."""
    parts = rel.split("/")
    if parts[0] in ROOT_BUILD_DIRS and len(parts) > 1:
        return True
    if any(p in NEVER_INPUT_DIRS or p.endswith(NEVER_INPUT_DIR_SUFFIXES) for p in parts[:-1]):
        return True
    return _NEVER_INPUT_FILE.match(parts[-1]) is not None


class Tree:
    """The files under one root that the default list does not rule out, as
    {relative posix path: absolute Path}; walked once, until invalidate().

    A walk after invalidate() lists again only the folders that changed: a folder's
    listing is kept with its inode, mtime and ctime, which any entry created, removed or
    renamed in it moves (a file's content is the stat cache's business, digests.py), and is
    trusted only if it was taken RACY_SECONDS after the folder last changed, as the stat
    cache trusts a digest. A test run ends in an invalidate(): on a course of a hundred
    modules the walk that followed each run cost ~8 ms, ~0.3 ms now."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[str, Path] | None = None
        self._digests: dict[str, str] = {}
        self._listings: dict[str, _Listing] = {}
        self._lock = threading.Lock()

    def files(self) -> dict[str, Path]:
        with self._lock:
            if self._files is None:
                self._files = dict(sorted(self._walk("")))
            return self._files

    def digest(self, rel: str, compute) -> str:
        """`compute(path)` of a file of the tree, once per walk: every module's key asks for
        the same files."""
        found = self._digests.get(rel)
        if found is None:
            found = self._digests[rel] = compute(self.root / rel)
        return found

    def invalidate(self) -> None:
        with self._lock:
            self._files = None
            self._digests = {}

    def holds_bytecode(self, prefix: str) -> bool:
        """Whether the folder `prefix` (as in files(): "" or "tests/01_x/") had a
        __pycache__ when last listed (True when it was never listed)."""
        listing = self._listings.get(prefix)
        return listing is None or listing.bytecode

    def _walk(self, prefix: str):
        listing = self._listing(prefix)
        if listing is None or (prefix and listing.venv):
            return                              # gone, or a virtual environment (its dists)
        for name, is_dir, path in listing.entries:
            if is_dir:
                yield from self._walk(f"{prefix}{name}/")
            else:
                yield f"{prefix}{name}", path

    def _listing(self, prefix: str) -> _Listing | None:
        folder = os.path.join(self.root, prefix) if prefix else str(self.root)
        try:
            st = os.stat(folder)
        except OSError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        known = self._listings.get(prefix)
        if known is not None and known.stamp == stamp and known.settled:
            return known
        listed_at = time.time()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return None
        kept: list[tuple[str, bool, Path | None]] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if entry.name in NEVER_INPUT_DIRS or entry.name.endswith(
                        NEVER_INPUT_DIR_SUFFIXES) or (not prefix and entry.name in ROOT_BUILD_DIRS):
                    continue
                kept.append((entry.name, True, None))
            elif _NEVER_INPUT_FILE.match(entry.name) is None:
                kept.append((entry.name, False, Path(entry.path)))
        settled = listed_at - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > RACY_SECONDS
        names = {e.name for e in entries}
        listing = _Listing(stamp, settled, "pyvenv.cfg" in names, "__pycache__" in names, kept)
        self._listings[prefix] = listing
        return listing


@dataclass(frozen=True)
class _Listing:
    """One folder's entries as the walk keeps them: (name, is a folder, Path of a file)."""
    stamp: tuple[int, int, int]     # the folder's inode, mtime and ctime when listed
    settled: bool                   # listed RACY_SECONDS after its last change: trusted
    venv: bool                      # it holds a pyvenv.cfg
    bytecode: bool                  # it holds a __pycache__
    entries: list[tuple[str, bool, Path | None]]


def drop_stale_bytecode(root: Path) -> int:
    """Delete each cached `.pyc` of a source of the tree that may be older than the source.

    Python trusts a .pyc whose recorded source mtime and size match, so an edit that keeps
    both (`tar --mtime`, `touch -r`) would run the old code: the key saw the new content
    (its ctime), the test would not. A .pyc written before the source's last change
    (its ctime) is dropped, and Python compiles the source again. Returns how many."""
    tag = sys.implementation.cache_tag
    if tag is None:
        return 0
    # os.path and one listing per __pycache__: before every test run, over every source of
    # the tree, pathlib's objects cost more than the stat calls
    stems_by_folder: dict[str, list[str]] = {}
    tree = tree_for(root)
    for rel, path in tree.files().items():
        # the walk has just listed each folder: most hold no bytecode, nothing to look at
        if rel.endswith(".py") and tree.holds_bytecode(rel[:rel.rfind("/") + 1]):
            folder, name = os.path.split(path)
            stems_by_folder.setdefault(folder, []).append(name[:-3])
    dropped = 0
    for folder, stems in stems_by_folder.items():
        try:
            cached = {e.name: e.path for e in os.scandir(os.path.join(folder, "__pycache__"))}
        except OSError:
            continue                            # no bytecode cached here
        for stem in stems:
            for opt in ("", ".opt-1", ".opt-2"):
                pyc = cached.get(f"{stem}.{tag}{opt}.pyc")
                try:
                    if pyc is not None and os.stat(pyc).st_mtime_ns < \
                            os.stat(os.path.join(folder, f"{stem}.py")).st_ctime_ns:
                        os.unlink(pyc)
                        dropped += 1
                except OSError:
                    continue
    return dropped


_trees: dict[Path, Tree] = {}
_trees_lock = threading.Lock()


def tree_for(root: Path) -> Tree:
    with _trees_lock:
        if root not in _trees:
            _trees[root] = Tree(root)
        return _trees[root]


def invalidate_all() -> None:
    """A test run ended: it may have written files, so the next key walks again."""
    with _trees_lock:
        trees = list(_trees.values())
        _memo.clear()
    for tree in trees:
        tree.invalidate()


_memo: dict = {}


def forget(key) -> None:
    _memo.pop(key, None)


def remembered(key, compute):
    """compute(), once until the next invalidate_all(): for what every module's key asks of
    the same files (the pytest configuration above the tests, a closure's exports)."""
    found = _memo.get(key, _memo)
    if found is _memo:
        found = _memo[key] = compute()
    return found


def _source_area(graph: ModuleGraph, source: Path, folders: dict[Path, set[str]]) -> str:
    """A module's source folder is its own when no other module's source shares it (the
    layout modules/NN_name/name_dev.py); in a shared folder, only the file is."""
    folder = source.parent
    shared = folder == Path(".") or folder == Path(graph.modules_dir) or \
        len(folders.get(folder, ())) > 1
    return (source if shared else folder).as_posix()


def _within(rel: str, area: str) -> bool:
    return rel == area or rel.startswith(area + "/")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
