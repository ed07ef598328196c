"""The inspection commands on minicalc: status, why, graph, check, coverage, affected."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orchestrator.views.render import COLORS

ALL = ["01_numbers", "02_add", "03_mul", "04_power"]


@pytest.fixture
def ran(project):
    """minicalc after one full run in which 03_mul failed (so 04_power was blocked)."""
    project.append(project.test_file("03_mul"), "\n\ndef test_broken():\n    assert 2 * 2 == 5\n")
    run = project.doit("all")
    assert run.returncode != 0
    return project


def cli(project, *args):
    run = project.orchestrator(*args)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def test_status_table(ran):
    run = cli(ran, "status")
    assert run.returncode == 0
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines()[1:]}
    # tests, passed, failed, skipped, not-run: the counts doit's lines give (tally.py)
    assert rows["01_numbers"][1:7] == ["passed", "1", "1", "0", "0", "0"]
    assert rows["03_mul"][1:7] == ["failed", "2", "1", "1", "0", "0"]
    assert rows["04_power"][1:9] == ["blocked"] + ["-"] * 7      # no figures of older runs
    assert rows["04_power"][9:] == ["(by", "03_mul)"]
    assert run.stdout.splitlines()[0].split() == ["module", "state", "tests", "passed",
                                                  "failed", "skipped", "not-run", "duration",
                                                  "age"]


def test_why_names_the_changed_file(ran):
    assert cli(ran, "why", "test:01_numbers").stdout.startswith(
        "test:01_numbers will reuse its result: passed")
    ran.append(ran.test_file("01_numbers"), "\n# touched\n")
    lines = cli(ran, "why", "test:01_numbers").stdout.splitlines()
    assert lines[0].startswith("test:01_numbers will re-run: 1 input(s) changed since it passed")
    assert lines[1].split() == ["changed", "test:tests/01_numbers/test_numbers_core.py"]


def test_why_after_a_source_edit_names_the_export_before_exporting(ran):
    ran.write(ran.source("01_numbers"),
              ran.read(ran.source("01_numbers")).replace("float(x)", "float(x) + 0.0"))
    lines = cli(ran, "why", "02").stdout.splitlines()
    assert lines[1].split() == ["changed", "export:minicalc/numbers.py"]


def test_why_on_a_failed_target(ran):
    lines = cli(ran, "why", "03_mul").stdout.splitlines()
    assert lines[0].startswith("test:03_mul will re-run: its last run failed (1 of 2 failed")
    assert "never passed" in lines[0]
    # what failed, where, and the command that checks a fix
    assert lines[1] == ("  failed   tests/03_mul/test_mul_core.py::test_broken at "
                        "tests/03_mul/test_mul_core.py:9: AssertionError: assert (2 * 2) == 5")
    assert lines[2].startswith(f"  rerun    cd {ran.root} && ")
    assert lines[2].endswith("-m pytest -p orchestrator.run.pytest_plugin "
                             "tests/03_mul/test_mul_core.py::test_broken")


def test_why_on_a_blocked_target_names_what_blocks_it(project):
    """A blocked target whose older pass is still current used to say "will re-run: 0
    input(s) changed since it passed": it is blocked, by 03_mul, and reuses that pass once
    03_mul passes."""
    assert project.doit("all").returncode == 0
    project.append(project.test_file("03_mul"), "\n\ndef test_broken():\n    assert 2 * 2 == 5\n")
    assert project.doit("all").statuses["04_power"] == "BLOCKED"
    lines = cli(project, "why", "04").stdout.splitlines()
    assert lines[0].startswith("test:04_power is blocked: 03_mul failed. Once it passes, "
                               "test:04_power will reuse its result: passed "), lines
    assert "; none of its " in lines[0] and lines[0].endswith(" inputs changed"), lines
    assert len(lines) == 1
    project.append(project.test_file("04_power"), "\n# touched\n")
    lines = cli(project, "why", "test:04_power").stdout.splitlines()
    assert lines[0].startswith("test:04_power is blocked: 03_mul failed. Once it passes, "
                               "test:04_power will re-run: 1 input(s) changed since it passed")
    assert lines[1].split() == ["changed", "test:tests/04_power/test_power_core.py"]


def test_why_on_a_blocked_target_that_never_ran(ran):
    assert cli(ran, "why", "04").stdout == (
        "test:04_power is blocked: 03_mul failed. Once it passes, test:04_power will run: "
        "it has no stored result\n")
    ran.write(ran.test_file("03_mul"), ran.read(ran.test_file("03_mul")).replace("== 5", "== 4"))
    assert ran.doit("test:03_mul").statuses["03_mul"] == "PASSED"    # 04_power not run
    assert cli(ran, "why", "04").stdout == (
        "test:04_power was blocked in the last run; nothing it builds on has a failed result "
        "now: test:04_power will run: it has no stored result\n")


def test_why_unknown_target(ran):
    run = cli(ran, "why", "test:99_nothing")
    assert run.returncode == 3
    assert run.stderr.strip() == "error: graph.toml: unknown module '99_nothing'"


def graph_json(project, *extra):
    run = cli(project, "graph", "--format", "json", *extra)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_graph_json_schema(ran):
    data = graph_json(ran)
    assert data["schema"] == 1 and data["package"] == "minicalc"
    nodes = {n["id"]: n for n in data["nodes"]}
    assert list(nodes) == ALL
    assert set(nodes["03_mul"]) == {"id", "title", "export", "deps", "dependents", "status",
                                    "duration", "tests", "reason", "failing", "categories",
                                    "changes", "layer"}
    assert nodes["03_mul"]["status"] == "failed"
    assert nodes["03_mul"]["failing"] == ["tests/03_mul/test_mul_core.py::test_broken"]
    assert nodes["03_mul"]["tests"] == {"passed": 1, "failed": 1}
    assert nodes["04_power"]["status"] == "blocked"
    assert nodes["01_numbers"]["dependents"] == ["02_add", "03_mul"]
    assert [n["layer"] for n in nodes.values()] == [0, 1, 1, 2]
    assert data["edges"] == [{"from": "01_numbers", "to": "02_add"},
                             {"from": "01_numbers", "to": "03_mul"},
                             {"from": "02_add", "to": "04_power"},
                             {"from": "03_mul", "to": "04_power"}]


def test_graph_strict_draws_the_classroom_chain(ran):
    edges = [(e["from"], e["to"]) for e in graph_json(ran, "--strict")["edges"]]
    assert edges == list(zip(ALL, ALL[1:]))


def test_graph_text_layers(ran):
    lines = cli(ran, "graph").stdout.splitlines()
    assert lines[0].split()[:4] == ["layer", "0", "✓", "01_numbers"]
    assert lines[2].split()[:3] == ["✗", "03_mul", "failed"]
    assert lines[3].split()[:4] == ["layer", "2", "⊘", "04_power"]
    assert lines[3].endswith("<- 02_add, 03_mul")


def test_graph_dot_parses_and_is_coloured(ran):
    pydot = pytest.importorskip("pydot", reason="pydot (dev extra) not installed")
    text = cli(ran, "graph", "--format", "dot").stdout
    (dot,) = pydot.graph_from_dot_data(text)
    colors = {n.get_name().strip('"'): n.get("fillcolor").strip('"') for n in dot.get_nodes()
              if n.get_name().strip('"') in ALL}
    assert colors == {"01_numbers": COLORS["passed"], "02_add": COLORS["passed"],
                      "03_mul": COLORS["failed"], "04_power": COLORS["blocked"]}
    assert len(dot.get_edges()) == 4


def test_graph_mermaid_structure(ran):
    lines = cli(ran, "graph", "--format", "mermaid", "--focus", "02").stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum(1 for line in lines if "-->" in line) == 4
    assert "    m01_numbers --> m02_add" in lines
    assert "    class m03_mul failed" in lines and "    class m04_power blocked" in lines
    assert f"    classDef failed fill:{COLORS['failed']},stroke:#333,color:#000" in lines
    focused = sorted(line.split()[1] for line in lines if line.strip().startswith("style "))
    assert focused == ["m01_numbers", "m02_add", "m04_power"]


def test_check_passes_then_names_a_layering_violation(project):
    run = cli(project, "check")
    assert run.returncode == 0
    assert run.stdout.strip() == ("graph.toml ok; layering ok: 4 modules import only their "
                                  "dependency closure")
    project.append(project.test_file("03_mul"), "from minicalc.ops.add import add\n")
    run = cli(project, "check")
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "tests/03_mul/test_mul_core.py:6: imports minicalc.ops.add.add: 02_add is not in "
        "03_mul's dependency closure (add it to deps of 03_mul in graph.toml, or drop the import)")


def test_check_flags_undeclared_third_party_in_exported_code(project):
    project.write("pyproject.toml", '[project]\nname = "minicalc"\ndependencies = ["numpy"]\n\n'
                  + project.read("pyproject.toml"))
    project.write(project.source("01_numbers"), project.read(project.source("01_numbers"))
                  .replace("def number(x):", "import requests\n\n\ndef number(x):"))
    run = cli(project, "check")
    assert run.returncode == 1
    assert ("modules/01_numbers/numbers_dev.py:9: imports requests: 'requests' is neither the "
            "standard library nor a declared dependency") in run.stderr


def test_check_lets_tests_import_pytest_and_skips_undeclared_projects(project):
    project.append(project.test_file("02_add"), "\nimport pytest\nimport requests\n")
    run = cli(project, "check")       # no [project] in pyproject.toml: nothing is declared
    assert run.returncode == 0, run.stderr


def test_coverage_matrix_and_check(ran):
    run = cli(ran, "coverage")
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows[0] == ["module", "core", "edge_cases"]
    assert rows[3] == ["03_mul", "1", "0"]
    assert rows[4] == ["04_power", "0", "0"]  # blocked: no evidence
    run = cli(ran, "coverage", "--check")
    assert run.returncode == 1
    assert run.stderr == "missing: 04_power: core (required by graph.toml, no passing test)\n"
    ran.write(ran.test_file("03_mul"), ran.read(ran.test_file("03_mul")).replace("== 5", "== 4"))
    assert ran.doit("all").returncode == 0
    assert cli(ran, "coverage", "--check").returncode == 0
    ran.write("graph.toml", ran.read("graph.toml").replace(
        'deps = ["02_add", "03_mul"]\nrequires = ["core"]',
        'deps = ["02_add", "03_mul"]\nrequires = ["core", "edge_cases"]'))
    run = cli(ran, "coverage", "--check")
    assert run.returncode == 1
    assert run.stderr == "missing: 04_power: edge_cases (required by graph.toml, no passing test)\n"


def test_coverage_credits_covers_marker_and_shows_na(project):
    project.write("graph.toml", project.read("graph.toml").replace(
        'requires = ["core"]\n\n[modules.02_add]',
        'requires = ["core"]\nnot_applicable = ["edge_cases"]\n\n[modules.02_add]'))
    project.write("tests/04_power/test_edge_cases.py",
                  "import pytest\nfrom minicalc.power import power\n\n\n"
                  "@pytest.mark.covers('03_mul')\ndef test_zero_power():\n"
                  "    assert power(5, 0) == 1.0\n")
    assert project.doit("all").returncode == 0
    data = json.loads(cli(project, "coverage", "--format", "json").stdout)
    assert data["01_numbers"]["edge_cases"] == "n/a"
    assert data["04_power"]["edge_cases"] == {"passed": 1, "credited_from": {}}
    assert data["03_mul"]["edge_cases"] == {"passed": 1, "credited_from": {"04_power": 1}}
    markdown = cli(project, "coverage", "--format", "markdown").stdout.splitlines()
    assert markdown[0] == "| module | core | edge_cases |"
    assert markdown[4] == "| 03_mul | 1 | 1 (1 from 04_power) |"


def git(project, *args):
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                   cwd=project.root, check=True, capture_output=True)


def test_affected_since_a_revision(project):
    git(project, "init", "-q")
    project.write(".gitignore", ".orchestrator/\nminicalc/\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    assert cli(project, "affected", "--since", "HEAD").stdout == ""
    project.append(project.source("03_mul"), "# only a demo cell changed\n")
    assert cli(project, "affected", "--since", "HEAD").stdout == ""
    project.write(project.source("03_mul"), project.read(project.source("03_mul")).replace(
        "number(a) * number(b)", "number(b) * number(a)"))
    project.write("tests/02_add/test_more.py", "def test_more():\n    assert 1 + 1 == 2\n")
    run = cli(project, "affected", "--since", "HEAD")
    assert run.stdout.split() == ["test:02_add", "test:03_mul", "test:04_power"]
    git(project, "add", "-A")
    git(project, "commit", "-qm", "edit")
    assert cli(project, "affected", "--since", "HEAD~1").stdout.split() == \
        ["test:02_add", "test:03_mul", "test:04_power"]
    run = cli(project, "affected", "--since", "HEAD~1", "--run")
    assert run.returncode == 0
    assert "Executed 4 out of 4 test targets" in run.stdout  # cold: deps run too


ALL_TARGETS = ["test:01_numbers", "test:02_add", "test:03_mul", "test:04_power"]


@pytest.mark.parametrize("path, text, expected", [
    ("pytest.ini", "[pytest]\naddopts = -q\n", ALL_TARGETS),       # a key names it
    ("setup.cfg", "[tool:pytest]\naddopts = -q\n", ALL_TARGETS),
    ("notes/any.txt", "any file of the tree is an input\n", ALL_TARGETS),
    ("data/table.csv", "a,b\n", ["test:03_mul"]),                  # scoped to 03_mul
    ("docs/guide.md", "ignored\n", []),
    ("tests/02_add/helpers.py", "X = 1\n", ["test:02_add"]),
])
def test_affected_names_what_a_key_names(project, path, text, expected):
    """`affected` asks keys.affected_by, the owner of what a key can name: it used to miss
    a root pytest.ini or setup.cfg, which do change every key."""
    project.write("data/table.csv", "a,b\n1,2\n")
    project.write("graph.toml", project.read("graph.toml").replace(
        'tests_dir = "tests"', 'tests_dir = "tests"\nignore = ["docs/**"]').replace(
        'title = "Multiplication"', 'title = "Multiplication"\ninputs = ["data"]'))
    git(project, "init", "-q")
    project.write(".gitignore", ".orchestrator/\nminicalc/\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    project.write(path, text)
    assert cli(project, "affected", "--since", "HEAD").stdout.split() == expected


def test_affected_graph_entry_and_bad_revision(project):
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    project.write("graph.toml", project.read("graph.toml").replace('title = "Power"',
                                                                   'title = "Powers"'))
    assert cli(project, "affected", "--since", "HEAD").stdout.split() == ["test:04_power"]
    run = cli(project, "affected", "--since", "no-such-rev")
    assert run.returncode == 3
    assert run.stderr.startswith("error: git diff --name-only no-such-rev --: fatal:")


# ---- files the orchestrator writes (results, cache entries, exports, graphs)

@pytest.mark.skipif(sys.platform == "win32", reason="no umask on Windows")
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=oct)
def test_atomic_write_respects_the_umask(tmp_path, umask):
    # in a new process: files.py reads the umask once, when it is imported
    import stat
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    target = tmp_path / "results" / "01_numbers.json"
    code = ("import os, sys; from pathlib import Path\n"
            f"os.umask({umask})\n"
            "from orchestrator.core.files import atomic_write\n"
            "atomic_write(Path(sys.argv[1]), 'first')\n"
            "atomic_write(Path(sys.argv[1]), 'second')\n")
    subprocess.run([sys.executable, "-c", code, str(target)], check=True, cwd=repo)
    assert target.read_text() == "second"
    assert oct(stat.S_IMODE(target.stat().st_mode)) == oct(0o666 & ~umask)
    assert [p.name for p in target.parent.iterdir()] == ["01_numbers.json"]  # no temp left


# ---- the command line itself: usage errors are one line and exit 3, like every bad input

def one_line_error(run, exit_code: int = 3) -> str:
    assert run.returncode == exit_code, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and "Usage:" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["graph", "--format", "pdf"],
     "error: orchestrator graph: Invalid value for '--format': 'pdf' is not one of 'text', "
     "'mermaid', 'dot', 'json', 'html'. (see 'orchestrator graph --help')"),
    (["why"], "error: orchestrator why: Missing argument 'TARGET'. "
              "(see 'orchestrator why --help')"),
    (["--nope"], "error: orchestrator: No such option '--nope'. (see 'orchestrator --help')"),
    (["grpah"], "error: orchestrator: No such command 'grpah'. Did you mean 'graph'? "
                "(see 'orchestrator --help')"),
    (["cache"], "error: orchestrator cache: missing command (one of: export, import) "
                "(see 'orchestrator cache --help')"),
    ([], "error: orchestrator: missing command (one of: affected, cache, check, ci-matrix, "
         "coverage, export, forget, graph, init, report, rerun, status, watch, why) "
         "(see 'orchestrator --help')"),
])
def test_usage_errors_are_one_line_and_exit_3(project, args, expected):
    assert one_line_error(project.orchestrator(*args)) == expected


def test_graph_output_in_a_missing_folder(project):
    run = project.orchestrator("graph", "-o", "missing_dir/graph.html")
    assert one_line_error(run) == ("error: cannot write missing_dir/graph.html: the folder "
                                   "missing_dir does not exist")
    assert not (project.root / "missing_dir").exists()
    project.write("afile", "")
    assert one_line_error(project.orchestrator("graph", "-o", "afile/graph.html")) == \
        "error: cannot write afile/graph.html: afile is not a folder"


def test_help_version_and_h(project):
    import importlib.metadata
    long, short = project.orchestrator("--help"), project.orchestrator("-h")
    assert long.returncode == short.returncode == 0
    assert long.stdout == short.stdout
    assert "doit all" in long.stdout and "doit test:NN" in long.stdout
    assert project.orchestrator("graph", "-h").stdout.startswith("Usage: orchestrator graph")
    version = project.orchestrator("--version")
    assert version.returncode == 0
    expected = importlib.metadata.version("progressive-orchestrator")
    assert version.stdout == f"orchestrator {expected}\n"


def test_runs_from_any_subdirectory(project):
    import sys
    inside = project.root / "tests" / "02_add"
    run = subprocess.run([sys.executable, "-m", "orchestrator", "check"],
                         cwd=inside, env=project.env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("graph.toml ok; layering ok: 4 modules")
    outside = subprocess.run([sys.executable, "-m", "orchestrator", "status"],
                             cwd=project.root.parent, env=project.env(), capture_output=True,
                             text=True)
    assert one_line_error(outside) == (f"error: no graph.toml in {project.root.parent} or any "
                                       "folder above it (run inside a checkout, or pass --root)")


def test_find_root(project):
    from orchestrator.core.graph import GraphError, find_root
    assert find_root(project.root / "tests" / "02_add") == project.root
    assert find_root(project.root) == project.root
    with pytest.raises(GraphError, match="^no graph.toml in "):
        find_root(project.root.parent)


def test_why_with_unbalanced_quotes(project):
    assert one_line_error(project.orchestrator("why", "02", "--pytest", "-k 'broken")) == \
        "error: --pytest=-k 'broken: unbalanced quotes (No closing quotation)"


def test_check_flags_an_eager_package_init(project):
    assert project.doit("export:01_numbers").returncode == 0
    project.write("minicalc/__init__.py", "from .numbers import number\nfrom minicalc import ops\n")
    run = cli(project, "check")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("minicalc/__init__.py:1: imports numbers: the package's "
                               "__init__ imports its modules eagerly")
    assert lines[1].startswith("minicalc/__init__.py:2: imports minicalc: ")
