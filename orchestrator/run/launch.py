"""How a pytest run is started: a new `python -m pytest` process (ColdLauncher), or a
child forked from a warm process that has pytest and the tests' heavy libraries
already imported (WarmLauncher, served by forkserver.py).

Both have one method, run(args, cwd, env, log, timeout) -> None, or how the process
itself went wrong: TimedOut(seconds) or Crashed(detail), typed so that the runner judges
the Cause by what happened, never by the words ('timed out after Ns', 'crashed: ...' are
only how they read). How the tests went is read from the plugin's report, never from here.

When a run ends, pass or fail, every process it started is gone, as in Bazel. Both put
pytest in its own process group, killed when pytest ends; and pytest runs below a
child subreaper (reaper.py) that adopts and kills what escaped the group (setsid,
double fork): the warm server and the child it forked, or, cold, a small wrapper
process. What was killed is named in the run's log ("orchestrator: killed 1 process
left running by the tests:"). A timeout interrupts first (SIGINT: pytest writes where
it was into the log), then terminates (SIGTERM), then kills the whole tree.

Every platform runs tests cold; each extra is used where the platform has it, and a
platform without it still runs every test and fails closed (a crash, a timeout):
- the warm launcher needs fork and pidfds (Linux): elsewhere tasks.py starts cold;
- the reaper wrapper needs posix_spawn and Unix signals: on Windows pytest is started
  directly, in a new process group (CREATE_NEW_PROCESS_GROUP), told its parent in
  $ORCHESTRATOR_PARENT_PID; a timeout sends Ctrl-Break, then kills the tree (taskkill);
- without a pidfd (macOS, Windows) a run is waited for by reaping it, after which its
  process group is signalled only if it still exists, never the pid alone;
- what reaper.py cannot do on a platform (subreaper, death signal, /proc) is listed
  there.

Why a warm launcher: measured on the shipped curriculum (2 cores), a module's own
pytest process spent ~1 s starting Python and pytest and ~1 s importing torch for its
oracle tests: 20 s of a 69 s sequential run, more than the critical path could hide.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

from orchestrator.run import reaper

# How the orchestrator talks to orchestrator.run.pytest_plugin inside the pytest process it
# starts. (Here, not in the plugin, so that a no-op `doit all` never imports pytest; and not
# in runner.py, so that a plain `pytest` run does not import the runner to read them.)
PARENT_ENV = "ORCHESTRATOR_PARENT_PID"    # the pytest plugin dies with this process
REPORT_ENV = "ORCHESTRATOR_REPORT"        # where the plugin writes its JSON report
PLUGIN = "orchestrator.run.pytest_plugin"  # named with -p in every run (runner.py)


@dataclass(frozen=True)
class TimedOut:
    """The run outlived its budget and was stopped (`stop`)."""
    seconds: float

    def __str__(self) -> str:
        return f"timed out after {self.seconds}s"


@dataclass(frozen=True)
class Crashed:
    """pytest itself ended abnormally: a signal, a Windows crash code, the warm server gone."""
    detail: str                      # 'pytest was killed by SIGSEGV'

    def __str__(self) -> str:
        return f"crashed: {self.detail}"


# How a pytest process ended, apart from what its tests did: None when it ended by itself
Ending: TypeAlias = TimedOut | Crashed | None


class ColdLauncher:
    """A new Python process per run, below the wrapper `python reaper.py -- python -m
    pytest ...` (the subreaper that sweeps what the run left; it costs ~20 ms), or,
    where there is no wrapper (Windows), `python -m pytest` alone."""

    def run(self, args: list[str], cwd: Path, env: dict[str, str], log: Path,
            timeout: float) -> Ending:
        command = [sys.executable, "-m", "pytest", *args]
        if reaper.wrapper_available():
            command = [sys.executable, "-I", "-S", reaper.__file__,
                       "--die-with", str(os.getpid()), "--pid-env", PARENT_ENV, "--",
                       *command]
        else:
            env = {**env, PARENT_ENV: str(os.getpid())}
        timed_out: TimedOut | None = None
        with open(log, "a", encoding="utf-8") as out:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, **new_process_group())
            try:
                if not ended(process, timeout):
                    stop(process.pid, lambda within: ended(process, within), timeout, log)
                    timed_out = TimedOut(timeout)
            except BaseException:
                # Ctrl-C or an error in the orchestrator: never leave pytest running.
                reaper.kill_tree(process.pid)
                process.wait()
                raise
            # what is left in its group (the leader reaped already without a pidfd)
            kill_group(process.pid, leader_alive=process.returncode is None)
            code = process.wait()
        return timed_out or crash_reason(code)

    def close(self) -> None:
        pass


def new_process_group() -> dict:
    """Popen's arguments that start a process in a process group of its own."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def ended(process: subprocess.Popen, within: float) -> bool:
    """Wait up to `within` seconds for the process to end, without reaping it where
    Linux allows (a pidfd): until it is reaped its pid, so its group id, is not reused.
    Elsewhere (or on a kernel older than pidfds) it is reaped."""
    if hasattr(os, "pidfd_open") and process.returncode is None:
        try:
            pidfd = os.pidfd_open(process.pid)
        except ProcessLookupError:
            return True
        except OSError:           # ENOSYS: a kernel without pidfds
            pidfd = None
        if pidfd is not None:
            try:
                return bool(select.select([pidfd], [], [], max(within, 0))[0])
            finally:
                os.close(pidfd)
    try:
        process.wait(within)
        return True
    except subprocess.TimeoutExpired:
        return False


GRACE = 2.0   # seconds pytest gets to stop after SIGINT, then after SIGTERM


def stop(pid: int, ended, timeout: float, log: Path) -> None:
    """A run timed out: interrupt it (SIGINT to its group: pytest stops the test and
    writes where it was), then terminate it (SIGTERM), then kill its whole tree, giving
    each step GRACE seconds. `ended(within)` says whether the run has ended."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\norchestrator: {TimedOut(timeout)}; interrupting pytest\n")
    for sig in (signal.SIGINT, signal.SIGTERM):
        kill_group(pid, sig)
        if ended(GRACE):
            return
    reaper.kill_tree(pid)
    ended(10)


class Job:
    def __init__(self):
        self.pid: int | None = None
        self.status: int | None = None
        self.started, self.done = threading.Event(), threading.Event()

    def end(self) -> None:
        """It will never start or finish (the server is gone): nothing waits for it."""
        self.started.set()
        self.done.set()


class WarmLauncher:
    """Forks each run from one warm server process; safe to call from doit's threads."""

    def __init__(self, cwd: Path, env: dict[str, str], preload: list[str]):
        self.server = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.run.forkserver", *preload], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        requests, answers = self.server.stdin, self.server.stdout
        assert requests is not None and answers is not None      # both are PIPEs
        self.requests: IO[bytes] = requests       # the server's stdin: one job a line
        self.answers: IO[bytes] = answers         # its stdout: one JSON message a line
        self.jobs: dict[int, Job] = {}
        self.lock = threading.Lock()
        self.next_job = 0
        self.gone = False
        self.preloaded = threading.Event()
        self.reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self.reader.start()

    @staticmethod
    def available() -> bool:
        """fork, and pidfds the kernel supports (Linux 5.3+): elsewhere, run cold."""
        if not (hasattr(os, "fork") and hasattr(os, "pidfd_open")):
            return False
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError:
            return False
        return True

    def run(self, args: list[str], cwd: Path, env: dict[str, str], log: Path,
            timeout: float) -> Ending:
        if self.gone:   # the server could not start or died: say so, and run cold
            with open(log, "a", encoding="utf-8") as out:
                out.write("orchestrator: the warm pytest server is gone; starting pytest cold\n")
            return ColdLauncher().run(args, cwd, env, log, timeout)
        job = self._submit({"args": args, "cwd": str(cwd), "log": str(log),
                            "env": {**env, PARENT_ENV: str(self.server.pid)}})
        try:
            finished = job.done.wait(timeout)
        except BaseException:
            self._kill(job)
            raise
        if not finished:
            self._kill(job, timeout, log)
            return TimedOut(timeout)
        if job.status is None:
            return Crashed("the warm pytest server ended before this run did")
        return crash_reason(job.status)

    def _submit(self, request: dict) -> Job:
        job = Job()
        with self.lock:
            if self.gone:
                job.end()
                return job
            self.next_job += 1
            self.jobs[self.next_job] = job
            line = json.dumps({"job": self.next_job, **request}) + "\n"
            try:
                self.requests.write(line.encode())
                self.requests.flush()
            except (BrokenPipeError, OSError):
                job.end()
        return job

    def _read(self) -> None:
        for line in self.answers:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "preloaded" in message:
                self.preloaded.set()
            job = self.jobs.get(message.get("job"))
            if job is None:
                continue        # the ready or preloaded line
            if "pid" in message:
                job.pid = message["pid"]
                job.started.set()
            else:
                job.status = message["status"]
                job.done.set()
        with self.lock:         # the server is gone: nothing pending will ever finish
            self.gone = True
            for job in self.jobs.values():
                job.end()

    def _kill(self, job: Job, timeout: float | None = None, log: Path | None = None) -> None:
        """Kill the job's tree now, or, after a timeout (said in its log), step by step
        (`stop`). The server then sweeps what escaped (forkserver.py) and reports the end."""
        job.started.wait(10)
        if job.pid is not None:
            if timeout is None or log is None:
                reaper.kill_tree(job.pid)
            else:
                stop(job.pid, job.done.wait, timeout, log)
        job.done.wait(10)

    def close(self) -> None:
        """Closing stdin tells the server to kill what still runs and exit. A server that
        never got a job (a run that found every result cached) may still be importing,
        reading no stdin: it has forked nothing, and is killed."""
        try:
            self.requests.close()
        except OSError:
            pass
        if self.next_job == 0:
            self.server.kill()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.reader.join(10)
        self.answers.close()


# Windows ends a crashed process with an NTSTATUS code as its exit code
WINDOWS_CRASHES = {0xC0000005: "an access violation", 0xC00000FD: "a stack overflow",
                   0xC0000409: "a fail-fast exception (abort)",
                   0xC000013A: "Ctrl-C or Ctrl-Break", 0xC0000374: "heap corruption"}


def crash_reason(code: int) -> Crashed | None:
    """The crash an exit code tells of, or None (pytest ended by itself, tests failed or not)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return Crashed(f"pytest was killed by {name}")
    if code >= 0xC0000000:            # only Windows exit codes are that large
        what = WINDOWS_CRASHES.get(code, "an exception")
        return Crashed(f"pytest ended with {what} (0x{code:08X})")
    return None


def die_with(parent: int) -> None:
    """Ask Linux to kill this process (SIGKILL) when its parent dies, even by SIGKILL;
    the check covers a parent gone before we asked. Used by the pytest plugin (parent:
    the orchestrator or the warm server) and by the warm server's children. Elsewhere
    only the check is made: the cold wrapper watches its parent instead (reaper.py)."""
    reaper.prctl(reaper.PR_SET_PDEATHSIG, reaper.KILL)
    if parent and os.getppid() != parent:
        os._exit(70)


kill_group = reaper.kill_group
