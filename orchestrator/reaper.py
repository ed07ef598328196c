"""The processes a test run left behind: find them, kill them, say which they were.

Bazel kills a test's whole process tree when it ends. A process group is not enough:
a test may start a daemon that calls setsid (or double-forks), and when its parent
exits it is adopted by init, outside every group we know. Linux has the tool for it:
a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER) adopts the orphans of all its
descendants instead of init, so everything a run started stays below the process
that runs it, where `sweep` finds it.

Who is a subreaper: the warm server and each pytest child it forks (forkserver.py),
the cold launcher's wrapper (`python reaper.py -- command...`, below) and the pytest
process itself (the plugin). Each sweeps what is left below it when its run ends.

Linux only, through /proc; elsewhere every function is a no-op (nothing found,
nothing killed). Imports only the standard library, and ctypes only when asked: the
wrapper is started by path with `python -I -S`, before each cold pytest.
"""
from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
DESCRIPTION_CHARS = 200


def prctl(option: int, value: int) -> bool:
    """prctl(option, value) on Linux; False where there is no prctl or it refused."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphans of every descendant are re-parented to this process, not to init."""
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def parents() -> dict[int, int]:
    """{pid: parent pid} of every process we can see; {} without /proc."""
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if name.isdigit():
            stat = _stat(int(name))
            if stat:
                found[int(name)] = int(stat[1])
    return found


def descendants(pid: int, exclude=frozenset()) -> list[int]:
    """Every descendant of `pid`, parents before their children; the processes in
    `exclude` and everything below them are left out."""
    return list(_tree(pid, exclude))


def _tree(pid: int, exclude=frozenset()) -> dict[int, int]:
    """{descendant: its parent}, in the order of `descendants`."""
    children: dict[int, list[int]] = {}
    for child, parent in parents().items():
        children.setdefault(parent, []).append(child)
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        level = [(c, p) for p in todo for c in children.get(p, []) if c not in exclude]
        found.update(level)
        todo = [c for c, _ in level]
    return found


def sweep(exclude=frozenset(), within: float = 5.0) -> list[str]:
    """SIGKILL every descendant of this process, except the processes in `exclude` and
    what runs below them; reap those that are (or become) our children. Returns one
    description per process killed while it was running: '4242 sleep 1000'.

    Repeats until nothing is left (or `within` seconds passed): a process may fork
    while we look, and killing a parent hands its children to us (a subreaper).
    Never waits on an excluded child, so their exit statuses stay theirs."""
    me, killed = os.getpid(), {}
    deadline = time.monotonic() + within
    while True:
        found = _tree(me, exclude)
        if not found:
            break
        for pid, parent in found.items():
            if pid not in killed and _state(pid) not in ("Z", "X", ""):
                killed[pid] = describe(pid)
            _kill(pid, parent=parent)
        _reap([pid for pid, parent in found.items() if parent == me])
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    return list(killed.values())


def kill_tree(pid: int) -> None:
    """From outside: SIGKILL `pid`, its process group and every descendant. Stops them
    first (SIGSTOP) until no new one appears, so none forks away while we kill."""
    stopped: dict[int, int] = {}
    for _ in range(50):
        new = {p: parent for p, parent in _tree(pid).items() if p not in stopped}
        if not new:
            break
        for p, parent in new.items():
            _kill(p, signal.SIGSTOP, parent)
        stopped.update(new)
    _kill(pid)
    for p in stopped:
        _kill(p)                        # stopped: their parents are still theirs
    kill_group(pid)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:      # not yet its own group leader (just forked), or gone
        try:
            os.kill(pgid, sig)
        except ProcessLookupError:
            pass
    except PermissionError:
        pass


def describe(pid: int) -> str:
    """'4242 sleep 1000': the pid and the command line (the name if it has none)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        if not command:
            with open(f"/proc/{pid}/comm", "rb") as f:
                command = f"[{f.read().decode(errors='replace').strip()}]"
    except OSError:
        command = "?"
    return f"{pid} {command}"[:DESCRIPTION_CHARS]


def summary(killed: list[str]) -> str:
    """'killed 1 process left running by the tests' (the words of the report line)."""
    n = len(killed)
    return f"killed {n} process{'es' if n != 1 else ''} left running by the tests"


def _stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/pid/stat (state, ppid, pgrp, ...); [] if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return []


def _state(pid: int) -> str:
    stat = _stat(pid)
    return stat[0] if stat else ""


def _parent(pid: int) -> int:
    stat = _stat(pid)
    return int(stat[1]) if stat else 0


def _kill(pid: int, sig: int = signal.SIGKILL, parent: int = 0) -> None:
    """Signal `pid`. Given the `parent` it was found under, through a pidfd opened and
    then checked to be still that parent's child, so that a pid freed and reused by
    another process meanwhile is never hit."""
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return                      # gone
        try:
            if not parent or _parent(pid) == parent:
                signal.pidfd_send_signal(fd, sig)
        except OSError:
            pass
        finally:
            os.close(fd)
        return
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _reap(children: list[int]) -> None:
    for pid in children:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


# ---- the wrapper: `python -I -S reaper.py [--die-with PID] [--pid-env NAME] -- command...`

def main(argv: list[str]) -> int:
    """Run `command` as our child, being its subreaper; when it ends, kill what it left
    (writing what to stderr) and end as it did: its exit code, or its signal.

    SIGINT and SIGTERM sent to the group reach the command, not us: we stay to sweep.
    --die-with PID: when that process dies (even by SIGKILL), kill the command and all
    it started, then die (the kernel tells us with SIGHUP: PR_SET_PDEATHSIG).
    --pid-env NAME: tell the command our pid in $NAME (its parent is now us)."""
    die_with, pid_env = 0, ""
    while argv and argv[0] != "--":
        option, value, *argv = argv
        if option == "--die-with":
            die_with = int(value)
        elif option == "--pid-env":
            pid_env = value
    command = argv[1:]
    become_subreaper()
    if die_with:
        signal.signal(signal.SIGHUP, _orphaned)
        prctl(PR_SET_PDEATHSIG, signal.SIGHUP)
        if os.getppid() != die_with:
            return 70
    env = dict(os.environ)
    if pid_env:
        env[pid_env] = str(os.getpid())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    defaults = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGQUIT}
    defaults |= {getattr(signal, name) for name in ("SIGXFSZ",) if hasattr(signal, name)}
    try:
        child = os.posix_spawnp(command[0], command, env, setsigdef=defaults)
    except OSError as e:
        print(f"orchestrator: cannot run {command[0]}: {e}", file=sys.stderr)
        return 127
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    report(sweep(), sys.stderr)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:                         # end as it did, without a second core dump
        try:
            import resource
            _, hard = resource.getrlimit(resource.RLIMIT_CORE)
            resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
        except (ImportError, ValueError, OSError):
            pass
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def _orphaned(signum, frame) -> None:
    """The process we were to die with is gone: so is everything below us."""
    report(sweep(), sys.stderr)
    os._exit(128 + signal.SIGKILL)


def report(killed: list[str], stream) -> None:
    """Say in the run's log which processes were killed (nothing if none)."""
    if killed:
        lines = "".join(f"    {k}\n" for k in killed)
        stream.write(f"orchestrator: {summary(killed)}:\n{lines}")
        stream.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
