"""`orchestrator watch`: the student's loop. Save an edit, see what it affects re-run.

    orchestrator watch                   doit all after every change
    orchestrator watch test:09 pytest=-x doit test:09_spatial pytest=-x after every change

Each cycle is `python -m doit TARGETS` in the project root, so gating, the cache and
the output are exactly doit's: an edit re-runs the modules whose key it changed (a
markdown edit in a module source re-runs nothing) and everything else prints
`(cached) PASSED`. One run first, then one run per debounced batch of changes:

    == change: modules/03_mul/mul_dev.py -> doit all
    ...doit's lines...
    == doit exited 0; watching for changes (Ctrl-C to stop)

What is watched is what a key can name (keys.affected_by): every file of the tree that
some module's key holds (tree.py), graph.toml, and the files the last runs were observed
to read outside their trees. Never the state dir, the generated package, caches, .git,
a virtualenv inside the checkout, ignored files, or editor temp files: doit's own exports
do not start another run. Changes saved while a run is on are kept and start the next
cycle when it ends. A cycle's exit code is shown, never ends the watch; Ctrl-C does
(exit 130; SIGTERM and SIGHUP too, 128 + the signal), interrupting a run in progress
the way Ctrl-C interrupts doit. doit runs below reaper.py's wrapper, so even a watch
killed by SIGKILL leaves no run behind.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path, PurePosixPath

from orchestrator.cache import keys
from orchestrator.cache.store import Store
from orchestrator.campaign.options import BadOption, RunOptions, unknown_variables
from orchestrator.core.graph import GraphError, ModuleGraph, load, suggest
from orchestrator.run import reaper

STOP_GRACE = 15.0          # seconds doit gets to stop after SIGINT (it stops its pytests)
MAX_BATCH_MS = 2000        # a stream of changes starts a cycle after this long at most
ADDED = 1                  # watchfiles.Change.added
SHOWN_PATHS = 3            # changed files named in a cycle's header line
EDITOR_TEMP = re.compile(
    r"\.sw[a-z]$"           # vim swap files
    r"|~$"                  # backups (vim, emacs, gedit)
    r"|^\.#|^#.*#$"         # emacs lock and auto-save files
    r"|^4913$"              # vim's probe of a folder's permissions
    r"|___jb_\w+___$"       # JetBrains safe-write
    r"|\.tmp$|\.py[cod]$|^\.DS_Store$")


class WatchError(ValueError):
    """Why the watch cannot start (a target or variable doit would refuse, no
    watchfiles): one printable line."""


def doit_arguments(graph: ModuleGraph, args: tuple[str, ...] | list[str]) -> list[str]:
    """The command line arguments of each cycle's doit, checked now rather than once per
    cycle: `all` (the default), `graph`, `test:NN` or `export:NN` (NN as `orchestrator
    why` takes it: 03, mul, 03_mul; a bare NN means test:NN), and doit variables."""
    targets, variables = [], []
    for arg in args:
        if "=" in arg:
            variables.append(arg)
            continue
        kind, colon, name = arg.rpartition(":")
        if not colon and name in ("all", "graph"):
            targets.append(name)
            continue
        if kind not in ("test", "export", ""):
            raise WatchError(f"unknown target '{arg}' (targets: all, test:NN, export:NN)")
        try:
            targets.append(f"{kind or 'test'}:{graph.resolve(name)}")
        except GraphError:
            close = suggest(name, graph.modules)
            raise WatchError(f"unknown target '{arg}'{close} (targets: all, test:NN, "
                            "export:NN)") from None
    values = dict(v.split("=", 1) for v in variables)
    try:
        unknown_variables(values)
        RunOptions.from_vars(lambda name, default: values.get(name, default))
    except BadOption as e:
        raise WatchError(str(e)) from None
    return list(dict.fromkeys(targets or ["all"])) + variables


class Watched:
    """Which changed paths can change a result (a watchfiles filter: (change, path) ->
    bool): what keys.affected_by says some module's key names, and the files and folders
    the last runs were observed to read or list outside their trees (a later module's
    export, a scoped file). Rebuilt after every cycle, since an edit of graph.toml or a
    run may change it."""

    def __init__(self, graph: ModuleGraph):
        self.graph = graph
        self.root = graph.root
        self.observed: set[str] = set()       # read by a run: watched wherever they are
        self.listed: set[str] = set()         # listed by a run: whatever appears in them
        store = Store(self.root, repair=False)      # reads only: sets nothing aside
        for module in graph:
            latest = store.latest(module.id)
            for name in latest.observed if latest else ():
                kind, _, what = name.partition(":")
                if kind == "observed":
                    self.observed.add(what)
                elif kind == "listed":
                    self.listed.add(what)

    def relative(self, path: str) -> PurePosixPath | None:
        try:
            return PurePosixPath(Path(os.path.normpath(path)).relative_to(self.root).as_posix())
        except ValueError:
            return None

    def __call__(self, change, path: str) -> bool:
        rel = self.relative(path)
        if rel is None or not rel.parts:
            return False
        text = rel.as_posix()
        if text in self.observed or str(rel.parent) in self.listed:
            return True                  # e.g. the course's own file in the package
        if EDITOR_TEMP.search(rel.name):
            return False
        return bool(keys.affected_by(self.graph, text))


def watch(graph: ModuleGraph, doit_args: list[str], debounce: float = 0.2,
          out=None) -> int:
    """Run doit now, then after every debounced batch of relevant changes, until Ctrl-C
    (or SIGTERM, SIGHUP). Returns the exit code: 128 + the signal, 130 for Ctrl-C."""
    RustNotify = notifier()
    out = out or sys.stdout
    # doit runs below reaper.py's wrapper where there is one (POSIX): if this process dies,
    # even by SIGKILL, the wrapper kills doit and everything it started
    command = [sys.executable, "-m", "doit", *doit_args]
    if reaper.wrapper_available():
        command = [sys.executable, "-I", "-S", reaper.__file__, "--die-with",
                   str(os.getpid()), "--", *command]
    shown = "doit " + " ".join(doit_args)
    filter_ = Watched(graph)
    doit = None
    with Signals() as signals:
        try:
            # watching starts before the first run: nothing saved from now on is missed
            with RustNotify([str(graph.root)], False, force_polling(), 300, True,
                            True) as notify:
                header = f"== watching {graph.root} -> {shown}"
                while True:
                    say(out, header)
                    doit = subprocess.Popen(command, cwd=graph.root, start_new_session=True)
                    code = doit.wait()
                    doit = None
                    say(out, f"== {ended(code)}; watching for changes (Ctrl-C to stop)")
                    filter_ = rebuilt(filter_, graph.root)
                    changed = next_batch(notify, filter_, debounce)
                    header = f"== change: {describe(changed)} -> {shown}"
        except KeyboardInterrupt:
            if doit is not None:
                stop(doit)
            why = "Ctrl-C" if signals.received == signal.SIGINT else \
                signal.Signals(signals.received).name
            print(f"watch: stopped ({why})", file=sys.stderr, flush=True)
            return 128 + signals.received


class Signals:
    """Ctrl-C, SIGTERM and SIGHUP stop the watch (KeyboardInterrupt), even where the
    shell started it with SIGINT ignored (a background job): it has no other way out,
    and it must never leave a run behind. `received`: the last one (SIGINT if none)."""
    STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.received = signal.SIGINT
        self.previous = {}

    def __enter__(self):
        for signum in self.STOPPING:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


def ended(code: int) -> str:
    return f"doit was killed by {signal.Signals(-code).name}" if code < 0 else \
        f"doit exited {code}"


def next_batch(notify, keep, debounce: float) -> list[str]:
    """The relevant paths of the next batch of changes (sorted, relative to the root):
    changes gathered until `debounce` seconds pass without a new one."""
    step = max(1, int(debounce * 1000))
    while True:
        raw = notify.watch(max(step, MAX_BATCH_MS), step, 5000, None)
        if raw == "signal":
            raise KeyboardInterrupt
        if isinstance(raw, str):          # 'timeout' (or 'stop'): keep waiting
            continue
        paths = saved(raw, keep)
        if paths:
            return paths


def saved(raw: set[tuple[int, str]], keep: Watched) -> list[str]:
    """The relevant paths of a batch, less the ones both created and gone within it
    (a temp file an editor or `sed -i` wrote and renamed): an edit is named by the
    file it saved."""
    kinds: dict[str, set[int]] = {}
    names: dict[str, str] = {}
    for change, path in raw:
        rel = keep.relative(path)
        if rel is not None and keep(change, path):
            kinds.setdefault(path, set()).add(int(change))
            names[path] = rel.as_posix()
    return sorted(names[path] for path, seen in kinds.items()
                  if not (ADDED in seen and not os.path.lexists(path)))


def rebuilt(previous: Watched, root: Path) -> Watched:
    """The filter for the graph now; the previous one while graph.toml does not load
    (doit has said why: its next good version is a change like any other)."""
    try:
        return Watched(load(root))
    except GraphError:
        return previous


def describe(paths: list[str]) -> str:
    more = len(paths) - SHOWN_PATHS
    return ", ".join(paths[:SHOWN_PATHS]) + (f" (+{more} more)" if more > 0 else "")


def stop(doit: subprocess.Popen) -> None:
    """Interrupt a run as Ctrl-C interrupts doit (SIGINT: it stops its pytests, stores
    nothing of what was running, prints INTERRUPTED; the wrapper above it ignores it and
    sweeps what is left); kill the whole tree if it lingers, or on a second Ctrl-C."""
    try:
        reaper.kill_group(doit.pid, signal.SIGINT)
        doit.wait(timeout=STOP_GRACE)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        reaper.kill_tree(doit.pid)
        doit.wait()


def notifier():
    """watchfiles' notifier (what watchfiles.watch runs on; used directly so that watching
    starts before the first run), or a WatchError saying how to install it."""
    try:
        from watchfiles._rust_notify import RustNotify
    except ImportError:
        raise WatchError("orchestrator watch needs watchfiles: pip install "
                         "'watchfiles>=1.0'") from None
    return RustNotify


def force_polling() -> bool:
    """watchfiles' rule: WATCHFILES_FORCE_POLLING set and not false/disable(d)."""
    value = os.environ.get("WATCHFILES_FORCE_POLLING", "")
    return bool(value) and value.lower() not in ("false", "disable", "disabled")


def say(out, line: str) -> None:
    print(line, file=out, flush=True)
