"""The warm server preloads what a child's pytest run imports of the orchestrator, so a
child forked from it imports none of it again (forkserver.ALWAYS); the plugin itself keeps
those imports lazy so a student's plain `pytest` loads little (test_meaning_in_types.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.run import forkserver
from orchestrator.run.launch import REPORT_ENV

REPO = Path(__file__).resolve().parents[2]

CONFTEST = '''
import json, os, sys
def pytest_unconfigure(config):
    names = sorted(m for m in sys.modules if m.startswith("orchestrator"))
    with open(os.environ["IMPORTED_OUT"], "w") as f:
        json.dump(names, f)
'''


def preloaded(names: list[str]) -> set[str]:
    """The orchestrator modules a server has after importing `names` (as its main does)."""
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('orchestrator'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    return set(json.loads(done.stdout))


def test_the_server_preloads_every_orchestrator_module_a_child_run_imports(project, tmp_path):
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
    missing = imported - preloaded(forkserver.ALWAYS) - {"orchestrator.run.pytest_plugin"}
    assert missing == set(), f"a forked child would import these itself: {sorted(missing)}"
