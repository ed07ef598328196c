"""What a test run actually read: the observed inputs of its cache key.

Inside each pytest process the orchestrator starts (and its xdist workers), an
Observer records
  - every file opened for reading and every directory listed under the project
    root (an audit hook on `open`, `os.listdir`, `os.scandir`: it sees Python's and
    C extensions' opens through the io module alike), minus the files the run wrote;
  - every module imported from under the root (sys.modules at the end: an import
    served from a .pyc never opens its .py);
  - the modules imported from outside the root (third-party code: the runner keys each
    by its distribution's version, or by its file when no distribution owns it);
  - the top-level imports attempted and not found (a finder at the end of
    sys.meta_path), so an optional library installed later changes the key.
At the end it writes them as JSON beside the plugin's report; the runner turns them
into `observed:`, `listed:`, `dist:`, `outside:` and `absent:` entries of the key
(keys.py). The hook is called for every audit event of the process (`id()` raises one):
it tests the event's name first and returns, which is all most calls cost.

Python subprocesses the tests start are observed too: the runner puts
observe_site/ (a sitecustomize) first on their PYTHONPATH. Limits (in the README):
reads by non-Python subprocesses, and by Python subprocesses started with -I, -E or
-S or with a PYTHONPATH of their own, are not seen; files outside the project root
are not keyed (third-party code is keyed by its distribution's version).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

OBSERVE_ENV = "ORCHESTRATOR_OBSERVE"     # directory where each process writes what it saw
ROOT_ENV = "ORCHESTRATOR_OBSERVE_ROOT"   # the project root: only reads under it are keyed
SITE_DIR = Path(__file__).resolve().parent / "observe_site"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class AbsentImports:
    """Last on sys.meta_path: a top-level import no other finder could serve."""

    def __init__(self):
        self.names: set[str] = set()

    def find_spec(self, name, path=None, target=None):
        if path is None and "." not in name:
            self.names.add(name)
        return None


class Observer:
    def __init__(self, root: Path, out_dir: Path):
        self.root = str(root)
        self.prefix = self.root + os.sep
        self.out_dir = out_dir
        self.read: set[str] = set()
        self.written: set[str] = set()
        self.listed: set[str] = set()
        self.absent = AbsentImports()

    def start(self) -> "Observer":
        watched = frozenset(("open", "os.listdir", "os.scandir"))
        audit = self._audit

        def hook(event, args):
            if event in watched:        # an `in` on a set: no call for the other events
                audit(event, args)

        sys.addaudithook(hook)     # cannot be removed: this process is a test run
        sys.meta_path.append(self.absent)
        return self

    def _audit(self, event: str, args) -> None:
        if event == "open":
            path, mode, flags = args
            if isinstance(path, (str, bytes)):
                writes = (mode is not None and any(c in mode for c in "wax+")) or \
                    (mode is None and flags & WRITE_FLAGS)
                self._note(self.written if writes else self.read, path)
        elif event in ("os.listdir", "os.scandir"):
            path = args[0]
            self._note(self.listed, "." if path is None else path)

    def _note(self, into: set[str], path) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return
        path = os.path.abspath(path)
        if path.startswith(self.prefix):
            into.add(path)

    def snapshot(self) -> dict:
        """What this process saw, relative to the root (filtering is the runner's job)."""
        imported = set()
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            if isinstance(file, str) and os.path.abspath(file).startswith(self.prefix):
                imported.add(os.path.abspath(file))
        rel = lambda paths: sorted(os.path.relpath(p, self.root) for p in paths)
        return {"read": rel((self.read | imported) - self.written),
                "listed": rel(self.listed - self.written),
                "written": rel(self.written),
                "modules": outside_modules(self.prefix),
                "absent": sorted(n for n in self.absent.names if n not in sys.modules)}

    def write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        os.replace(tmp, path)


# What differs with how the process started (pytest's __main__ cold, the warm server's
# forked; our sitecustomize only in a new interpreter), not with what the tests ran.
HOW_IT_STARTED = {"__main__", "sitecustomize", "usercustomize"}


def outside_modules(project_prefix: str) -> dict[str, str]:
    """{top-level name: file} of the modules imported from outside the project that are
    not the standard library's."""
    found = {}
    for name, module in list(sys.modules.items()):
        if "." in name or name in sys.stdlib_module_names or name in HOW_IT_STARTED:
            continue
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and not os.path.abspath(file).startswith(project_prefix):
            found[name] = os.path.abspath(file)
    return dict(sorted(found.items()))


def read_observations(out_dir: Path) -> dict:
    """Merge what every process of one run wrote (the controller and any xdist workers)."""
    merged = {"read": set(), "listed": set(), "written": set(), "modules": {}, "absent": set()}
    for path in sorted(out_dir.glob("*.json")) if out_dir.is_dir() else []:
        try:
            seen = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for kind in ("read", "listed", "written", "absent"):
            merged[kind].update(seen.get(kind, []))
        merged["modules"].update(seen.get("modules", {}))
    merged["read"] -= merged["written"]
    merged["absent"] -= set(merged["modules"])
    return merged


_CURRENT: Observer | None = None


def start_from_environment(at_exit: bool = False) -> Observer | None:
    """Begin observing (once per process) if the orchestrator's runner started this
    process or an ancestor of it. A pytest process writes what it saw when pytest ends
    (the plugin); other processes `at_exit` (a forked child never runs atexit)."""
    global _CURRENT
    out_dir = os.environ.get(OBSERVE_ENV)
    if not out_dir or _CURRENT is not None:
        return _CURRENT
    root = os.environ.get(ROOT_ENV) or os.getcwd()
    _CURRENT = Observer(Path(root).resolve(), Path(out_dir)).start()
    if at_exit:
        import atexit
        atexit.register(_CURRENT.write)
    return _CURRENT


def environment(out_dir: Path, root: Path) -> dict[str, str]:
    """What the runner adds to a pytest process's environment to observe it and the
    Python processes it starts."""
    path = os.environ.get("PYTHONPATH")
    return {OBSERVE_ENV: str(out_dir), ROOT_ENV: str(root),
            "PYTHONPATH": os.pathsep.join([str(SITE_DIR)] + ([path] if path else []))}
