"""The warm launcher: children forked from a server that preloaded libraries, never the
project's code; a dead server is a clear failure, then a cold fallback. (The fail-closed
cases, crash, os._exit, timeout, run under both launchers in test_runner.py.)"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from orchestrator.run.launch import Crashed, WarmLauncher

from .processes import gone, wait_for_pids

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="the warm server needs fork and pidfd (Linux)")

REPO = Path(__file__).resolve().parents[2]


def pytest_run(launcher, project, tmp_path, test_body: str, name="probe", timeout=60,
               **env):
    """Run one new test file of the project through `launcher` (with `env` added to the
    environment); (how pytest ended: None or a launch.Ending, the run's log)."""
    project.write(f"tests/01_numbers/test_{name}.py", test_body)
    log = tmp_path / f"{name}.log"
    log.unlink(missing_ok=True)
    env = {**project.env(), "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), **env}
    crash = launcher.run([f"tests/01_numbers/test_{name}.py", "-q", "-p", "no:cacheprovider"],
                         project.root, env, log, timeout)
    return crash, log.read_text(encoding="utf-8")


def server_preloading(tmp_path, name: str, source: str) -> WarmLauncher:
    """A warm server that preloads the library `name`, written to tmp_path."""
    (tmp_path / f"{name}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    return WarmLauncher(REPO, env, preload=[name])


@pytest.fixture
def heavy_server(tmp_path):
    """A server that preloads `heavy_lib`, a module that remembers which process imported
    it, and prints at import what looks like an answer of the server: it must not be one."""
    server = server_preloading(tmp_path, "heavy_lib", (
        "import os\nIMPORTED_BY = os.getpid()\n"
        "print('{\"job\": 1, \"status\": 0}')\nprint('{\"job\": 1, \"pid\": 1}')\n"))
    assert server.preloaded.wait(30), "the server never said it had preloaded heavy_lib"
    yield server
    server.close()


def test_a_child_inherits_the_preloaded_library_from_its_server(heavy_server, project, tmp_path):
    crash, log = pytest_run(heavy_server, project, tmp_path, (
        "import os\nimport heavy_lib\n\n\ndef test_preloaded():\n"
        "    assert heavy_lib.IMPORTED_BY == os.getppid() != os.getpid()\n"))
    assert crash is None
    assert "1 passed" in log


def test_the_first_run_does_not_wait_for_the_preload(project, tmp_path):
    """Preloading happens when the server is idle: a run asked for as the server starts
    is forked before the preload (it would import what it needs itself)."""
    server = server_preloading(tmp_path, "slow_lib",
                               "import os, time\ntime.sleep(3)\nIMPORTED_BY = os.getpid()\n")
    try:
        crash, log = pytest_run(server, project, tmp_path, (
            "import sys\n\n\ndef test_forked_before_the_preload():\n"
            "    assert 'slow_lib' not in sys.modules\n"))
        assert crash is None and "1 passed" in log
        assert server.preloaded.wait(30)
        crash, log = pytest_run(server, project, tmp_path, (
            "import os\nimport slow_lib\n\n\ndef test_preloaded():\n"
            "    assert slow_lib.IMPORTED_BY == os.getppid()\n"), name="second")
        assert crash is None and "1 passed" in log
    finally:
        server.close()


def test_each_child_imports_the_project_fresh(heavy_server, project, tmp_path):
    """The server never imports the project's package: an edit between two runs of one
    server is seen by the second (a stale module would be a lie)."""
    from orchestrator.core.graph import load
    from orchestrator.run.pytest_plugin import export_all
    probe = ("from minicalc.numbers import number\n\n\n"
             "def test_number():\n    assert number('2') == 2.0\n")
    assert export_all(load(project.root)) == {}
    assert pytest_run(heavy_server, project, tmp_path, probe)[0] is None
    source = project.source("01_numbers")
    project.write(source, project.read(source).replace("return float(x)", "return float(x) + 1"))
    assert export_all(load(project.root)) == {}
    crash, log = pytest_run(heavy_server, project, tmp_path, probe)
    assert crash is None
    assert "assert 3.0 == 2.0" in log and "1 failed" in log


def test_a_child_gets_the_environment_of_its_request(heavy_server, project, tmp_path):
    project.write("marker.txt", "")
    crash, log = pytest_run(heavy_server, project, tmp_path, (
        "import os, sys\n\n\ndef test_env():\n"
        "    assert os.environ['PROBE'] == 'on'\n"
        "    assert os.path.exists('marker.txt')   # the request's working directory\n"
        "    assert sys.path[0] == os.getcwd()\n"), name="env", PROBE="on")
    assert crash is None and "1 passed" in log


def test_a_dead_server_fails_the_running_test_then_runs_cold(heavy_server, project, tmp_path):
    pidfile = tmp_path / "child.pid"
    outcome = {}

    def hang():
        outcome["crash"], _ = pytest_run(heavy_server, project, tmp_path, (
            "import os, time\n\n\ndef test_hang():\n"
            f"    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
            "    time.sleep(600)\n"), name="hang")

    runner = threading.Thread(target=hang)
    runner.start()
    children = wait_for_pids(pidfile)
    os.kill(heavy_server.server.pid, signal.SIGKILL)
    runner.join(30)
    assert outcome["crash"] == Crashed("the warm pytest server ended before this run did")
    assert gone(children), "the child outlived its server"

    crash, log = pytest_run(heavy_server, project, tmp_path,
                            "def test_ok():\n    assert 1 + 1 == 2\n", name="after")
    assert crash is None
    assert log.startswith("orchestrator: the warm pytest server is gone; starting pytest cold")
    assert "1 passed" in log


def test_closing_the_launcher_kills_what_still_runs(heavy_server, project, tmp_path):
    pidfile = tmp_path / "child.pid"
    thread = threading.Thread(target=pytest_run, args=(heavy_server, project, tmp_path, (
        "import os, subprocess, sys, time\n\n\ndef test_hang():\n"
        "    grandchild = subprocess.Popen([sys.executable, '-c',\n"
        "                                   'import time; time.sleep(600)'])\n"
        f"    open({str(pidfile)!r}, 'w').write(f'{{os.getpid()}} {{grandchild.pid}}')\n"
        "    time.sleep(600)\n")), kwargs={"name": "hang"})
    thread.start()
    pids = wait_for_pids(pidfile)
    heavy_server.close()
    thread.join(30)
    assert not thread.is_alive()
    assert gone(pids), "a test process outlived the launcher"


def test_a_server_that_never_got_a_job_is_ended_even_while_it_boots(tmp_path):
    """A run starts the server at its first export (Campaign.warm_up); when every test
    then comes from a cache, closing must not wait for the server to finish its imports
    (it reads no request before it is ready): it has forked nothing, and is killed."""
    server = server_preloading(tmp_path, "slow_lib", "import time\ntime.sleep(600)\n")
    calls = []
    process = server.server
    kill, wait = process.kill, process.wait
    process.kill = lambda: (calls.append("kill"), kill())[1]                  # type: ignore
    process.wait = lambda *a, **k: (calls.append("wait"), wait(*a, **k))[1]   # type: ignore
    server.close()
    assert calls[:2] == ["kill", "wait"]        # not a wait for a server that cannot answer
    assert process.returncode == -signal.SIGKILL
    assert gone([server.server.pid])
