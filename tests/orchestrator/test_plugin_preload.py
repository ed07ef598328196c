"""The warm server imports pytest's entry-point plugins and the orchestrator's plugin once,
through pytest's own assertion-rewriting hook (plugin_preload.py): a plugin that relies on
rewriting must get it exactly as in a fresh `python -m pytest`, and nothing may warn."""
from __future__ import annotations

import sys

import pytest

PLUGIN = """\
import pytest


@pytest.fixture
def checked():
    value = 1
    assert value == 2
"""


def install_plugin(site) -> None:
    (site / "rewritten_plugin.py").write_text(PLUGIN)
    info = site / "rewritten_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rewritten-plugin\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nrewritten = rewritten_plugin\n")
    (info / "RECORD").write_text("rewritten_plugin.py,,\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the warm server is Linux's")
@pytest.mark.parametrize("launcher", ["warm", "cold"])
def test_a_preloaded_plugin_keeps_its_rewritten_asserts(project, tmp_path, launcher):
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    project.site = site
    project.append(project.test_file("03_mul"), "\n\ndef test_with_plugin(checked):\n    pass\n")
    run = project.doit("test:03_mul", f"launcher={launcher}", "pytest=-W error")
    assert run.statuses["03_mul"] == "FAILED", run.stdout + run.stderr
    # pytest's rewriting of the plugin's assert, not a bare AssertionError
    assert "assert 1 == 2" in run.stdout, run.stdout
    log = project.state.log("03_mul").read_text()
    assert "cannot be rewritten" not in log and "PytestAssertRewriteWarning" not in log


def test_preload_imports_through_the_rewriting_hook(tmp_path, monkeypatch):
    """In a fresh interpreter: the plugin module's loader is pytest's hook."""
    import subprocess
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    code = ("import sys; from orchestrator.run.plugin_preload import preload_plugins\n"
            "names = preload_plugins()\n"
            "print('rewritten_plugin' in names,"
            " type(sys.modules['rewritten_plugin'].__loader__).__name__)\n")
    from .conftest import REPO
    env = {"PYTHONPATH": f"{REPO}:{site}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "AssertionRewritingHook"]
    # the plugin every run names with -p is rewritten as pytest would, autoload or not
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    code = ("import sys; from orchestrator.run.plugin_preload import preload_plugins\n"
            "print(preload_plugins(('orchestrator.run.pytest_plugin',)),"
            " type(sys.modules['orchestrator.run.pytest_plugin'].__loader__).__name__)\n")
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip() == \
        "['orchestrator.run.pytest_plugin'] AssertionRewritingHook"
