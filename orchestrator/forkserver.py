"""The warm pytest process: import pytest and the tests' heavy libraries once, then fork
a fresh child for each test run.  `python -m orchestrator.forkserver [module ...]`

Started and spoken to by launch.WarmLauncher. It never imports the project's package
or its tests: each child imports them fresh, after the fork, so a child sees the code
exactly as a new `python -m pytest` would. What a child inherits is only what was
imported here: pytest, its plugins and the modules named on the command line.

Protocol, JSON lines. In on stdin:  {"job": n, "args": [...], "cwd": dir, "env": {...},
"log": file}. Out on stdout: {"job": n, "pid": p} once forked, then {"job": n,
"status": s} when the child ended (s: its exit code, or -signal). When stdin closes (the
orchestrator ended, even by SIGKILL) the server kills every child's process group and
exits. Single-threaded on purpose: forking a process with threads can leave a lock
held in the child.
"""
from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import sys
import traceback


def preload(names: list[str]) -> None:
    # Not pytest plugins (xdist, ours): pytest rewrites their asserts as it imports them
    # and warns (an error under -W error) when they already are.
    for name in ["pytest", "orchestrator.graph", *names]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass   # an optional library: the tests that need it say so (skip with a reason)


def serve() -> None:
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, None)
    children: dict[int, tuple[int, int]] = {}    # pidfd -> (job, pid)
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.data is not None:              # a child ended
                job, pid = key.data
                _, status = os.waitpid(pid, 0)
                selector.unregister(key.fd)
                os.close(key.fd)
                del children[key.fd]
                say(job=job, status=os.waitstatus_to_exitcode(status))
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:                         # the orchestrator is gone
                for _, pid in children.values():
                    kill_group(pid)
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                server = os.getpid()
                pid = os.fork()
                if pid == 0:
                    for fd in [selector.fileno(), *children]:
                        os.close(fd)
                    run_child(request, server)    # never returns
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (request["job"], pid)
                selector.register(pidfd, selectors.EVENT_READ, (request["job"], pid))
                say(job=request["job"], pid=pid)


def run_child(request: dict, server: int) -> None:
    """In the forked child: become a fresh `python -m pytest` run, then exit."""
    code = 70
    try:
        os.setsid()                      # its own process group: a timeout kills it whole
        die_with(server)
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


def die_with(server: int) -> None:
    """Linux kills this child with the server; the check covers a server gone before."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:
        os._exit(70)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def say(**message) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def main() -> None:
    preload(sys.argv[1:])
    say(ready=os.getpid())
    serve()


if __name__ == "__main__":
    main()
