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

Every platform runs a test; Linux has the most to keep it tidy. What each has:

- Linux: all of the above (prctl, /proc, pidfds).
- macOS and other POSIX systems: no subreaper and no death signal; the process table
  comes from `ps`, so a tree is still found and killed while its root lives, and the
  wrapper polls for its parent's death instead. An orphan that escaped its group
  (setsid) after its parent ended is adopted by init, where no sweep finds it.
- Windows: no process groups, signals or wrapper; `taskkill /T /F` kills a tree, and
  a Ctrl-Break to the group interrupts (launch.py starts pytest in a group of its own).
  What a test leaves running after pytest ended is not found.
Where a tool is missing, its function returns what it could do (False, {}, nothing
killed), never an error. Imports only the standard library, and ctypes and
subprocess only when asked: the wrapper is started by path with `python -I -S`,
before each cold pytest.
"""
from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
DESCRIPTION_CHARS = 200
PROC = "/proc"             # the process table on Linux (tests point it elsewhere)
WINDOWS = sys.platform == "win32"
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)   # Windows: os.kill(SIGTERM) is TerminateProcess
PARENT_POLL = 0.5          # seconds between checks of the wrapper's parent, without prctl


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


def table() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, state)} of every process we can see (state: R, S, Z...), from
    /proc, else from `ps` on POSIX; {} where neither answers (Windows)."""
    found: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir(PROC)
    except OSError:
        return {} if WINDOWS else _ps_table()
    for name in names:
        if name.isdigit():
            stat = _stat(int(name))
            if stat:
                found[int(name)] = (int(stat[1]), stat[0])
    return found


def parents() -> dict[int, int]:
    """{pid: parent pid} of every process we can see; {} without /proc and ps."""
    return {pid: parent for pid, (parent, _) in table().items()}


def _ps_table() -> dict[int, tuple[int, str]]:
    found: dict[int, tuple[int, str]] = {}
    output, ps = _ps("-A", "-o", "pid=", "-o", "ppid=", "-o", "stat=")
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            state = fields[2][:1] if len(fields) > 2 else "?"
            found[int(fields[0])] = (int(fields[1]), state)
    found.pop(ps, None)       # ps saw itself running, our child; it is gone by now
    return found


def _ps(*args: str) -> tuple[str, int]:
    """(ps's output, ps's pid); ('', 0) if there is no ps or it failed."""
    import subprocess
    try:
        with subprocess.Popen(["ps", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL) as ps:
            output, _ = ps.communicate(timeout=10)
        return output.decode(errors="replace"), ps.pid
    except (OSError, subprocess.SubprocessError):
        return "", 0


def descendants(pid: int, exclude=frozenset()) -> list[int]:
    """Every descendant of `pid`, parents before their children; the processes in
    `exclude` and everything below them are left out."""
    return list(_tree(pid, exclude))


def _tree(pid: int, exclude=frozenset(), processes=None) -> dict[int, int]:
    """{descendant: its parent}, in the order of `descendants`."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in (table() if processes is None else processes).items():
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
    if _children_within(exclude):
        return []                       # the common case, told without reading every process
    deadline = time.monotonic() + within
    while True:
        processes = table()
        found = _tree(me, exclude, processes)
        if not found:
            break
        for pid, parent in found.items():
            if pid not in killed and processes[pid][1] not in ("Z", "X", ""):
                killed[pid] = describe(pid)
            _kill(pid, parent=parent)
        _reap([pid for pid, parent in found.items() if parent == me])
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    return list(killed.values())


def _children_within(exclude) -> bool:
    """True when every child of this process is in `exclude` (or it has none), from Linux's
    /proc/self/task/*/children: what a sweep would find lies below a child, so then there
    is nothing to sweep. False where the kernel does not list children (the sweep reads the
    whole process table). A child started as we read is the same race the table has."""
    try:
        tasks = os.listdir(f"{PROC}/self/task")
        for task in tasks:
            with open(f"{PROC}/self/task/{task}/children", "rb") as f:
                if any(int(pid) not in exclude for pid in f.read().split()):
                    return False
    except (OSError, ValueError):
        return False
    return True


def kill_tree(pid: int) -> None:
    """From outside: SIGKILL `pid`, its process group and every descendant. Stops them
    first (SIGSTOP) until no new one appears, so none forks away while we kill.
    Windows: `taskkill /T /F` (the tree as Windows records it)."""
    if WINDOWS:
        _taskkill(pid)
        return
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


def kill_group(pgid: int, sig: int = KILL, leader_alive: bool = True) -> None:
    """Signal the process group `pgid`; or the process `pgid` alone while it is not yet
    its group's leader (just forked). `leader_alive=False`: the leader was reaped, so
    its pid may be another process's by now: the group or nothing.
    Windows, where pytest runs in a new process group: SIGINT is a Ctrl-Break to the
    group, anything else kills the tree (taskkill)."""
    if WINDOWS:
        if sig == signal.SIGINT:
            try:
                # typeshed declares CTRL_BREAK_EVENT for win32 only; mypy checks as the host
                os.kill(pgid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined,unused-ignore]
            except OSError:
                pass
        elif leader_alive:
            _taskkill(pgid)
        return
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:      # not yet its own group leader (just forked), or gone
        if leader_alive:
            try:
                os.kill(pgid, sig)
            except ProcessLookupError:
                pass
    except PermissionError:
        pass


def _taskkill(pid: int) -> None:
    """Windows: kill `pid` and every process it started that is still running."""
    import subprocess
    try:
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(pid)], capture_output=True,
                       timeout=30)
    except (OSError, subprocess.SubprocessError):
        try:
            os.kill(pid, KILL)
        except OSError:
            pass


def describe(pid: int) -> str:
    """'4242 sleep 1000': the pid and the command line (the name if it has none)."""
    try:
        with open(f"{PROC}/{pid}/cmdline", "rb") as f:
            command = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        if not command:
            with open(f"{PROC}/{pid}/comm", "rb") as f:
                command = f"[{f.read().decode(errors='replace').strip()}]"
    except OSError:
        command = ("" if WINDOWS else _ps("-o", "command=", "-p", str(pid))[0].strip()) or "?"
    return f"{pid} {command}"[:DESCRIPTION_CHARS]


def summary(killed: list[str]) -> str:
    """'killed 1 process left running by the tests' (the words of the report line)."""
    n = len(killed)
    return f"killed {n} process{'es' if n != 1 else ''} left running by the tests"


def _stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/pid/stat (state, ppid, pgrp, ...); [] if it is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return []


def _parent(pid: int) -> int:
    stat = _stat(pid)
    return int(stat[1]) if stat else 0


def _kill(pid: int, sig: int = KILL, parent: int = 0) -> None:
    """Signal `pid`. Given the `parent` it was found under, through a pidfd opened and
    then checked to be still that parent's child, so that a pid freed and reused by
    another process meanwhile is never hit (where /proc tells the parent)."""
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal") \
            and os.path.isdir(PROC):
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
        if not prctl(PR_SET_PDEATHSIG, signal.SIGHUP):
            watch_parent(die_with)        # no death signal here (macOS): look for it
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


def _orphaned(signum=None, frame=None) -> None:
    """The process we were to die with is gone: so is everything below us, and in our
    process group (where there is no subreaper, an orphan of the run may still be there)."""
    report(sweep(), sys.stderr)
    if os.getpgrp() == os.getpid():
        kill_group(os.getpid())           # ourselves too
    os._exit(128 + KILL)


def watch_parent(parent: int, interval: float | None = None) -> None:
    """Where the kernel sends no death signal: a thread that checks every `interval`
    seconds (PARENT_POLL) whether `parent` is still our parent, and ends the run
    (`_orphaned`) as soon as it is not."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL if interval is None else interval)
        _orphaned()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def wrapper_available() -> bool:
    """The wrapper needs posix_spawn and Unix signals: not on Windows."""
    return hasattr(os, "posix_spawnp") and hasattr(signal, "SIGHUP")


def report(killed: list[str], stream) -> None:
    """Say in the run's log which processes were killed (nothing if none)."""
    if killed:
        lines = "".join(f"    {k}\n" for k in killed)
        stream.write(f"orchestrator: {summary(killed)}:\n{lines}")
        stream.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
