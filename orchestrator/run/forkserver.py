"""The warm pytest process: import pytest and the tests' heavy libraries once, then fork
a fresh child for each test run.  `python -m orchestrator.run.forkserver [module ...]`

Started and spoken to by launch.WarmLauncher, on Linux only (fork and pidfds; where
WarmLauncher.available() says no, tasks.py runs every module cold). It never imports
the project's package or its tests: each child imports them fresh, after the fork, so
a child sees the code exactly as a new `python -m pytest` would. What a child inherits
is only what was imported here: pytest and its builtin plugins, our plugin and what it
imports, pytest's entry-point plugins (imported and assert-rewritten as pytest would,
plugin_preload.py), the modules named on the command line, and the project's graph.toml
parsed (session_graph.py: used while the file is unchanged).

Those are imported when the server is idle, one at a time, not before the first fork:
a run of one module whose tests never import torch must not wait for it. A child
forked before a library was preloaded imports it itself if it needs it; the result
is the same, only slower. {"preloaded": [names]} says when all are in.

Protocol, JSON lines. In on stdin:  {"job": n, "args": [...], "cwd": dir, "env": {...},
"log": file}. Out on stdout: {"job": n, "pid": p} once forked, then {"job": n,
"status": s} when the child ended (s: its exit code, or -signal). When stdin closes (the
orchestrator ended, even by SIGKILL) the server kills everything below it and exits.
Single-threaded on purpose: forking a process with threads can leave a lock held in
the child.

Nothing a run started outlives it (reaper.py). The server and each child are child
subreapers: while a child runs, what its tests orphan (a daemon that double-forked)
is adopted by the child, which kills it after pytest returns. If the child itself dies
first (a crash, a timeout), its leftovers are adopted by the server, which kills its
process group and every process below the server that no running child owns, then
reaps the child. It waits only on pids it knows to be its own (pidfds for the
children, the orphans it killed), never on any child (-1): a child's status is its own.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import signal
import sys
import traceback
from pathlib import Path

from orchestrator.run import reaper, session_graph
from orchestrator.run.launch import PLUGIN, die_with, kill_group
from orchestrator.run.plugin_preload import builtin_plugin_modules, preload_plugins

# Every child needs these: pytest, and what our plugin imports. The plugin module itself
# and the entry-point plugins (xdist, ...) are imported through pytest's rewriting hook
# instead (plugin_preload.py): `-p orchestrator.run.pytest_plugin` marks it for
# rewriting, and pytest warns, an error under -W error, about a marked module imported
# plainly before it.
# The plugin imports some of them only when it needs them, so that a student's plain
# `pytest` loads little; a child of this server has them already (test_forkserver.py
# checks this list against what a child's plugin imported).
ALWAYS = ["pytest", "orchestrator.run.closure_guard", "orchestrator.run.observe",
          "orchestrator.run.reaper", "orchestrator.run.launch", "orchestrator.core.graph",
          "orchestrator.core.export", "orchestrator.core.sourcemap", "orchestrator.cache.store",
          "orchestrator.cache.tally", "orchestrator.run.verdict", "orchestrator.run.session_graph",
          # what every pytest session imports beyond `import pytest` (plugin_preload.py says
          # why importing them here is what the child would do), and what it imports as it
          # configures: its command line's completion helper, pdb (the debugging plugin),
          # faulthandler, ctypes (prctl in reaper.py). Not readline: pytest's capture plugin
          # imports it on purpose in the child, to attach it to the child's own terminal.
          *builtin_plugin_modules(), "_pytest._argcomplete", "pdb", "faulthandler", "ctypes"]


def preload(name: str) -> None:
    try:
        importlib.import_module(name)
    except ImportError:
        pass   # an optional library: the tests that need it say so (skip with a reason)


class Server:
    """The loop: requests arrive on stdin, ends of children on their pidfds."""

    def __init__(self, later: list[str]):
        self.later = list(later)       # to preload when idle
        self.selector = selectors.DefaultSelector()
        self.selector.register(0, selectors.EVENT_READ, None)
        self.children: dict[int, tuple[int, int]] = {}    # pidfd -> (job, pid)
        self.logs: dict[int, str] = {}                     # pid -> its run's log
        self.buffer = b""

    def serve(self) -> None:
        while True:
            events = self.selector.select(timeout=0 if self.later else None)
            if not events:
                preload(self.later.pop(0))
                if not self.later:
                    say(preloaded=[name for name in sys.argv[1:] if name in sys.modules])
            for key, _ in events:
                if key.data is not None:
                    self.reap(key.fd, *key.data)
                elif not self.read_requests():
                    return

    def read_requests(self) -> bool:
        chunk = os.read(0, 1 << 16)
        if not chunk:                  # the orchestrator is gone: so is everything it asked for
            for _, pid in self.children.values():
                reaper.kill_tree(pid)
            reaper.sweep()
            return False
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.fork(json.loads(line))
        return True

    def fork(self, request: dict) -> None:
        server = os.getpid()
        # Everything imported here goes to the collector's permanent generation: a child's
        # collections (pytest calls gc.collect() several times as a session ends) then skip
        # the server's millions of objects (torch, numpy), and reading them in a collection
        # does not copy their pages either (measured: a third of a small module's child).
        try:
            session_graph.warm(Path(request["cwd"]))     # a child inherits it, parsed
        except Exception:
            pass          # a convenience: the child reads graph.toml itself, and says why
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            for fd in [self.selector.fileno(), CHANNEL, *self.children]:
                os.close(fd)
            run_child(request, server)    # never returns
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (request["job"], pid)
        self.logs[pid] = request["log"]
        self.selector.register(pidfd, selectors.EVENT_READ, (request["job"], pid))
        say(job=request["job"], pid=pid)

    def reap(self, pidfd: int, job: int, pid: int) -> None:
        """The child ended (not yet reaped, so its pid and group id are still its own):
        kill what is left in its group and what it orphaned, then take its status."""
        known = {child for _, child in self.children.values()}
        killed = reaper.sweep(exclude=known)      # its orphans, now ours
        kill_group(pid)                           # in its group, yet not below us: none
        log = self.logs.pop(pid)
        if killed:
            with open(log, "a", encoding="utf-8") as out:
                reaper.report(killed, out)
        _, status = os.waitpid(pid, 0)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        del self.children[pidfd]
        say(job=job, status=os.waitstatus_to_exitcode(status))


def run_child(request: dict, server: int) -> None:
    """In the forked child: become a fresh `python -m pytest` run, then exit."""
    code = 70
    try:
        os.setsid()                      # its own process group: a timeout kills it whole
        die_with(server)                 # the server's death is this child's
        reaper.become_subreaper()        # what the tests orphan stays below us, for the sweep
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a timeout interrupts
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        redirect_output(request["log"])
        sys.path[0] = request["cwd"]     # as `python -m pytest` puts the working directory first
        sys.argv = ["pytest", *request["args"]]
        import pytest
        code = int(pytest.main(request["args"]))
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            reaper.report(reaper.sweep(), sys.stderr)
        except BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def redirect_output(log: str) -> None:
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(devnull)


CHANNEL = 1   # where answers go; main() moves it off stdout, which imports may print to


def say(**message) -> None:
    os.write(CHANNEL, (json.dumps(message) + "\n").encode())


def main() -> None:
    global CHANNEL
    reaper.become_subreaper()  # leftovers of a child that died are adopted here, not by init
    CHANNEL = os.dup(1)
    os.dup2(2, 1)             # a library printing at import must not garble the answers
    for name in ALWAYS:
        preload(name)
    preload_plugins((PLUGIN,))       # every run names it with -p (runner.py)
    say(ready=os.getpid())
    if not sys.argv[1:]:
        say(preloaded=[])
    Server(later=sys.argv[1:]).serve()


if __name__ == "__main__":
    main()
