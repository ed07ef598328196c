"""Nothing a run started outlives it (reaper.py): under both launchers, a process a test
left running, in its process group or escaped from it (setsid after a double fork), is
killed when the run ends, pass, crash or timeout, and named in the run's log. A
timeout interrupts first, so the log says where the test hung.

Real processes throughout: each test writes the pids it started to a file, and we
look for them in /proc after run() returned.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.run import launch, reaper

from .processes import alive, gone, wait_for_pids

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="child subreapers and /proc are Linux's")

# Written into a test of the throwaway project: start `sleep 1000` (in the test's
# process group) and `sleep 1001` in a session of its own whose parent has exited (a
# daemon's double fork), and write both pids to PIDFILE.
LEAVE_TWO_SLEEPERS = """\
import os, subprocess, sys


def leave_two_sleepers():
    plain = subprocess.Popen(["sleep", "1000"])
    daemon = subprocess.run(
        [sys.executable, "-c", "import os, subprocess; os.setsid(); "
         "print(subprocess.Popen(['sleep', '1001'], stdout=subprocess.DEVNULL,"
         " stderr=subprocess.DEVNULL).pid)"],
        capture_output=True, text=True, check=True).stdout.strip()
    with open(PIDFILE, "w") as f:
        f.write(f"{plain.pid} {daemon}")

"""




def run_test(launcher, project, tmp_path, body: str, timeout: float = 30):
    """Run `body` (with LEAVE_TWO_SLEEPERS and PIDFILE defined) as the project's only
    test file; (how pytest ended: None or a launch.Ending, log, the sleepers' pids)."""
    pidfile = tmp_path / "sleepers.pid"
    project.write("tests/01_numbers/test_probe.py",
                  f"PIDFILE = {str(pidfile)!r}\n" + LEAVE_TWO_SLEEPERS + body)
    log = tmp_path / "probe.log"
    env = {**project.env(), "PYTHONPATH": str(REPO)}
    crash = launcher.run(["tests/01_numbers/test_probe.py", "-q", "-p", "no:cacheprovider"],
                         project.root, env, log, timeout)
    pids = [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []
    return crash, log.read_text(encoding="utf-8"), pids


def test_a_passing_run_leaves_no_process(launcher, project, tmp_path):
    crash, log, pids = run_test(launcher, project, tmp_path, (
        "def test_passes():\n    leave_two_sleepers()\n"))
    assert crash is None and "1 passed" in log
    assert len(pids) == 2 and not any(map(alive, pids)), log
    plain, daemon = pids
    assert "orchestrator: killed 2 processes left running by the tests:" in log
    assert f"    {plain} sleep 1000\n" in log and f"    {daemon} sleep 1001\n" in log


def test_a_failing_run_leaves_no_process(launcher, project, tmp_path):
    crash, log, pids = run_test(launcher, project, tmp_path, (
        "def test_fails():\n    leave_two_sleepers()\n    assert 1 == 2\n"))
    assert crash is None and "1 failed" in log
    assert len(pids) == 2 and not any(map(alive, pids)), log


def test_a_crashed_run_leaves_no_process(launcher, project, tmp_path):
    """pytest itself dies: what it left is adopted by the warm server, or by the cold
    launcher's wrapper, and killed there."""
    crash, log, pids = run_test(launcher, project, tmp_path, (
        "import signal\n\n\ndef test_crashes():\n    leave_two_sleepers()\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"))
    assert crash == launch.Crashed("pytest was killed by SIGSEGV")
    assert str(crash) == "crashed: pytest was killed by SIGSEGV"
    assert len(pids) == 2 and not any(map(alive, pids)), log
    assert "orchestrator: killed 2 processes left running by the tests:" in log


def test_a_timeout_interrupts_so_the_log_names_the_hanging_test(launcher, project, tmp_path,
                                                               patience, monkeypatch):
    # pytest must be inside test_hangs when its time is up, and must have said where
    # before SIGTERM follows: both waits grow on a busy machine (conftest.py's patience)
    timeout = patience(3)
    monkeypatch.setattr(launch, "GRACE", patience(launch.GRACE))
    start = time.monotonic()
    crash, log, pids = run_test(launcher, project, tmp_path, (
        "import time\n\n\ndef test_quick():\n    pass\n\n\n"
        "def test_hangs():\n    leave_two_sleepers()\n    time.sleep(600)\n"), timeout=timeout)
    assert crash == launch.TimedOut(timeout) and str(crash) == f"timed out after {timeout}s"
    assert time.monotonic() - start < timeout + launch.GRACE + patience(5)   # SIGINT was enough
    assert f"orchestrator: timed out after {timeout}s; interrupting pytest" in log
    source = project.read("tests/01_numbers/test_probe.py").splitlines()
    hang_line = source.index("    time.sleep(600)") + 1
    assert f"test_probe.py:{hang_line}: KeyboardInterrupt" in log, log
    assert len(pids) == 2 and not any(map(alive, pids)), log


def test_a_timeout_escalates_to_sigterm_then_sigkill(launcher, project, tmp_path, monkeypatch,
                                                     patience):
    """A test deaf to SIGINT and SIGTERM: the whole tree is killed (SIGKILL), the
    escaped daemon too."""
    monkeypatch.setattr(launch, "GRACE", 0.5)
    timeout = patience(2)           # test_deaf must have started its sleepers by then
    start = time.monotonic()
    crash, log, pids = run_test(launcher, project, tmp_path, (
        "import signal, time\n\n\ndef test_deaf():\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    leave_two_sleepers()\n    time.sleep(600)\n"), timeout=timeout)
    assert crash == launch.TimedOut(timeout)
    assert time.monotonic() - start < timeout + patience(13)                # not 600
    assert len(pids) == 2 and gone(pids, within=patience(10)), log


def test_a_crash_beside_a_running_child_keeps_that_childs_status(warm_server, project,
                                                                   tmp_path):
    """The server kills a crashed child's orphans while another child runs: it must not
    touch that one, nor take its exit status."""
    slow_project = project.root.parent / "slow"
    shutil.copytree(project.root, slow_project)
    slow_log = tmp_path / "slow.log"
    # the slow test's child runs until the crash is over: events, not a guess in seconds
    started, crash_over = tmp_path / "slow.started", tmp_path / "crash.over"
    (slow_project / "tests/01_numbers/test_slow.py").write_text(
        "import subprocess\n\n\ndef test_slow():\n"
        "    child = subprocess.Popen(['sh', '-c', 'while [ ! -e \"$0\" ]; do sleep 0.05; done',\n"
        f"                              {str(crash_over)!r}])\n"
        f"    open({str(started)!r}, 'w').write(str(child.pid))\n"
        "    assert child.wait() == 0\n")
    outcome = {}
    slow = threading.Thread(target=lambda: outcome.update(crash=warm_server.run(
        ["tests/01_numbers/test_slow.py", "-q", "-p", "no:cacheprovider"], slow_project,
        {**project.env(), "PYTHONPATH": str(REPO)}, slow_log, 600)))
    slow.start()
    try:
        wait_for_pids(started, count=1)
        crash, log, pids = run_test(warm_server, project, tmp_path, (
            "import signal\n\n\ndef test_crashes():\n    leave_two_sleepers()\n"
            "    os.kill(os.getpid(), signal.SIGSEGV)\n"))
    finally:
        crash_over.touch()
        slow.join(60)
    assert crash == launch.Crashed("pytest was killed by SIGSEGV")
    assert not any(map(alive, pids))
    assert outcome["crash"] is None, slow_log.read_text()
    assert "1 passed" in slow_log.read_text()


STAND_IN = """\
import os, sys
from pathlib import Path
from orchestrator.run.launch import ColdLauncher, WarmLauncher

kind, root, log = sys.argv[1:]
launcher = ColdLauncher() if kind == "cold" else WarmLauncher(Path(root), dict(os.environ), [])
launcher.run(["tests/01_numbers/test_probe.py", "-q"], Path(root), dict(os.environ),
             Path(log), 60)
"""


@pytest.mark.parametrize("kind", ["cold", "warm"])
def test_the_orchestrator_killed_takes_the_run_with_it(kind, project, tmp_path):
    """doit killed by SIGKILL mid-run: its pytest run, and what that run started, go too."""
    pidfile = tmp_path / "sleepers.pid"
    project.write("tests/01_numbers/test_probe.py", (
        f"PIDFILE = {str(pidfile)!r}\n" + LEAVE_TWO_SLEEPERS +
        "import time\n\n\ndef test_hangs():\n    leave_two_sleepers()\n    time.sleep(600)\n"))
    env = {**project.env(), "PYTHONPATH": str(REPO)}
    stand_in = subprocess.Popen([sys.executable, "-c", STAND_IN, kind, str(project.root),
                                 str(tmp_path / "probe.log")], env=env)
    try:
        pids = wait_for_pids(pidfile, count=2)
    finally:
        stand_in.kill()
        stand_in.wait()
    assert gone(pids), (tmp_path / "probe.log").read_text()


# ---- reaper.py itself, in a process of its own (a sweep kills all below the sweeper)

SWEEPER = """\
import json, os, subprocess, sys
from orchestrator.run import reaper

assert reaper.become_subreaper()
plain = subprocess.Popen(["sleep", "1000"])
daemon = int(subprocess.run(
    [sys.executable, "-c", "import os, subprocess; os.setsid(); "
     "print(subprocess.Popen(['sleep', '1001'], stdout=subprocess.DEVNULL,"
     " stderr=subprocess.DEVNULL).pid)"],
    capture_output=True, text=True, check=True).stdout)
spared = subprocess.Popen(["sh", "-c", "sleep 1002 >/dev/null & echo started; wait"],
                          stdout=subprocess.PIPE, text=True)
assert spared.stdout.readline() == "started\\n"   # its sleep 1002 is forked: no race with it
adopted = reaper.descendants(os.getpid())
killed = reaper.sweep(exclude={spared.pid})
after = reaper.descendants(os.getpid())
spared.kill()
spared_status = spared.wait()
reaper.sweep()                                    # its sleep 1002
print(json.dumps({"plain": plain.pid, "daemon": daemon, "spared": spared.pid,
                  "adopted": adopted, "killed": killed, "after": after,
                  "spared_status": spared_status}))
"""


def test_sweep_kills_and_names_what_ran_below_a_subreaper():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", SWEEPER], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    plain, daemon, spared = seen["plain"], seen["daemon"], seen["spared"]
    assert {plain, daemon, spared} <= set(seen["adopted"])    # the daemon was adopted
    assert sorted(seen["killed"]) == sorted([f"{plain} sleep 1000", f"{daemon} sleep 1001"])
    assert not alive(plain) and not alive(daemon)
    assert seen["after"][0] == spared and len(seen["after"]) == 2   # sh and its sleep 1002
    # the excluded child was neither killed nor reaped by the sweep: its status was ours
    assert seen["spared_status"] == -signal.SIGKILL


def test_the_wrapper_ends_as_its_command_did(tmp_path):
    wrapper = [sys.executable, "-I", "-S", reaper.__file__, "--"]
    assert subprocess.run([*wrapper, "sh", "-c", "exit 3"]).returncode == 3
    assert subprocess.run([*wrapper, "sh", "-c", "kill -TERM $$"]).returncode == -signal.SIGTERM
    # Popen returns once the child has exec'd, so the leftover is named `sleep 1000` (a
    # shell's `&` child can still be `sh -c ...` when a busy machine lets the shell exit)
    leave = "import subprocess; print(subprocess.Popen(['sleep', '1000']).pid)"
    out = subprocess.run([*wrapper, sys.executable, "-c", leave], capture_output=True,
                         text=True, timeout=30)
    pid = int(out.stdout)
    assert out.returncode == 0 and not alive(pid)
    assert out.stderr == ("orchestrator: killed 1 process left running by the tests:\n"
                          f"    {pid} sleep 1000\n")


CHILDREN_PROBE = """
import json, os, subprocess, time
from orchestrator.run import reaper
alone = reaper._children_within(frozenset())
sleeper = subprocess.Popen(["sleep", "1000"])
with_child = reaper._children_within(frozenset())
excluded = reaper._children_within(frozenset({sleeper.pid}))
quick = subprocess.Popen(["true"])
while open(f"/proc/{quick.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
    time.sleep(0.01)                  # ended, not yet reaped: a zombie is still a child
zombie = reaper._children_within(frozenset({sleeper.pid}))
killed = reaper.sweep()
after = reaper._children_within(frozenset())
print(json.dumps({"alone": alone, "with_child": with_child, "excluded": excluded,
                  "zombie": zombie, "killed": killed, "after": after}))
"""


def test_a_sweep_with_no_child_outside_its_exclusions_reads_no_process_table():
    """The common end of a run (nothing left below it) is told from the process's own
    children, not from a read of every process: and a running or zombie child still
    sends the sweep to the table."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILDREN_PROBE], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert (seen["alone"], seen["with_child"], seen["excluded"], seen["zombie"]) == \
        (True, False, True, False)
    assert len(seen["killed"]) == 1 and seen["killed"][0].endswith(" sleep 1000")
    assert seen["after"] is True
