"""Every student's laptop: `doit all` runs where Linux's extras are missing (macOS has no
pidfd, prctl or /proc; Windows has no fork, fcntl, process groups or Unix signals), and
still fails closed. On Linux each missing feature is taken away here, one at a time:
the fallback is what runs, not a branch nobody executes.

The same tests run on macOS and Windows in CI, where the fallbacks are simply the path.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.core import lock
from orchestrator.run import launch, reaper
from orchestrator.run.launch import ColdLauncher, WarmLauncher

from .conftest import build

REPO = Path(__file__).resolve().parents[2]
LINUX = sys.platform.startswith("linux")
POSIX = os.name == "posix"


# ---- importing the run's modules needs nothing POSIX-only -------------------------------

def test_the_run_imports_without_posix_only_modules():
    """Windows has no fcntl, resource, termios, pwd or grp: with each of them made
    unimportable, every module on the path of `doit all` still imports."""
    probe = ("import sys\n"
             "for name in ('fcntl', 'resource', 'termios', 'pwd', 'grp'):\n"
             "    sys.modules[name] = None\n"
             "import orchestrator.campaign.tasks, orchestrator.campaign.doit_run\n"
             "import orchestrator.run.runner, orchestrator.run.pytest_plugin\n"
             "import orchestrator.cli.main, orchestrator.run.launch\n"
             "import orchestrator.core.lock, orchestrator.run.reaper, orchestrator.run.observe\n"
             "print('imported')\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0 and out.stdout == "imported\n", out.stderr


# ---- the lock: flock, or msvcrt.locking on Windows ----------------------------------------

class FakeMsvcrt:
    """msvcrt.locking as Windows behaves (a failed non-blocking try raises OSError
    EDEADLOCK), over flock so that two fds of one process exclude each other here."""
    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = range(5)

    def __init__(self):
        self.calls: list[tuple[int, int]] = []      # (mode, offset locked)

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        import fcntl
        assert nbytes == 1
        self.calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR)))
        if mode == self.LK_UNLCK:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(errno.EDEADLK, "Resource deadlock avoided") from None


def test_the_lock_is_chosen_by_platform():
    assert isinstance(lock.locker("linux"), lock.Flock)
    assert isinstance(lock.locker("darwin"), lock.Flock)
    assert isinstance(lock.locker("win32"), lock.Msvcrt)


@pytest.fixture(params=["flock", "msvcrt"])
def platform(request, monkeypatch):
    """The lock's platform: this one's flock, or Windows's msvcrt (faked off Windows)."""
    if request.param == "flock":
        if sys.platform == "win32":
            pytest.skip("Windows has no flock")
        return sys.platform, None
    if sys.platform == "win32":
        return "win32", None
    if not POSIX:
        pytest.skip("the msvcrt stand-in is built on flock")
    fake = FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setattr(lock.Msvcrt, "POLL", 0.02)
    return "win32", fake


def test_the_lock_refuses_a_second_run_and_names_the_first(platform, tmp_path):
    name, fake = platform
    first, second = lock.RunLock(tmp_path, name), lock.RunLock(tmp_path, name)
    first.acquire(wait=False)
    try:
        with pytest.raises(lock.Busy, match=rf"another run is in progress \(pid {os.getpid()}, "):
            second.acquire(wait=False)
        assert second.fd is None
    finally:
        first.release()
    second.acquire(wait=False)        # free again
    second.release()
    if fake is not None:
        # the locked byte is far past the holder's text, which Windows must let others read
        offsets = {offset for _, offset in fake.calls}
        assert offsets == {lock.Msvcrt.OFFSET}
        assert (tmp_path / "lock").stat().st_size < lock.Msvcrt.OFFSET


def test_a_waiting_run_goes_on_when_the_first_ends(platform, tmp_path):
    name, _ = platform
    first, second = lock.RunLock(tmp_path, name), lock.RunLock(tmp_path, name)
    first.acquire(wait=False)
    said: list[str] = []
    waiting, released = threading.Event(), threading.Event()

    def release_once_the_second_waits():     # events, not a timer: a busy machine may
        waiting.wait(60)                       # take any time to get there
        released.set()
        first.release()

    releaser = threading.Thread(target=release_once_the_second_waits)
    releaser.start()
    try:
        second.acquire(wait=True, say=lambda line: (said.append(line), waiting.set()))
        assert released.is_set(), "the second run did not wait for the first"
        assert len(said) == 1 and said[0].endswith("waiting for it to finish")
        assert (tmp_path / "lock").read_text().startswith(f"pid {os.getpid()}, started ")
    finally:
        waiting.set()
        releaser.join()
        second.release()


# ---- the cold launcher without pidfds, without the reaper wrapper --------------------------

@pytest.fixture(params=["no pidfd", "no pidfd, no wrapper"])
def cold(request, monkeypatch):
    """The cold launcher as macOS runs it (no pidfd: the run is reaped to be waited for),
    and as Windows runs it (no reaper wrapper either: pytest alone, in a new group)."""
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    if request.param == "no pidfd, no wrapper":
        monkeypatch.setattr(reaper, "wrapper_available", lambda: False)
    elif not reaper.wrapper_available():
        pytest.skip("this platform has no reaper wrapper")
    assert not WarmLauncher.available(), "tasks.py would pick the warm launcher"
    return ColdLauncher()


def run_cold(launcher, project, tmp_path, body: str, timeout: float = 60):
    project.write("tests/01_numbers/test_probe.py", body)
    log = tmp_path / "probe.log"
    log.unlink(missing_ok=True)
    env = {**project.env(), "PYTHONPATH": str(REPO)}
    crash = launcher.run(["tests/01_numbers/test_probe.py", "-q", "-p", "no:cacheprovider"],
                         project.root, env, log, timeout)
    return crash, log.read_text(encoding="utf-8")


def test_cold_without_pidfd_passes(cold, project, tmp_path):
    crash, log = run_cold(cold, project, tmp_path, "def test_ok():\n    assert 1 + 1 == 2\n")
    assert crash is None and "1 passed" in log, log


def test_cold_without_pidfd_fails(cold, project, tmp_path):
    crash, log = run_cold(cold, project, tmp_path, "def test_bad():\n    assert 1 == 2\n")
    assert crash is None and "1 failed" in log, log


def test_cold_without_pidfd_reports_a_crash(cold, project, tmp_path):
    crash, log = run_cold(cold, project, tmp_path, (
        "import ctypes\n\n\ndef test_crashes():\n    ctypes.string_at(0)\n"))
    if sys.platform == "win32":
        assert crash == launch.Crashed("pytest ended with an access violation (0xC0000005)"), log
    else:          # macOS may say SIGBUS for the same bad read
        assert crash in (launch.Crashed("pytest was killed by SIGSEGV"),
                         launch.Crashed("pytest was killed by SIGBUS")), log


def test_cold_without_pidfd_times_out(cold, project, tmp_path, patience, monkeypatch):
    # pytest must be inside test_hangs when its time is up, and must have said where
    # before SIGTERM follows: both waits grow on a busy machine (conftest.py's patience)
    timeout = patience(3)
    monkeypatch.setattr(launch, "GRACE", patience(launch.GRACE))
    start = time.monotonic()
    crash, log = run_cold(cold, project, tmp_path, (
        "import time\n\n\ndef test_hangs():\n    time.sleep(600)\n"), timeout=timeout)
    assert crash == launch.TimedOut(timeout)
    assert time.monotonic() - start < timeout + 2 * launch.GRACE + patience(10)   # not 600
    assert f"orchestrator: timed out after {timeout}s; interrupting pytest" in log
    if POSIX:      # SIGINT: pytest says where it hung (Windows's Ctrl-Break just ends it)
        assert "test_probe.py:5: KeyboardInterrupt" in log, log


def test_the_parent_is_told_without_the_wrapper(monkeypatch, project, tmp_path):
    """Without the wrapper pytest's parent is the orchestrator itself, and the plugin
    is told so (it checks that its parent is still there)."""
    monkeypatch.setattr(reaper, "wrapper_available", lambda: False)
    crash, log = run_cold(ColdLauncher(), project, tmp_path, (
        "import os\n\n\ndef test_parent():\n"
        f"    assert os.environ['{launch.PARENT_ENV}'] == str(os.getppid()) == '{os.getpid()}'\n"))
    assert crash is None and "1 passed" in log, log


def test_the_warm_launcher_needs_fork_and_pidfds(monkeypatch):
    monkeypatch.delattr(os, "fork", raising=False)
    assert not WarmLauncher.available()
    monkeypatch.undo()
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    assert not WarmLauncher.available()


def test_crash_reasons_of_every_platform():
    assert launch.crash_reason(0) is launch.crash_reason(1) is None
    assert str(launch.crash_reason(-6)) == "crashed: pytest was killed by SIGABRT"
    assert str(launch.crash_reason(-99)) == "crashed: pytest was killed by signal 99"
    assert str(launch.crash_reason(0xC00000FD)) == \
        "crashed: pytest ended with a stack overflow (0xC00000FD)"
    assert launch.crash_reason(0xC0000123) == \
        launch.Crashed("pytest ended with an exception (0xC0000123)")


# ---- reaper.py without prctl, /proc or ps -----------------------------------------------

@pytest.fixture
def no_proc(monkeypatch, tmp_path):
    """A POSIX system that is not Linux: no prctl, no /proc (ps remains)."""
    if not POSIX:
        pytest.skip("POSIX fallbacks")
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(reaper, "PROC", str(tmp_path / "no-proc"))


def test_no_prctl_means_no_subreaper_and_no_death_signal(no_proc):
    assert reaper.prctl(reaper.PR_SET_PDEATHSIG, reaper.KILL) is False
    assert reaper.become_subreaper() is False
    launch.die_with(os.getppid())          # only the check, which passes: still here


def test_without_proc_the_process_table_comes_from_ps(no_proc):
    table = reaper.table()
    assert table[os.getpid()][0] == os.getppid()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in reaper.descendants(os.getpid())
        described = reaper.describe(child.pid)
        assert described.startswith(f"{child.pid} ")
        assert described.endswith(" -c import time; time.sleep(60)"), described
    finally:
        child.kill()
        child.wait()


def test_without_proc_or_ps_every_function_returns_nothing(no_proc, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert reaper.table() == {} and reaper.parents() == {}
    assert reaper.descendants(os.getpid()) == []
    assert reaper.sweep(within=0.1) == []
    assert reaper.describe(os.getpid()) == f"{os.getpid()} ?"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    reaper.kill_tree(child.pid)             # still kills what it can name: the pid, its group
    assert child.wait(10) == -reaper.KILL


SWEEP_WITH_PS = """\
import json, os, subprocess, sys
from orchestrator.run import reaper
reaper.PROC = "/nonexistent"
sleeper = subprocess.Popen(["sleep", "1000"])
killed = reaper.sweep()
try:
    os.kill(sleeper.pid, 0)
    gone = False
except ProcessLookupError:           # killed, and reaped by the sweep
    gone = True
print(json.dumps({"sleeper": sleeper.pid, "killed": killed, "gone": gone}))
"""


@pytest.mark.skipif(not POSIX, reason="ps and Unix signals")
def test_a_sweep_without_proc_finds_and_kills_through_ps():
    out = subprocess.run([sys.executable, "-c", SWEEP_WITH_PS], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["killed"] == [f"{seen['sleeper']} sleep 1000"]
    assert seen["gone"]


# the wrapper where the kernel sends no death signal: it watches its parent instead
WRAPPER_WITHOUT_PRCTL = """\
import sys
sys.path.insert(0, sys.argv.pop(1))
import reaper
reaper.prctl = lambda option, value: False
reaper.PARENT_POLL = 0.1
sys.exit(reaper.main(sys.argv[1:]))
"""

STAND_IN = """\
import os, subprocess, sys, time
wrapper, folder, pidfile = sys.argv[1:]
subprocess.Popen([sys.executable, "-I", "-S", "-c", wrapper, folder, "--die-with",
                  str(os.getpid()), "--", "sh", "-c", f"echo $$ > '{pidfile}'; exec sleep 1000"],
                 start_new_session=True)
time.sleep(600)
"""


@pytest.mark.skipif(not POSIX, reason="the wrapper is POSIX's")
def test_the_wrapper_without_prctl_dies_with_its_parent(tmp_path):
    pidfile = tmp_path / "sleep.pid"
    stand_in = subprocess.Popen([sys.executable, "-c", STAND_IN, WRAPPER_WITHOUT_PRCTL,
                                 str(Path(reaper.__file__).parent), str(pidfile)])
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "the wrapper never started its command"
            time.sleep(0.05)
        sleeper = int(pidfile.read_text())
        assert alive(sleeper)
    finally:
        stand_in.kill()
        stand_in.wait()
    deadline = time.monotonic() + 10
    while alive(sleeper):
        assert time.monotonic() < deadline, "the command outlived the wrapper's parent"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Running (a zombie is dead, only not yet reaped)."""
    state = reaper.table().get(pid, (0, ""))[1]
    return state not in ("", "Z", "X")


# ---- a real run under a path with spaces and non-ASCII letters --------------------------

PROBE = """\
import json, os


def test_who_started_me():
    cmdline = ""
    if os.path.exists(f"/proc/{{os.getppid()}}/cmdline"):
        with open(f"/proc/{{os.getppid()}}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\\0", b" ").decode(errors="replace")
    with open({out!r}, "w", encoding="utf-8") as f:
        json.dump({{"parent": cmdline}}, f)
"""

WITHOUT_PIDFD = ("import os, runpy, sys\n"
                 "if hasattr(os, 'pidfd_open'):\n    del os.pidfd_open\n"
                 "sys.argv = ['doit', *sys.argv[1:]]\n"
                 "runpy.run_module('doit', run_name='__main__', alter_sys=True)\n")


def test_doit_all_in_a_folder_with_spaces_and_non_ascii_letters(tmp_path):
    """`my course/ü 1`: a first run where the warm launcher is unavailable (tasks.py
    falls back to cold), an edit run warm, then a run that executes nothing."""
    project = build(tmp_path / "my course" / "ü 1")
    probe = tmp_path / "probe.json"
    project.write("tests/01_numbers/test_probe.py", PROBE.format(out=str(probe)))
    first = subprocess.run([sys.executable, "-c", WITHOUT_PIDFD, "all"], cwd=project.root,
                           env=project.env(), capture_output=True, text=True, timeout=300,
                           encoding="utf-8")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Executed 4 out of 4 test targets: 4 passed" in first.stdout, first.stdout
    if LINUX:     # started cold, below the reaper wrapper: not forked from a warm server
        assert "reaper.py" in json.loads(probe.read_text(encoding="utf-8"))["parent"]

    project.append(project.test_file("04_power"),
                   "\n\ndef test_power_zero():\n    assert power(5, 0) == 1.0\n")
    second = project.doit("all")
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.executed == {"04_power"}, second.stdout

    third = project.doit("all")
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.summary.startswith("Executed 0 out of 4 test targets"), third.stdout
    assert (project.root / "minicalc" / "power.py").exists()
