"""The user's loop: short task names, failures you can act on, BLOCKED as soon as it is
known, FLAKY that survives caching."""
from __future__ import annotations

import re
import shlex
import subprocess


def test_short_task_names_resolve_when_unambiguous(project):
    run = project.doit("test:2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.statuses == {"01_numbers": "PASSED", "02_add": "PASSED"}
    run = project.doit("test:mul")
    assert run.statuses == {"01_numbers": "(cached) PASSED", "03_mul": "PASSED"}
    unknown = project.doit("test:99")
    assert unknown.returncode == 3
    assert unknown.stderr.strip().startswith("ERROR: unknown task 'test:99'")


def test_a_failure_prints_a_rerun_command_that_fails_the_same_test(project):
    project.append(project.test_file("02_add"),
                   "\n\ndef test_broken():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n")
    run = project.doit("test:02_add")
    rerun = re.search(r"^      rerun: (.*)$", run.stdout, re.M).group(1)
    assert "tests/02_add/test_add_core.py::test_broken" in rerun
    assert rerun.startswith(f"cd {shlex.quote(str(project.root))} && ")   # from any folder
    pasted = subprocess.run(["bash", "-c", rerun], cwd=project.root / "tests",
                            env=project.env(), capture_output=True, text=True)
    assert pasted.returncode == 1
    assert "1 failed" in pasted.stdout and "arithmetic is broken" in pasted.stdout
    assert "passed" not in pasted.stdout.splitlines()[-1]      # exactly that one test


def test_blocked_is_reported_the_moment_its_cause_fails(project):
    project.append(project.test_file("01_numbers"), "\n\ndef test_broken():\n    assert 0\n")
    project.write("tests/03_mul/test_slow.py", "import time\n\n\ndef test_slow():\n"
                                               "    time.sleep(0)\n")
    run = project.doit("-n", "1", "all")
    lines = run.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("FAILED 01_numbers"))
    blocked = [i for i, line in enumerate(lines) if line.startswith("BLOCKED")]
    assert len(blocked) == 3
    assert all(i > failed for i in blocked)
    # right after the failure's own lines, not at the end of the run
    assert blocked[0] == next(i for i, line in enumerate(lines)
                              if i > failed and not line.startswith(" "))
    assert "BLOCKED 04_power (by 01_numbers)" in run.stdout


def test_flaky_survives_caching(project):
    # outside the project: a file the test writes into the tree is an input (tree.py), and
    # a fresh run would then pass outright, so the FLAKY verdict could not be reused
    marker = project.root.parent / "first.try"
    project.append(project.test_file("02_add"),
                   "\n\ndef test_sometimes():\n    import pathlib\n"
                   f"    marker = pathlib.Path({str(marker)!r})\n"
                   "    if not marker.exists():\n        marker.write_text('x')\n"
                   "        assert False, 'first try fails'\n")
    first = project.doit("test:02_add", "flaky_attempts=2")
    assert "FLAKY 02_add" in first.stdout, first.stdout
    again = project.doit("test:02_add", "flaky_attempts=2")
    assert "(cached) FLAKY 02_add (1 of 2 tests passed only on a retry)" in again.stdout


def run_in_pty(project, *args: str, env: dict | None = None) -> str:
    """doit on a real pseudo-terminal; everything it drew, escape codes included."""
    import os
    import pty
    import select
    import sys
    pid, fd = pty.fork()
    if pid == 0:   # the child: doit, its output on the pty
        os.chdir(project.root)
        environment = {**project.env(), "COLUMNS": "120", "TERM": "xterm", **(env or {})}
        for name in ("NO_COLOR", "FORCE_COLOR"):
            if name not in (env or {}):
                environment.pop(name, None)
        os.execve(sys.executable, [sys.executable, "-m", "doit", *args], environment)
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:        # the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="replace")


def colours(screen: str) -> set[str]:
    """The foreground colours set by escape codes (SGR 30-37, 38;..., 90-97)."""
    found = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen):
        parts = params.split(";")
        found |= {p for p in parts if p.isdigit() and (30 <= int(p) <= 38 or 90 <= int(p) <= 97)}
    return found


SLOW = "import time\n\n\ndef test_slow():\n    time.sleep(1.5)\n"


def test_a_terminal_gets_a_live_status_line_and_colour(project):
    project.write("tests/03_mul/test_slow.py", SLOW)
    screen = run_in_pty(project, "-n", "2", "all")
    assert re.search(r"\[\d/4 done\] .*running [^\n]*03_mul \d+\.\ds", screen), screen
    assert colours(screen)
    assert "RUNNING" not in screen
    assert "Executed 4 out of 4 test targets" in screen


def test_no_color_turns_colour_off_on_a_terminal(project):
    screen = run_in_pty(project, "all", env={"NO_COLOR": "1"})
    assert "Executed 4 out of 4" in screen
    assert not colours(screen), repr(screen[:400])


def test_piped_output_has_running_lines_and_no_escape_codes(project):
    project.write("tests/03_mul/test_slow.py", SLOW)
    run = project.doit("-n", "2", "all")
    assert "RUNNING 03_mul" in run.stdout
    assert "\x1b" not in run.stdout
    assert run.stdout.index("RUNNING 03_mul") < run.stdout.index("PASSED 03_mul")
