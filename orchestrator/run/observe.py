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
observe_site/ (a sitecustomize) first on their PYTHONPATH. Those, and the processes
forked from an observed one (a multiprocessing pool's workers, which end by os._exit or a
SIGTERM and never run atexit), write each new path as it is seen, one JSON line at a time.

A file opened in any mode that can read it ('r', 'r+', 'a+', a memmap) is a read, even
if the run also wrote it; a failed open is kept too (the runner keys it as missing, so the
file's appearing later re-runs). Since every file of the tree is an input anyway
(tree.py), observation mostly explains and checks: it names what changed, it catches a
read that graph.toml scopes away (keys.undeclared_reads), and it is the only witness of
imports from outside the root. Limits (in the README): reads by non-Python subprocesses,
and by Python subprocesses started with -I, -E or -S or with a PYTHONPATH of their own,
are not seen.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

OBSERVE_ENV = "ORCHESTRATOR_OBSERVE"     # directory where each process writes what it saw
ROOT_ENV = "ORCHESTRATOR_OBSERVE_ROOT"   # the project root: only reads under it are keyed
SITE_DIR = Path(__file__).resolve().parent / "observe_site"
KINDS = ("read", "listed", "written")


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
        self.stream: int | None = None     # a JSON-lines file: paths written as seen
        self.busy = False                  # our own open of that file is not the tests'

    def start(self, streaming: bool = False) -> Observer:
        watched = frozenset(("open", "os.listdir", "os.scandir"))
        audit = self._audit

        def hook(event, args):
            if event in watched:        # an `in` on a set: no call for the other events
                audit(event, args)

        sys.addaudithook(hook)     # cannot be removed: this process is a test run
        sys.meta_path.append(self.absent)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.start_streaming)
        if streaming:
            self.start_streaming()
        return self

    def start_streaming(self) -> None:
        """In a process that may end without running atexit (a forked worker, a
        subprocess): write every new path at once, after what it inherited."""
        self.busy = True
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.stream = os.open(self.out_dir / f"{os.getpid()}.jsonl",
                                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            self.stream = None
        finally:
            self.busy = False
        self._emit([(kind, path) for kind in KINDS for path in sorted(getattr(self, kind))])

    def _audit(self, event: str, args) -> None:
        if self.busy:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, (str, bytes)):
                if mode is not None:
                    reads = "r" in mode or "+" in mode
                    writes = any(c in mode for c in "wax+")
                else:
                    access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
                    reads, writes = access != os.O_WRONLY, access != os.O_RDONLY
                if reads:
                    self._note("read", path)
                if writes:
                    self._note("written", path)
        elif event in ("os.listdir", "os.scandir"):
            path = args[0]
            self._note("listed", "." if path is None else path)

    def _note(self, kind: str, path) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return
        path = os.path.abspath(path)
        into = getattr(self, kind)
        if path.startswith(self.prefix) and path not in into:
            into.add(path)
            if self.stream is not None:
                self._emit([(kind, path)])

    def _emit(self, records: list[tuple[str, str]]) -> None:
        """One write (O_APPEND: whole lines, whatever other processes append)."""
        text = "".join(json.dumps({kind: os.path.relpath(path, self.root)}) + "\n"
                       for kind, path in records)
        if self.stream is None or not text:
            return
        try:
            os.write(self.stream, text.encode("utf-8", "surrogateescape"))
        except OSError:
            pass

    def snapshot(self) -> dict:
        """What this process saw, relative to the root (filtering is the runner's job)."""
        files = module_files()
        imported = {file for file in files.values() if file.startswith(self.prefix)}

        def rel(paths: set[str]) -> list[str]:
            return sorted(os.path.relpath(p, self.root) for p in paths)
        return {"read": rel(self.read | imported),
                "listed": rel(self.listed),
                "written": rel(self.written),
                "modules": outside_modules(self.prefix, files),
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


def module_files() -> dict[str, str]:
    """{module name: its file, absolute} of every imported module that has a file: one
    pass over sys.modules (hundreds of modules in a test run)."""
    found = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            found[name] = os.path.abspath(file)
    return found


def outside_modules(project_prefix: str, files: dict[str, str] | None = None) -> dict[str, str]:
    """{top-level name: file} of the modules imported from outside the project that are
    not the standard library's (`files`: module_files(), if already taken)."""
    found = {}
    for name, file in (module_files() if files is None else files).items():
        if "." in name or name in sys.stdlib_module_names or name in HOW_IT_STARTED:
            continue
        if not file.startswith(project_prefix):
            found[name] = file
    return dict(sorted(found.items()))


def read_observations(out_dir: Path) -> dict:
    """Merge what every process of one run wrote (the controller and any xdist workers)."""
    kinds: dict[str, set[str]] = {"read": set(), "listed": set(), "written": set(),
                                 "absent": set()}
    modules: dict[str, str] = {}
    for path in sorted(out_dir.glob("*.json*")) if out_dir.is_dir() else []:
        for seen in _records(path):
            for kind, names in kinds.items():
                value = seen.get(kind, [])
                names.update([value] if isinstance(value, str) else value)
            modules.update(seen.get("modules", {}))
    kinds["absent"] -= set(modules)
    return {"read": kinds["read"], "listed": kinds["listed"], "written": kinds["written"],
            "modules": modules, "absent": kinds["absent"]}


def _records(path: Path) -> list[dict]:
    """A snapshot (.json), or a stream's lines (.jsonl; a last line cut short by a kill is
    dropped, every whole one kept)."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    lines = text.splitlines() if path.suffix == ".jsonl" else [text]
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


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
    # a subprocess streams (it may be killed, or end by os._exit); a pytest process
    # writes its snapshot when pytest ends (the plugin)
    _CURRENT = Observer(Path(root).resolve(), Path(out_dir)).start(streaming=at_exit)
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
