"""The warm server preloads what a child's pytest run imports, but the project's own code:
pytest's builtin plugins, the orchestrator's plugin and what it imports, the entry-point
plugins (forkserver.ALWAYS, plugin_preload.py), so a child forked from it imports none of
it again; the plugin itself keeps its imports lazy so a student's plain `pytest` loads
little (test_meaning_in_types.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.run.launch import REPORT_ENV

REPO = Path(__file__).resolve().parents[2]

CONFTEST = '''
import json, os, sys
def pytest_unconfigure(config):
    names = sorted(sys.modules)
    with open(os.environ["IMPORTED_OUT"], "w") as f:
        json.dump(names, f)
'''


def preloaded() -> set[str]:
    """The modules a warm server has once it imported what its main imports before the
    first fork (ALWAYS, then the plugins through pytest's rewriting hook)."""
    code = ("import importlib, json, sys\n"
            "from orchestrator.run import forkserver\n"
            "for name in forkserver.ALWAYS:\n    importlib.import_module(name)\n"
            "forkserver.preload_plugins((forkserver.PLUGIN,))\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    return set(json.loads(done.stdout))


def test_the_server_preloads_every_module_a_child_run_imports_but_the_projects(project, tmp_path):
    project.write("tests/01_numbers/conftest.py", CONFTEST)
    project.write("tests/01_numbers/test_probe.py",
        "import pytest\n\ndef test_ok():\n    assert 1\n\n"
        "def test_fails():\n    assert [1, 2] == [1, 3]\n\n"
        "@pytest.mark.skip(reason='why not')\ndef test_skipped():\n    pass\n")
    out = tmp_path / "imported.json"
    env = {**project.env(), REPORT_ENV: str(tmp_path / "report.json"),
           "IMPORTED_OUT": str(out), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/01_numbers/test_probe.py"],
                          cwd=project.root, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr        # one test fails, as written
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(t["outcome"] for t in report["tests"].values()) == ["failed", "passed", "skipped"]
    imported = set(json.loads(out.read_text()))
    project_code = {m for m in imported if m.split(".")[0] in ("minicalc", "tests", "conftest")}
    missing = imported - preloaded() - project_code
    # readline: pytest's capture plugin imports it on purpose in the child (its terminal);
    # runpy: how this probe started (`python -m pytest`), not a fork; xdist.newhooks: a
    # hookspec module xdist imports as it registers, rewritten as it is part of xdist
    expected = {"readline", "runpy", "xdist.newhooks"}
    assert missing <= expected, f"a forked child would import these itself: {sorted(missing)}"
