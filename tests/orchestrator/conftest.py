"""A throwaway foreign curriculum ("minicalc", 4 modules in a diamond) for end-to-end tests.

    01_numbers -> 02_add  -> 04_power
              \\-> 03_mul  -/

It has its own package name, modules and tests, and nothing TinyTorch: the
orchestrator must drive it exactly as it drives the shipped curriculum.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.core.state import StateDir
from orchestrator.course.init import PYPROJECT_LINES

REPO = Path(__file__).resolve().parents[2]

GRAPH = """\
[project]
package = "minicalc"
modules_dir = "modules"
tests_dir = "tests"

[categories]
core = "test_{name}_core.py"
edge_cases = "test_edge_cases.py"

[modules.01_numbers]
title = "Numbers"
export = "minicalc.numbers"
deps = []
api = ["number"]
requires = ["core"]

[modules.02_add]
title = "Addition"
export = "minicalc.ops.add"
deps = ["01_numbers"]
requires = ["core"]

[modules.03_mul]
title = "Multiplication"
export = "minicalc.ops.mul"
deps = ["01_numbers"]
requires = ["core"]

[modules.04_power]
title = "Power"
export = "minicalc.power"
deps = ["02_add", "03_mul"]
requires = ["core"]
"""

# doit's commands as `orchestrator init` registers them in a course (run, help, forget)
PYPROJECT = f"""\
[tool.pytest.ini_options]
pythonpath = ["."]
addopts = ["--import-mode=importlib", "-p", "orchestrator.run.pytest_plugin"]

{PYPROJECT_LINES}
"""

SOURCES = {
    "01_numbers": ("numbers", "numbers", "def number(x):\n    return float(x)\n"),
    "02_add": ("add", "ops.add",
               "from minicalc.numbers import number\n\n\n"
               "def add(a, b):\n    return number(a) + number(b)\n"),
    "03_mul": ("mul", "ops.mul",
               "from minicalc.numbers import number\n\n\n"
               "def mul(a, b):\n    return number(a) * number(b)\n"),
    "04_power": ("power", "power",
                 "from minicalc.ops.mul import mul\n\n\n"
                 "def power(a, n):\n    result = 1.0\n    for _ in range(n):\n"
                 "        result = mul(result, a)\n    return result\n"),
}

TESTS = {
    "01_numbers": "from minicalc.numbers import number\n\n\n"
                  "def test_number():\n    assert number('2') == 2.0\n",
    "02_add": "from minicalc.ops.add import add\n\n\n"
              "def test_add():\n    assert add(2, 3) == 5.0\n",
    "03_mul": "from minicalc.ops.mul import mul\n\n\n"
              "def test_mul():\n    assert mul(2, 3) == 6.0\n",
    "04_power": "from minicalc.power import power\n\n\n"
                "def test_power():\n    assert power(2, 10) == 1024.0\n",
}


STATUS_LINE = re.compile(r"^(\(cached\) PASSED|PASSED|FLAKY|FAILED|BLOCKED) (\d\d_\w+)")


class DoitRun:
    """A finished command, with the reporter's lines parsed."""

    def __init__(self, completed: subprocess.CompletedProcess):
        self.returncode = completed.returncode
        self.stdout, self.stderr = completed.stdout, completed.stderr

    @property
    def statuses(self) -> dict[str, str]:
        """{module: 'PASSED' | '(cached) PASSED' | 'FLAKY' | 'FAILED' | 'BLOCKED'}, in print
        order."""
        found = {}
        for line in self.stdout.splitlines():
            match = STATUS_LINE.match(line)
            if match:
                found[match.group(2)] = match.group(1)
        return found

    @property
    def executed(self) -> set[str]:
        return {m for m, s in self.statuses.items() if s in ("PASSED", "FLAKY", "FAILED")}

    @property
    def summary(self) -> str:
        return [line for line in self.stdout.splitlines() if line.startswith("Executed ")][-1]


class Project:
    """A minicalc checkout in a temp dir, with helpers to edit it and run doit."""

    def __init__(self, root: Path):
        self.root = root
        self.site: Path | None = None     # an extra folder on the path (a "site-packages")

    @property
    def state(self) -> StateDir:
        """Its state dir: where runs keep results, logs, reports and the lock."""
        return StateDir(self.root)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")

    def source(self, module_id: str) -> str:
        name = SOURCES[module_id][0]
        return f"modules/{module_id}/{name}_dev.py"

    def test_file(self, module_id: str) -> str:
        return f"tests/{module_id}/test_{SOURCES[module_id][0]}_core.py"

    def append(self, relative: str, text: str) -> None:
        self.write(relative, self.read(relative) + text)

    def add_test(self, module_id: str, body: str) -> None:
        """Append the test functions in `body` to the module's core test file."""
        self.append(self.test_file(module_id), "\n\n" + body.strip("\n") + "\n")

    def env(self) -> dict[str, str]:
        path = [str(REPO)] + ([str(self.site)] if self.site else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        # this test may itself run under the orchestrator or in an xdist worker: the
        # commands it starts must not inherit either role
        for name in ("ORCHESTRATOR_REPORT", "ORCHESTRATOR_PARENT_PID", "ORCHESTRATOR_OBSERVE",
                     "ORCHESTRATOR_OBSERVE_ROOT", "ORCHESTRATOR_REMOTE_CACHE",
                     "ORCHESTRATOR_CACHE_KEY", "ORCHESTRATOR_REMOTE_CACHE_TOKEN",
                     "ORCHESTRATOR_REMOTE_CACHE_MODE", "ORCHESTRATOR_REMOTE_CACHE_TIMEOUT",
                     "PYTEST_XDIST_WORKER",
                     "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
            env.pop(name, None)
        return env

    def run(self, *args: str, tool: str = "doit", timeout: int = 300) -> DoitRun:
        command = [sys.executable, "-m", tool, *args]
        return DoitRun(subprocess.run(command, cwd=self.root, env=self.env(),
                                      capture_output=True, text=True, timeout=timeout))

    def start(self, *args: str) -> subprocess.Popen:
        """doit in the background, for tests that interrupt or race it."""
        return subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=self.root,
                                env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def doit(self, *args: str):
        return self.run(*args)

    def orchestrator(self, *args: str):
        return self.run(*args, tool="orchestrator")


def source_text(default_exp: str, body: str) -> str:
    return ("# %% [markdown]\n# A module of minicalc.\n\n"
            f"# %%\n#| default_exp {default_exp}\n\n"
            f"# %%\n#| export\n{body}\n"
            "# %%\n# a demo cell that is not exported\nprint('demo')\n")


def build(root: Path) -> Project:
    project = Project(root)
    project.write("graph.toml", GRAPH)
    project.write("pyproject.toml", PYPROJECT)
    project.write("dodo.py", (REPO / "dodo.py").read_text(encoding="utf-8"))
    for module_id, (name, default_exp, body) in SOURCES.items():
        project.write(f"modules/{module_id}/{name}_dev.py", source_text(default_exp, body))
        project.write(f"tests/{module_id}/test_{name}_core.py", TESTS[module_id])
    return project


IDLE_STARTUP = 0.25   # seconds `python -m pytest --version` takes on an idle laptop (0.15-0.25)


@pytest.fixture(scope="session")
def patience():
    """patience(seconds) -> whole seconds to give something that takes well under
    `seconds` on an idle machine: `seconds`, stretched by how much slower than an idle
    laptop this machine starts pytest (timed once per session). A busy machine slows
    every run a test waits for about as much, so a timeout a test depends on is never a
    fixed number that a loaded machine can exceed."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "--version"], capture_output=True,
                   check=True)
    slowdown = max(1.0, (time.monotonic() - start) / IDLE_STARTUP)
    return lambda seconds: math.ceil(seconds * slowdown)


@pytest.fixture
def project(tmp_path) -> Project:
    return build(tmp_path / "minicalc")


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


@pytest.fixture
def warm(project) -> Project:
    """minicalc after one full passing run."""
    run = project.doit("-n", "2", "all")
    assert run.returncode == 0, run.stdout + run.stderr
    return project


@pytest.fixture(scope="module")
def warm_server():
    """One warm pytest server for a whole test file, as one serves a whole doit run."""
    from orchestrator.run.launch import WarmLauncher
    if not WarmLauncher.available():
        pytest.skip("the warm launcher needs fork and pidfd (Linux)")
    server = WarmLauncher(REPO, dict(os.environ), preload=[])
    yield server
    server.close()


@pytest.fixture
def run(launcher):
    """run(project, module_id, body=None, args=()) -> the runner's Result for one module
    (its test file replaced by `body`), under each launcher."""
    from orchestrator.cache import keys
    from orchestrator.core.graph import load
    from orchestrator.run import runner
    from orchestrator.run.pytest_plugin import export_all

    def run(project, module_id: str, body: str | None = None, args=()):
        if body is not None:
            project.write(project.test_file(module_id), body)
        graph = load(project.root)
        assert export_all(graph) == {}
        module = graph[module_id]
        declared = keys.declared(graph, module, list(args))
        return runner.run_module(graph, module, declared, list(args), launcher=launcher)
    return run


@pytest.fixture(params=["cold", "warm"])
def launcher(request):
    from orchestrator.run.launch import ColdLauncher
    return ColdLauncher() if request.param == "cold" else request.getfixturevalue("warm_server")
