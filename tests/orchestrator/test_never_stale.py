"""Never a stale pass, never a false summary: each test is a row of what users saw.

Every scenario compares the orchestrator with what plain pytest would say after the
same change, on the throwaway minicalc curriculum.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.cache.store import Store

from .conftest import REPO

ALL = {"01_numbers", "02_add", "03_mul", "04_power"}



def plain_pytest(project, module_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", f"tests/{module_id}"],
                          cwd=project.root, env=project.env(), capture_output=True, text=True)


def test_undeclared_data_file_read_by_a_test_is_an_input(warm):
    warm.write("data/probe/value.txt", "6\n")
    warm.append(warm.test_file("03_mul"),
                "\n\ndef test_probe():\n"
                "    assert open('data/probe/value.txt').read().strip() == '6'\n")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    warm.write("data/probe/value.txt", "7\n")
    assert plain_pytest(warm, "03_mul").returncode == 1
    run = warm.doit("all")
    assert run.statuses["03_mul"] == "FAILED", run.stdout
    assert "why" not in run.stderr
    why = warm.orchestrator("why", "test:03_mul")
    assert "its last run failed" in why.stdout


def test_helper_outside_the_tests_dir_is_an_input(warm):
    warm.write("tests/fixtures/__init__.py", "")
    warm.write("tests/fixtures/answers.py", "SIX = 6\n")
    warm.append(warm.test_file("03_mul"),
                "\n\ndef test_answer():\n    import sys, pathlib\n"
                "    sys.path.insert(0, str(pathlib.Path(__file__).parents[2]))\n"
                "    from tests.fixtures.answers import SIX\n"
                "    assert SIX == 6\n")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    why = warm.orchestrator("why", "test:03_mul")
    assert "will reuse" in why.stdout
    warm.write("tests/fixtures/answers.py", "SIX = 7\n")
    why = warm.orchestrator("why", "test:03_mul")
    assert "file:tests/fixtures/answers.py" in why.stdout, why.stdout
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


def test_what_a_python_subprocess_reads_is_an_input(warm):
    warm.write("data/probe/value.txt", "6\n")
    warm.append(warm.test_file("03_mul"),
                "\n\ndef test_cli():\n    import subprocess, sys\n"
                "    out = subprocess.run([sys.executable, '-c', "
                "'print(open(\"data/probe/value.txt\").read().strip())'],\n"
                "                         capture_output=True, text=True, check=True).stdout\n"
                "    assert out.strip() == '6'\n")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    assert warm.doit("all").statuses["03_mul"] == "(cached) PASSED"
    warm.write("data/probe/value.txt", "7\n")
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


def test_a_new_pytest_ini_re_runs_everything(warm):
    warm.write("pytest.ini", "[pytest]\naddopts = -p orchestrator.run.pytest_plugin\n")
    run = warm.doit("all")
    assert run.executed == ALL, run.stdout


def test_an_optional_library_installed_later_changes_the_key(warm, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    warm.append(warm.test_file("01_numbers"),
                "\n\ndef test_oracle():\n    import pytest\n"
                "    fancy = pytest.importorskip('fancylib_for_orchestrator_tests')\n"
                "    assert fancy.VALUE == 1\n")
    env = {**warm.env(), "PYTHONPATH": f"{REPO}{os.pathsep}{site}"}
    command = [sys.executable, "-m", "doit", "all"]
    first = subprocess.run(command, cwd=warm.root, env=env, capture_output=True, text=True)
    assert "PASSED 01_numbers (2 tests: 1 passed, 1 skipped)" in first.stdout, \
        first.stdout + first.stderr
    (site / "fancylib_for_orchestrator_tests.py").write_text("VALUE = 2\n")
    second = subprocess.run(command, cwd=warm.root, env=env, capture_output=True, text=True)
    assert "FAILED 01_numbers" in second.stdout, second.stdout


def test_a_module_imported_from_outside_the_project_is_an_input(warm, tmp_path):
    site = tmp_path / "helpers"
    site.mkdir()
    (site / "outside_answers.py").write_text("SIX = 6\n")
    warm.site = site                  # on the PYTHONPATH of every command
    warm.append(warm.test_file("03_mul"),
                "\n\ndef test_outside():\n    from outside_answers import SIX\n"
                "    assert SIX == 6\n")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    assert warm.doit("all").statuses["03_mul"] == "(cached) PASSED"
    (site / "outside_answers.py").write_text("SIX = 7\n")
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


def test_narrowed_run_counts_only_what_it_selected(warm):
    # a second test for `-k other` to select: the run selects 1 of the module's 2
    warm.append(warm.test_file("01_numbers"), "\n\ndef test_other():\n    assert True\n")
    run = warm.doit("test:01_numbers", "pytest=-k other")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED 01_numbers (1 of 2 selected)" in run.stdout
    full = warm.doit("test:01_numbers")
    assert full.statuses["01_numbers"] == "PASSED"   # a narrowed pass never satisfies a full run
    assert "PASSED 01_numbers (2 tests)" in full.stdout


def test_switching_arguments_back_and_forth_hits_both_ways(warm):
    assert warm.doit("test:01_numbers", "pytest=-k number").statuses["01_numbers"] == "PASSED"
    assert warm.doit("test:01_numbers").statuses["01_numbers"] == "(cached) PASSED"
    assert warm.doit("test:01_numbers", "pytest=-k number").statuses["01_numbers"] == \
        "(cached) PASSED"


@pytest.mark.parametrize("field, value", [("duration", None), ("counts", "many"),
                                          ("status", "great")])
def test_a_wrong_typed_result_is_set_aside_with_one_line(warm, field, value):
    path = next(warm.state.results("03_mul").glob("*.json"))
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    listing = warm.doit("list")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    run = warm.doit("all")
    assert "Traceback" not in run.stderr
    assert run.statuses["03_mul"] == "PASSED"
    assert sum("set aside" in line for line in run.stderr.splitlines()) == 1, run.stderr


@pytest.mark.skipif(sys.platform != "linux",
                    reason="escaped processes are found through a Linux subreaper")
@pytest.mark.parametrize("launcher", ["warm", "cold"])
def test_processes_left_by_passing_tests_are_killed_and_reported(project, launcher):
    pids = project.root / "pids.txt"
    project.append(project.test_file("03_mul"),
                   "\n\ndef test_leaves_processes():\n    import os, subprocess\n"
                   "    plain = subprocess.Popen(['sleep', '1000'])\n"
                   "    escaped = subprocess.Popen(['setsid', 'sleep', '1001'])\n"
                   f"    open({str(pids)!r}, 'w').write(f'{{plain.pid}} {{escaped.pid}}')\n")
    run = project.doit("test:03_mul", f"launcher={launcher}")
    assert run.returncode == 0, run.stdout + run.stderr
    line = next(text for text in run.stdout.splitlines() if text.startswith("PASSED 03_mul"))
    assert line.endswith("; killed 2 processes left running by the tests"), line
    for pid in map(int, pids.read_text().split()):
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT to send on Windows")
def test_ctrl_c_is_reported_as_an_interruption(project):
    project.append(project.test_file("03_mul"),
                   "\n\ndef test_slow():\n    import time\n    time.sleep(30)\n")
    doit = project.start("-n", "2", "all")
    deadline = time.time() + 60
    results = project.state.log("03_mul")
    while not results.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)
    doit.send_signal(signal.SIGINT)
    out, _ = doit.communicate(timeout=60)
    assert doit.returncode == 130, out
    assert "every requested target passed" not in out
    assert "INTERRUPTED after" in out and "finished results kept" in out, out
    status = project.orchestrator("status").stdout
    assert "crashed" not in json.dumps(status)
    row = next(line for line in status.splitlines() if line.startswith("03_mul"))
    assert "never run" in row, status


def test_collection_error_names_its_cause_first(warm):
    warm.write("tests/03_mul/test_more.py",
               "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(12)))
    warm.write("tests/03_mul/test_zz_broken.py",
               "import no_such_module_xyz\n\n\ndef test_a():\n    pass\n")
    run = warm.doit("test:03_mul")
    assert "FAILED 03_mul: ModuleNotFoundError: No module named 'no_such_module_xyz' while " \
           "collecting tests/03_mul/test_zz_broken.py" in run.stdout, run.stdout
    lines = [line for line in run.stdout.splitlines()
             if "03_mul" in line or line.startswith("    ")]
    failed = next(i for i, line in enumerate(lines) if line.startswith("FAILED 03_mul"))
    assert "No module named 'no_such_module_xyz'" in lines[failed] + lines[failed + 1], run.stdout
    assert "not run" not in run.stdout


def test_bad_pytest_arguments_are_bad_input(warm):
    run = warm.doit("all", "pytest=--bogus-flag")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "bad pytest arguments" in run.stdout + run.stderr
    assert "unrecognized arguments: --bogus-flag" in run.stdout + run.stderr
    assert warm.doit("all").statuses == {m: "(cached) PASSED" for m in ALL}


@pytest.mark.skipif(sys.platform == "win32", reason="uses bash and head")
def test_a_closed_pipe_ends_quietly(warm):
    command = f"{sys.executable} -m doit all | head -1"
    done = subprocess.run(["bash", "-c", command], cwd=warm.root, env=warm.env(),
                          capture_output=True, text=True)
    assert done.stderr == "", done.stderr


def test_an_unwritable_state_dir_is_one_line(project):
    project.state.path.write_text("not a directory\n")
    run = project.doit("all")
    assert run.returncode == 3
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert ".orchestrator" in run.stderr


@pytest.fixture
def full_disk(project):
    """The project's state dir on a tiny tmpfs, filled to the last byte (root only)."""
    state = project.state.path
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        fd = os.open(state / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        yield project
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def test_a_full_disk_is_one_line_and_exit_3(full_disk):
    run = full_disk.doit("all")
    assert run.returncode == 3, run.stdout + run.stderr
    assert run.stderr.strip() == (f"ERROR: cannot write the state dir "
                                  f"{full_disk.state.path}: the disk is full")
    assert "every requested target passed" not in run.stdout


def test_a_store_that_fails_mid_run_is_bad_input_not_a_pass(warm):
    warm.append(warm.test_file("03_mul"), "\n# edited\n")
    results = warm.state.results("03_mul")
    for path in results.iterdir():
        path.unlink()
    results.rmdir()
    results.write_text("a file where the results folder should be\n")
    run = warm.doit("all")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "cannot write the state dir" in run.stdout and "a file is in the way" in run.stdout
    assert "every requested target passed" not in run.stdout
    assert "Traceback" not in run.stderr


def test_a_hand_written_file_inside_the_package_is_an_input(warm):
    """The package folder holds the generated exports and stub __init__ files (keyed by
    `export:` entries, or the same everywhere) and may hold the course's own code."""
    warm.write("minicalc/helpers.py", "SIX = 6\n")
    warm.append(warm.test_file("03_mul"),
                "\n\ndef test_helper():\n    from minicalc.helpers import SIX\n"
                "    assert SIX == 6\n")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    assert "file:minicalc/helpers.py" in Store(warm.root).latest("03_mul").inputs
    warm.write("minicalc/helpers.py", "SIX = 7\n")
    assert plain_pytest(warm, "03_mul").returncode == 1
    run = warm.doit("all")
    assert run.statuses["03_mul"] == "FAILED", run.stdout
    # back as it was: the first run's result again. A generated stub __init__.py, and the
    # package folder's listing (it grows as other modules export), are no one's inputs
    warm.write("minicalc/helpers.py", "SIX = 6\n")
    assert warm.doit("all").statuses["03_mul"] == "(cached) PASSED"
    assert not [n for n in Store(warm.root).latest("03_mul").inputs
                if n.startswith(("observed:minicalc/__init__", "file:minicalc/__init__",
                                 "listed:minicalc"))]


def test_a_declared_environment_variable_is_an_input(warm, monkeypatch):
    """Tests see the whole environment; what they read from it is keyed only when the
    module's `env` names it (its value's digest: keys travel to a shared cache)."""
    warm.write("graph.toml", warm.read("graph.toml").replace(
        'title = "Power"', 'title = "Power"\nenv = ["MINICALC_EXPONENT"]'))
    warm.append(warm.test_file("04_power"),
                "\n\ndef test_exponent_from_env():\n    import os\n"
                "    assert os.environ.get('MINICALC_EXPONENT', '2') == '2'\n")
    monkeypatch.setenv("MINICALC_EXPONENT", "2")
    assert warm.doit("all").statuses["04_power"] == "PASSED"
    assert warm.doit("all").statuses["04_power"] == "(cached) PASSED"
    monkeypatch.setenv("MINICALC_EXPONENT", "3")
    assert plain_pytest(warm, "04_power").returncode == 1
    why = warm.orchestrator("why", "test:04_power")
    assert "envvar:MINICALC_EXPONENT" in why.stdout, why.stdout
    assert warm.doit("all").statuses["04_power"] == "FAILED"
    stored = Store(warm.root).latest("04_power").inputs["envvar:MINICALC_EXPONENT"]
    assert stored != "3" and len(stored) == 64           # a digest, never the value
    monkeypatch.delenv("MINICALC_EXPONENT")
    assert warm.doit("all").statuses["04_power"] == "PASSED"
    assert Store(warm.root).latest("04_power").inputs["envvar:MINICALC_EXPONENT"] == "unset"


def test_the_closure_guard_knows_an_export_and_what_lies_below_it_only():
    """The owner of an import outside the closure: the export itself or a module below it
    (an export may be a package's file the tests import a name through), never a package
    above it nor a sibling that merely shares a prefix."""
    from pathlib import Path

    from orchestrator.run.closure_guard import Closure
    closure = Closure("02_add", "minicalc", ("01_numbers",),
                      {"minicalc.ops.mul": "03_mul", "minicalc.power": "04_power"}, Path("."))
    assert closure.owner("minicalc.ops.mul") == "03_mul"
    assert closure.owner("minicalc.ops.mul.helpers") == "03_mul"
    assert closure.owner("minicalc.power") == "04_power"
    assert closure.owner("minicalc.ops") is None
    assert closure.owner("minicalc.ops.multiply") is None
    assert closure.owner("minicalc.numbers") is None
