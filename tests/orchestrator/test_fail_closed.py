"""Fail closed: a file, a variable or a package nobody declared is an input until ruled out.

Each test is a row of what a hostile but fair user did on the old main, where doit said
`(cached) PASSED` while plain pytest failed on the same tree: the tree, the environment and
the installed distributions are now inputs by default (tree.py, strict_env.py, keys.py),
and observation checks what graph.toml scopes away (test_scoping.py).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest


def plain_pytest(project, module_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"tests/{module_id}"], cwd=project.root, env=project.env(),
                          capture_output=True, text=True)


def passes_then_fails(project, module_id: str, change) -> None:
    """The module passes, `change()` edits something it depends on so that plain pytest
    fails, and doit must then run it again and fail, never `(cached) PASSED`."""
    first = project.doit("all")
    assert first.statuses[module_id] in ("PASSED", "(cached) PASSED"), first.stdout
    again = project.doit("all")
    assert again.statuses[module_id] == "(cached) PASSED", again.stdout
    change()
    assert plain_pytest(project, module_id).returncode == 1
    run = project.doit("all")
    assert run.statuses[module_id] == "FAILED", run.stdout + run.stderr


def test_a_skipped_test_whose_data_file_appears(warm):
    warm.add_test("03_mul", """
import pathlib
import pytest

@pytest.mark.skipif(not pathlib.Path("data/big.txt").exists(), reason="download it first")
def test_big():
    assert pathlib.Path("data/big.txt").read_text() == "expected"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("data/big.txt", "downloaded"))


def test_a_tolerated_missing_file_that_is_created_later(warm):
    warm.add_test("03_mul", """
def test_override():
    try:
        value = open("override.json").read()
    except FileNotFoundError:
        value = "{}"
    assert value == "{}"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("override.json", '{"x": 1}'))


def test_a_file_read_through_a_write_mode(warm):
    """np.memmap opens its file 'r+' by default: a read all the same."""
    warm.write("golden/values.bin", "abcd")
    warm.add_test("03_mul", """
def test_golden():
    with open("golden/values.bin", "r+b") as f:
        assert f.read() == b"abcd"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("golden/values.bin", "abce"))


def test_a_golden_file_written_on_the_first_run_then_replaced(warm):
    warm.add_test("03_mul", """
import pathlib

def test_golden():
    golden = pathlib.Path("golden/mul.txt")
    if not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_text("6.0")
    assert golden.read_text() == "6.0"
""")
    # the first run wrote a file into the tree: every module runs once more, then is cached
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    passes_then_fails(warm, "03_mul", lambda: warm.write("golden/mul.txt", "7.0"))


def test_a_file_read_only_in_a_multiprocessing_worker(warm):
    warm.write("data/pool.txt", "6")
    warm.add_test("03_mul", """
import multiprocessing

def read(path):
    return open(path).read()

def test_in_a_pool():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(read, ("data/pool.txt",)) == "6"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("data/pool.txt", "7"))


def test_a_forked_workers_read_of_an_ignored_file_is_reported(project):
    """Only observation sees this one (the file is ignored): the worker ends by os._exit
    or SIGTERM, never atexit, so it writes what it read as it reads it."""
    project.write("graph.toml", project.read("graph.toml").replace(
        'tests_dir = "tests"', 'tests_dir = "tests"\nignore = ["notes/**"]'))
    project.write("notes/value.txt", "6")
    project.add_test("03_mul", """
import multiprocessing

def read(path):
    return open(path).read()

def test_in_a_pool():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(read, ("notes/value.txt",)) == "6"
""")
    run = project.doit("all")
    assert run.statuses["03_mul"] == "PASSED", run.stdout
    assert "not cached: 03_mul read notes/value.txt, but graph.toml ignores it ('notes/**')" \
        in run.stdout, run.stdout
    assert project.doit("all").statuses["03_mul"] == "PASSED"      # never reused


def test_a_scratch_file_shadowing_the_standard_library(warm):
    warm.add_test("03_mul", """
def test_mean():
    import statistics
    assert statistics.mean([1, 2]) == 1.5
""")
    passes_then_fails(warm, "03_mul",
                      lambda: warm.write("statistics.py", "def mean(values):\n    return 0\n"))


def test_a_file_a_glob_at_the_root_would_find(warm):
    warm.add_test("03_mul", """
import glob

def test_no_archives():
    assert glob.glob("*.npz") == []
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("weights.npz", "x"))


def test_data_read_through_sqlite(warm):
    database = warm.root / "data" / "answers.db"
    database.parent.mkdir(parents=True, exist_ok=True)

    def store(value: int) -> None:
        with sqlite3.connect(database) as db:
            db.execute("create table if not exists answers (value integer)")
            db.execute("delete from answers")
            db.execute("insert into answers values (?)", (value,))
        db.close()

    store(6)
    warm.add_test("03_mul", """
import sqlite3
from minicalc.ops.mul import mul

def test_from_sqlite():
    with sqlite3.connect("file:data/answers.db?mode=ro", uri=True) as db:
        (value,) = db.execute("select value from answers").fetchone()
    assert mul(2, 3) == value
""")
    passes_then_fails(warm, "03_mul", lambda: store(7))


@pytest.mark.skipif(shutil.which("cat") is None, reason="needs a `cat` on PATH")
def test_data_read_by_a_program_that_is_not_python(warm):
    warm.write("data/value.txt", "6")
    warm.add_test("03_mul", """
import subprocess

def test_cat():
    assert subprocess.run(["cat", "data/value.txt"], capture_output=True,
                          text=True).stdout == "6"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("data/value.txt", "7"))


def test_data_read_by_python3_with_a_clean_environment(warm):
    """`python3` on PATH is the run's own interpreter (its folder comes first), and a
    Python started with env={} escapes observation, not the tree."""
    warm.write("data/value.txt", "6")
    warm.add_test("03_mul", """
import subprocess, sys

def test_python3():
    out = subprocess.run([sys.executable, "-c", "print(open('data/value.txt').read())"],
                         capture_output=True, text=True, env={}).stdout
    assert out.strip() == "6"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write("data/value.txt", "7"))


def test_python3_on_path_is_the_runs_interpreter(project):
    project.add_test("03_mul", f"""
import shutil, subprocess

def test_which_python():
    found = subprocess.run(["python3", "-c", "import sys; print(sys.prefix)"],
                           capture_output=True, text=True).stdout.strip()
    assert found == {sys.prefix!r}
""")
    run = project.doit("all")
    assert run.statuses["03_mul"] == "PASSED", run.stdout


def test_a_module_loaded_from_a_file_location(warm, monkeypatch):
    """Graders load submissions with spec_from_file_location: once its .pyc is fresh, the
    source is never opened again."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    warm.write("submissions/answer.py", "VALUE = 6\n")
    warm.add_test("03_mul", """
import importlib.util

def test_submission():
    spec = importlib.util.spec_from_file_location("answer", "submissions/answer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VALUE == 6
""")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"      # writes answer's .pyc
    shutil.rmtree(warm.state.all_results)                      # a run that loads the .pyc
    passes_then_fails(warm, "03_mul", lambda: warm.write("submissions/answer.py", "VALUE = 7\n"))


def test_pytest_addopts_is_part_of_the_key(warm, monkeypatch):
    warm.add_test("03_mul", "def test_broken():\n    assert False\n")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--deselect tests/03_mul/test_mul_core.py::test_broken")
    run = warm.doit("all")
    assert run.statuses["03_mul"] == "PASSED", run.stdout
    monkeypatch.delenv("PYTEST_ADDOPTS")
    assert plain_pytest(warm, "03_mul").returncode == 1
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


def test_an_installed_pytest_plugin_reruns_everything(warm, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    warm.site = site                    # PYTHONPATH is keyed: everything runs once
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    assert warm.doit("all").statuses["03_mul"] == "(cached) PASSED"
    (site / "strict_plugin.py").write_text(
        "def pytest_runtest_call(item):\n    raise AssertionError('the plugin says no')\n")
    info = site / "strict_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: strict-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nstrict = strict_plugin\n")
    (info / "RECORD").write_text("")
    assert plain_pytest(warm, "03_mul").returncode == 1
    run = warm.doit("all")
    assert run.statuses == {"01_numbers": "FAILED", "02_add": "BLOCKED", "03_mul": "BLOCKED",
                            "04_power": "BLOCKED"}, run.stdout


def test_an_archive_that_keeps_size_and_mtime(warm):
    """`tar --mtime` gives new content its old size and mtime: the ctime still moves."""
    path = warm.root / warm.test_file("03_mul")
    warm.add_test("03_mul", "def test_value():\n    assert 6 == 6\n")
    stat = path.stat()
    time.sleep(2.5)                     # out of the stat cache's racy window (digests.py)
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    assert warm.doit("all").statuses["03_mul"] == "(cached) PASSED"
    text = path.read_text().replace("assert 6 == 6", "assert 6 == 7")
    with open(path, "r+") as f:         # the same inode, the same size
        f.write(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size
    assert plain_pytest(warm, "03_mul").returncode == 1
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


@pytest.mark.parametrize("name", ["config", "args", "python", "numpy", "pytest"])
def test_a_root_file_named_like_a_key_entry(warm, name):
    warm.write(name, "6")
    warm.add_test("03_mul", f"""
def test_read_root_file():
    assert open({name!r}).read() == "6"
""")
    passes_then_fails(warm, "03_mul", lambda: warm.write(name, "7"))


def test_an_undeclared_variable_never_reaches_a_test(warm, monkeypatch):
    """The strict environment: what `env` does not name, tests do not see, so a fresh run
    and a cached one agree whatever the shell holds."""
    warm.add_test("03_mul", """
import os

def test_mode():
    assert os.environ.get("MINICALC_MODE") is None
""")
    monkeypatch.setenv("MINICALC_MODE", "strict")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    monkeypatch.setenv("MINICALC_MODE", "lenient")
    assert warm.doit("all").statuses["03_mul"] == "(cached) PASSED"
    shutil.rmtree(warm.state.path)
    assert warm.doit("all").statuses["03_mul"] == "PASSED"     # what a fresh run says


def test_a_declared_variable_reaches_the_test_and_is_keyed(warm, monkeypatch):
    warm.write("graph.toml", warm.read("graph.toml").replace(
        'title = "Multiplication"', 'title = "Multiplication"\nenv = ["MINICALC_MODE"]'))
    warm.add_test("03_mul", """
import os

def test_mode():
    assert os.environ.get("MINICALC_MODE") == "strict"
""")
    monkeypatch.setenv("MINICALC_MODE", "strict")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    monkeypatch.setenv("MINICALC_MODE", "lenient")
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


def test_native_library_settings_pass_through_and_are_keyed(warm, monkeypatch):
    warm.add_test("03_mul", """
import os

def test_threads():
    assert os.environ.get("OMP_DYNAMIC") in (None, "FALSE")
""")
    assert warm.doit("all").statuses["03_mul"] == "PASSED"
    monkeypatch.setenv("OMP_DYNAMIC", "TRUE")
    assert warm.doit("all").statuses["03_mul"] == "FAILED"


SECRETS = {"ORCHESTRATOR_CACHE_KEY": "k" * 64, "ORCHESTRATOR_REMOTE_CACHE_TOKEN": "t0ken-s3cret",
           "ORCHESTRATOR_REMOTE_CACHE": "http://127.0.0.1:9/cache",
           "ORCHESTRATOR_REMOTE_CACHE_MODE": "read-only", "CI_DEPLOY_PASSWORD": "hunter2"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("launcher", ["warm", "cold"])
def test_a_test_dumping_its_environment_finds_no_secret(project, monkeypatch, launcher):
    """What a hostile test can read of its own process and its parent (the warm server, or
    the cold launcher's wrapper): the environment and every open file."""
    project.add_test("03_mul", """
import json, os, pathlib

def test_dump():
    found = {"env": dict(os.environ), "files": {}}
    for pid in ("self", str(os.getppid())):
        found["env_" + pid] = pathlib.Path(f"/proc/{pid}/environ").read_bytes().decode(
            errors="replace")
        for fd in os.listdir(f"/proc/{pid}/fd") if pid == "self" else []:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                found["files"][target] = open(f"/proc/{pid}/fd/{fd}", "rb").read(1 << 16).decode(
                    errors="replace") if os.path.isfile(target) else ""
            except OSError:
                pass
    pathlib.Path(os.environ["HOME"], "dump.json").write_text(json.dumps(found))
""")
    home = project.root.parent / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    run = project.doit("test:03_mul", f"launcher={launcher}")
    assert run.statuses["03_mul"] == "PASSED", run.stdout + run.stderr
    dump = (home / "dump.json").read_text()
    for name, value in SECRETS.items():
        assert name not in dump and value not in dump, name


def test_an_edit_that_keeps_size_and_mtime_runs_the_new_code(warm, monkeypatch):
    """CPython trusts a .pyc whose recorded mtime and size match its source: the run must
    not test the old bytecode of a file whose new content the key saw (its ctime)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    helper = warm.write("helpers/answers.py", "ANSWER = 42\n")
    warm.add_test("03_mul", """
import sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "helpers"))
from answers import ANSWER

def test_answer():
    assert ANSWER == 42
""")
    stat = helper.stat()
    time.sleep(2.5)                      # older than the stat cache's racy window
    assert warm.doit("all").statuses["03_mul"] == "PASSED"      # writes answers' .pyc
    assert list((helper.parent / "__pycache__").glob("answers.*.pyc"))
    with open(helper, "r+") as f:
        f.write("ANSWER = 41\n")
    os.utime(helper, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    run = warm.doit("all")
    assert run.statuses["03_mul"] == "FAILED", run.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_tree_is_keyed_without_reading_it(project):
    os.mkfifo(project.root / "pipe")
    run = project.doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(run.statuses.values()) == {"PASSED"}


def test_a_junit_report_written_into_the_project_is_not_an_input(project):
    """The orchestrator's own output is not an input of the next run (state.outputs)."""
    assert project.doit("all", "junit=reports/junit.xml").returncode == 0
    assert (project.root / "reports" / "junit.xml").is_file()
    again = project.doit("all", "junit=reports/junit.xml")
    assert again.executed == set(), again.stdout
    assert project.orchestrator("report", "--junit", "out/run.xml").returncode == 0
    assert project.doit("all").executed == set()
