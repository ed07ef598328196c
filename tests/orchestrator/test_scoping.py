"""Fail closed, narrowed on purpose: graph.toml may scope the default (`[project] ignore`
globs, a module's `inputs`), and observation checks it: a run that read what its scope
rules out is never reused, and the line that says so names the fix. (The default itself:
test_fail_closed.py.)"""
from __future__ import annotations

import pytest


def scoped_project(project):
    """data/ scoped to 04_power; docs/ ignored."""
    project.write("data/table.csv", "6\n")
    project.write("docs/guide.md", "how to\n")
    project.write("graph.toml", project.read("graph.toml").replace(
        'tests_dir = "tests"', 'tests_dir = "tests"\nignore = ["docs/**"]').replace(
        'title = "Power"', 'title = "Power"\ninputs = ["data"]'))
    return project


def test_an_edit_reruns_only_what_keys_it(project):
    scoped_project(project)
    assert project.doit("-n", "2", "all").returncode == 0
    project.write("docs/guide.md", "how to, again\n")
    assert project.doit("all").executed == set()                    # ignored
    project.write("data/table.csv", "7\n")
    assert project.doit("all").executed == {"04_power"}             # scoped to 04
    project.write("tests/02_add/notes.txt", "a note\n")
    assert project.doit("all").executed == {"02_add"}               # 02's own folder
    project.write("notes.txt", "anything else in the tree\n")
    assert project.doit("all").executed == {"01_numbers", "02_add", "03_mul", "04_power"}


def test_a_read_scoped_away_is_never_reused_and_says_how_to_declare_it(project):
    scoped_project(project)
    project.add_test("03_mul", """
def test_table():
    assert open("data/table.csv").read().strip() == "6"
""")
    run = project.doit("all")
    assert run.statuses["03_mul"] == "PASSED", run.stdout
    line = ("    not cached: 03_mul read data/table.csv, but graph.toml scopes it to 04_power: "
            "add it to 03_mul's inputs")
    assert line in run.stdout.splitlines(), run.stdout
    assert project.doit("all").statuses["03_mul"] == "PASSED"          # not (cached)
    why = project.orchestrator("why", "test:03_mul")
    assert "never reused" in why.stdout and "data/table.csv" in why.stdout, why.stdout
    check = project.orchestrator("check")
    assert check.returncode == 1
    assert "undeclared read: 03_mul read data/table.csv, but graph.toml scopes it to " \
        "04_power" in check.stderr, check.stderr
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Multiplication"', 'title = "Multiplication"\ninputs = ["data"]'))
    # declared: check judges the stored reads by today's graph.toml, before any re-run
    assert project.orchestrator("check").returncode == 0, project.orchestrator("check").stderr
    assert project.doit("all").statuses["03_mul"] == "PASSED"
    assert project.doit("all").statuses["03_mul"] == "(cached) PASSED"
    assert project.orchestrator("check").returncode == 0


def test_a_read_of_another_modules_folder_is_reported(project):
    project.write("tests/02_add/table.txt", "6")
    project.add_test("03_mul", """
def test_borrowed():
    assert open("tests/02_add/table.txt").read() == "6"
""")
    run = project.doit("all")
    assert "not cached: 03_mul read tests/02_add/table.txt, but it belongs to 02_add" \
        in run.stdout, run.stdout


@pytest.mark.parametrize("value, message", [
    ('"docs"', "graph.toml:5: [project] ignore must be a list of globs"),
    ('["/etc/**"]', "graph.toml:5: [project] ignore '/etc/**' is outside the project"),
])
def test_a_bad_ignore_list_is_one_line(project, value, message):
    project.write("graph.toml", project.read("graph.toml").replace(
        'tests_dir = "tests"', f'tests_dir = "tests"\nignore = {value}'))
    run = project.doit("all")
    assert run.returncode == 3
    assert message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_a_module_cannot_declare_the_orchestrators_own_variables(project):
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Power"', 'title = "Power"\nenv = ["ORCHESTRATOR_CACHE_KEY"]'))
    run = project.doit("all")
    assert run.returncode == 3
    assert "env 'ORCHESTRATOR_CACHE_KEY': the orchestrator's own variables" in run.stderr


def test_an_empty_inputs_folder_is_keyed_not_a_crash(project):
    (project.root / "data" / "empty").mkdir(parents=True)
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Addition"\n', 'title = "Addition"\ninputs = ["data/empty"]\n'))
    run = project.doit("all")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stdout + run.stderr
    assert set(run.statuses.values()) == {"PASSED"}
    project.write("data/empty/first.csv", "1\n")
    assert project.doit("all").executed == {"02_add"}


def test_the_files_a_module_keys_are_those_no_rule_takes_from_it():
    """keys.tree_inputs asks Scope.candidates, sorted out once per walk, instead of asking
    Scope.outside of every file for every module: on this repository's own graph (data
    scoped by `inputs`, ignore globs, twenty modules' folders) the two agree for every
    module."""
    from pathlib import Path

    from orchestrator.core import tree
    from orchestrator.core.graph import load
    graph = load(Path(__file__).resolve().parents[2])
    scope, files = tree.Scope.of(graph), tree.Tree(graph.root).files()
    for module in graph:
        asked = {rel for rel in files if scope.outside(rel, module.id) is None}
        assert set(scope.candidates(files, module.id)) == asked, module.id
    assert len(set(scope.candidates(files, "01_tensor"))) < len(files)
