"""Scale-out on real engines: the CI matrix, the shared result cache, xdist across hosts."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def matrix(project, *args):
    run = project.orchestrator("ci-matrix", *args)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_ci_matrix_covers_exactly_the_graph(project):
    data = matrix(project)
    assert data == {"include": [{"name": "04_power",
                                 "targets": "test:01_numbers test:02_add test:03_mul test:04_power",
                                 "modules": ["01_numbers", "02_add", "03_mul", "04_power"]}]}


def test_ci_matrix_one_job_per_independent_branch(project):
    # Make 02 and 03 two independent branches: drop 04's edge to 02.
    project.write("graph.toml", project.read("graph.toml").replace(
        'deps = ["02_add", "03_mul"]', 'deps = ["03_mul"]'))
    jobs = matrix(project)["include"]
    assert [j["name"] for j in jobs] == ["02_add", "04_power"]
    covered = {m for j in jobs for m in j["modules"]}
    assert covered == {"01_numbers", "02_add", "03_mul", "04_power"}
    assert jobs[0]["targets"] == "test:01_numbers test:02_add"


def test_ci_matrix_since_a_revision(project):
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], cwd=project.root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=project.root, check=True)
    subprocess.run(git + ["commit", "-qm", "base"], cwd=project.root, check=True)
    assert matrix(project, "--since", "HEAD") == {"include": []}
    project.append(project.test_file("02_add"), "\n\ndef test_two():\n    assert 2 + 0 == 2\n")
    assert matrix(project, "--since", "HEAD")["include"] == [
        {"name": "02_add", "targets": "test:02_add", "modules": ["02_add"]}]


KEY = "ab" * 32


def cache(project, *args: str) -> subprocess.CompletedProcess:
    """`orchestrator cache ...` with the signing key (directory entries are signed)."""
    return subprocess.run([sys.executable, "-m", "orchestrator", "cache", *args],
                          cwd=project.root, env={**project.env(), "ORCHESTRATOR_CACHE_KEY": KEY},
                          capture_output=True, text=True)


def test_shared_cache_moves_passes_between_checkouts(project, tmp_path):
    assert project.doit("all").returncode == 0
    shared = tmp_path / "shared"
    run = cache(project, "export", str(shared))
    assert run.stdout.strip() == f"exported 4 passing results to {shared}", run.stdout + run.stderr
    other = tmp_path / "other"
    shutil.copytree(project.root, other, ignore=shutil.ignore_patterns(project.state.name,
                                                                       "minicalc"))
    from .conftest import Project
    second = Project(other)
    second.append(second.test_file("03_mul"), "\n# changed on this machine\n")
    run = cache(second, "import", str(shared))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == ["01_numbers: imported", "02_add: imported",
                                       "03_mul: no entry", "04_power: imported",
                                       "imported 3 of 4 results"], run.stdout
    doit = second.doit("all")
    assert doit.executed == {"03_mul"}, doit.stdout


def test_shared_cache_never_uses_a_tampered_result(project, tmp_path):
    assert project.doit("all").returncode == 0
    shared = tmp_path / "shared"
    cache(project, "export", str(shared))
    for path in (shared / "cas").iterdir():   # tamper: claim a different input set
        data = json.loads(path.read_text())
        data["inputs"]["test:tests/forged.py"] = "0" * 64
        path.write_text(json.dumps(data))
    shutil.rmtree(project.state.path)
    run = cache(project, "import", str(shared))
    assert "01_numbers: rejected" in run.stdout, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "imported 0 of 4 results"
    assert project.doit("all").executed == {"01_numbers", "02_add", "03_mul", "04_power"}


def test_xdist_across_hosts_local_form(project):
    """`--tx` spreads one module's suite over execution hosts; popen hosts are the local form
    of ssh hosts (`--tx ssh=user@host//python=python3`)."""
    project.write("tests/03_mul/test_many.py",
                  "import pytest\n\n\n@pytest.mark.parametrize('n', range(8))\n"
                  "def test_many(n):\n    assert n * 0 == 0\n")
    run = project.doit("test:03_mul", "pytest=-d --tx 2*popen")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED 03_mul (9 tests)" in run.stdout


def test_workflow_is_valid_for_github_actions():
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema (dev extra) not installed")
    for workflow in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        run = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows",
                              str(workflow)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


def test_workflow_uses_the_plan_matrix():
    text = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert "orchestrator ci-matrix" in text
    assert "matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}" in text
    assert "doit -n 2 ${{ matrix.targets }}" in text
    assert "orchestrator cache import" in text and "orchestrator cache export" in text
