"""A real course adopted with no step the docs do not give, and the same verdict on every
run: `orchestrator init` with no flag on course_fixture's `tinyml` (two source folders,
renumbered tests, a committed nbdev package, imports that point forward), then
`doit -n 2 all` twice.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from orchestrator.core import export
from orchestrator.core.graph import load
from orchestrator.course.init import init, missing_setup

from . import course_fixture
from .conftest import Project

IDS = [s.id for s in course_fixture.SOURCES]


@pytest.fixture
def course(tmp_path) -> Project:
    """A clean clone of the course."""
    return Project(course_fixture.build(tmp_path / "tinyml"))


def lines_of(run) -> list[str]:
    return run.stdout.splitlines()


# --- init: what it chose, and why ----------------------------------------------------------

def test_init_takes_the_sources_the_tests_import_and_says_why(course):
    lines = init(course.root)
    graph = load(course.root)
    assert list(graph.modules) == IDS                       # number order, all ten
    assert graph.modules_dir == "src" and graph.package == "tinyml"
    assert {m.id: m.source.as_posix() for m in graph} == {
        i: f"src/{i}/{i}.py" for i in IDS}
    [chosen] = [line for line in lines if line.startswith("sources: ")]
    assert chosen.startswith("sources: src/NN_* (10 modules: ")
    assert "not modules/NN_* (7 modules: " in chosen
    assert "--sources" in chosen                            # how to choose the other
    [package] = [line for line in lines if line.startswith("package: ")]
    assert package.startswith("package: tinyml (named by ") and " imports tinyml." in package


def test_renumbered_tests_are_paired_by_name_and_listed(course):
    lines = init(course.root)
    graph = load(course.root)
    assert {m.id: m.tests.as_posix() for m in graph if m.id > "10"} == {
        "15_quantization": "tests/16_quantization", "16_compression": "tests/17_compression",
        "17_memoization": "tests/15_memoization"}
    for mid, folder in (("15_quantization", "16_quantization"),
                        ("16_compression", "17_compression"),
                        ("17_memoization", "15_memoization")):
        assert f"paired {mid} with tests/{folder} (same name)" in lines
    assert not any(line.startswith("could not pair") for line in lines), lines


def test_deps_come_from_exported_code_and_forward_imports_are_findings(course):
    lines = init(course.root)
    deps = {m.id: list(m.deps) for m in load(course.root)}
    assert deps == {"01_tensor": [], "02_activations": ["01_tensor"], "03_layers": ["01_tensor"],
                    "04_losses": ["01_tensor"], "05_autograd": ["04_losses"],
                    "06_optimizers": ["01_tensor"],
                    "07_training": ["03_layers", "05_autograd", "06_optimizers"],
                    "15_quantization": ["01_tensor"], "16_compression": ["03_layers"],
                    "17_memoization": []}
    # each dep with the import behind it
    assert ("  05_autograd <- 04_losses: src/05_autograd/05_autograd.py:25 imports "
            "tinyml.core.losses") in lines
    forward = [line for line in lines if line.startswith("  ") and "later than" in line]
    assert forward == [
        "  tests/02_activations/test_progressive_integration.py:5 imports tinyml.core.training,"
        " which 07_training exports, later than 02_activations: move the test to "
        "tests/07_training, or renumber 07_training before 02_activations",
        "  src/03_layers/03_layers.py:28 imports tinyml.core.autograd, which 05_autograd "
        "exports, later than 03_layers: move that code to 05_autograd or later, or renumber "
        "05_autograd before 03_layers",
        "  tests/04_losses/test_losses_gradient.py:5 imports tinyml.core.autograd, which "
        "05_autograd exports, later than 04_losses: move the test to tests/05_autograd, or "
        "renumber 05_autograd before 04_losses"]
    text = course.read("graph.toml")
    assert ("# not a dep: tests/02_activations/test_progressive_integration.py:5 imports "
            "tinyml.core.training (07_training comes later)") in text


def test_the_globs_its_help_prints_work_as_printed(course):
    help_text = course.orchestrator("init", "--help").stdout
    shown = re.findall(r"(?:modules|src)/NN_\*", " ".join(help_text.split()))
    assert set(shown) == {"modules/NN_*", "src/NN_*"}, help_text
    run = course.orchestrator("init", "--sources", "src/NN_*")
    assert run.returncode == 0, run.stderr
    assert load(course.root).modules_dir == "src"
    for name in ("graph.toml", "dodo.py", "doit.cfg"):
        (course.root / name).unlink()
    run = course.orchestrator("init", "--sources", "modules/NN_*")   # the other, by choice
    assert run.returncode == 0, run.stderr
    assert load(course.root).modules_dir == "modules"
    assert "sources: modules/NN_* (7 modules, --sources)" in lines_of(run)


def test_committed_generated_files_are_taken_over_the_safe_way(course):
    lines = init(course.root)
    graph = load(course.root)
    for module in graph:                                       # every module exports now
        assert export.is_current(module, graph), module.id
    [taken] = [line for line in lines if line.startswith("took over ")]
    assert taken.startswith("took over 10 files another tool generated ('# AUTOGENERATED! "
                            "DO NOT EDIT! ...'), each committed in git and unchanged:")
    assert "git checkout -- " in taken                         # how to change the decision
    assert course.read("tinyml/core/networks.py").startswith("# AUTOGENERATED!")  # no module's
    assert course_fixture.git(course.root, "status", "--porcelain", "--", "tinyml/core/"
                              "tensor.py").startswith(" M")

    # not committed: taking it over could lose work, so it stays, and init says how
    copy = Project(course_fixture.build(course.root.parent / "uncommitted", commit=False))
    lines = init(copy.root)
    assert copy.read("tinyml/core/tensor.py").startswith("# AUTOGENERATED!")
    assert ("left tinyml/core/tensor.py as it is: another tool generated it and it is not "
            "committed in git, so taking it over could lose work; export refuses it until "
            "`orchestrator export 01_tensor --force` (or you delete it)") in lines


def test_init_writes_what_doit_needs_and_keeps_the_course_config(course):
    before = course.read("pyproject.toml")
    lines = init(course.root)
    assert lines[0] == "wrote graph.toml, dodo.py, doit.cfg"
    assert course.read("pyproject.toml") == before
    assert missing_setup(course.root) == []

    # a doit.cfg of the course's own gets the run command added, the rest kept
    for name in ("graph.toml", "dodo.py", "doit.cfg"):
        (course.root / name).unlink()
    course.write("doit.cfg", "[GLOBAL]\nverbosity = 2\n\n[COMMAND]\nmine = my.tool:Cmd\n")
    lines = init(course.root)
    assert lines[0] == "wrote graph.toml, dodo.py; added doit's run command to doit.cfg"
    assert course.read("doit.cfg").startswith("[GLOBAL]\nverbosity = 2\n\n[COMMAND]\n")
    assert "mine = my.tool:Cmd\n" in course.read("doit.cfg")
    assert missing_setup(course.root) == []


def test_a_real_cycle_is_its_shortest_loop_and_the_rest_is_written(course):
    course.write("src/01_tensor/01_tensor.py", course.read("src/01_tensor/01_tensor.py")
                 .replace("class Tensor:", "from tinyml.core.training import fit\n\n\n"
                                           "class Tensor:"))
    lines = init(course.root)
    graph = load(course.root)                                  # it loads
    assert list(graph.modules) == IDS
    [cycle] = [line for line in lines if line.startswith("import cycle: ")]
    assert cycle.startswith("import cycle: 01_tensor -> 07_training -> 01_tensor (src/01_tensor/"
                            "01_tensor.py:25 imports tinyml.core.training; src/07_training/"
                            "07_training.py:")
    assert "# import cycle: 01_tensor -> 07_training -> 01_tensor" in course.read("graph.toml")


# --- the same tree, the same verdict ---------------------------------------------------------

def verdicts(run) -> dict[str, str]:
    return {m: s.replace("(cached) ", "") for m, s in run.statuses.items()}


@pytest.mark.skipif(sys.platform == "win32", reason="git and a POSIX shell")
def test_init_then_two_runs_agree_and_every_failure_names_its_cause(course):
    assert course.orchestrator("init").returncode == 0
    first, second = course.doit("-n", "2", "all"), course.doit("-n", "2", "all")
    assert set(first.statuses) == set(IDS), first.stdout          # every module: a verdict
    assert verdicts(first) == verdicts(second), first.stdout + second.stdout
    assert verdicts(first) == {
        "01_tensor": "PASSED", "02_activations": "FAILED", "03_layers": "PASSED",
        "04_losses": "FAILED", "05_autograd": "BLOCKED", "06_optimizers": "PASSED",
        "07_training": "BLOCKED", "15_quantization": "PASSED", "16_compression": "PASSED",
        "17_memoization": "PASSED"}
    graph = load(course.root)
    assert all(export.is_current(m, graph) for m in graph)      # every module exported
    for run in (first, second):      # the cause, as docs/ADOPTING.md quotes it
        assert ("ModuleNotFoundError: tinyml.core.training is exported by 07_training, which "
                "02_activations does not build on (import at tests/02_activations/"
                "test_progressive_integration.py:5): its runs see only 01_te") in run.stdout, \
            run.stdout
        assert ("ModuleNotFoundError: tinyml.core.autograd is exported by 05_autograd, which "
                "04_losses does not build on") in run.stdout, run.stdout
        assert "BLOCKED 05_autograd (by 04_losses)" in run.stdout


def test_a_test_importing_outside_its_closure_has_one_verdict_whatever_was_exported(project):
    """minicalc: a test of 02_add imports minicalc.power (04_power, which builds on 02):
    run alone, 04 was never exported; after `doit all` it is. The verdict is the same."""
    project.append(project.test_file("02_add"),
                   "\n\ndef test_power_too():\n    from minicalc.power import power\n"
                   "    assert power(2, 2) == 4.0\n")
    alone = project.doit("test:02_add")
    assert not (project.root / "minicalc/power.py").exists()
    project.doit("all")
    assert (project.root / "minicalc/power.py").exists()
    again = project.doit("test:02_add")
    assert alone.statuses["02_add"] == again.statuses["02_add"] == "FAILED", again.stdout
    cause = ("ModuleNotFoundError: minicalc.power is exported by 04_power, which 02_add does "
             "not build on")
    assert cause in alone.stdout and cause in again.stdout, again.stdout
    # the rerun line it prints reproduces the same failure, by plain pytest
    [rerun] = [line.split("rerun: ", 1)[1] for line in again.stdout.splitlines()
               if "rerun: " in line]
    plain = subprocess.run(rerun, shell=True,
                           cwd=project.root, env=project.env(), capture_output=True, text=True)
    assert plain.returncode == 1 and "is exported by 04_power" in plain.stdout, plain.stdout


# --- orchestrator check: a teacher can read it -----------------------------------------------

def test_check_groups_findings_by_module_and_kind_worst_first(course):
    init(course.root)
    run = course.orchestrator("check")
    assert run.returncode == 1
    headers = [line for line in run.stdout.splitlines() if line.startswith("== ")]
    assert headers == [f"== {m}: 1 import of a later module (raises ImportError in this "
                       "module's runs, which see only what it builds on)"
                       for m in ("02_activations", "03_layers", "04_losses")]
    assert run.stdout.splitlines()[-1] == "3 findings in 3 modules: 3 imports of a later module"
    assert run.stderr.splitlines()[0].startswith(
        "tests/02_activations/test_progressive_integration.py:5: imports tinyml.core.training."
        "fit: 07_training comes after 02_activations")
    data = json.loads(course.orchestrator("check", "--format", "json").stdout)
    assert data["count"] == 3 and not data["ok"]
    assert [(g["kind"], g["module"], g["count"]) for g in data["groups"]] == [
        ("forward", "02_activations", 1), ("forward", "03_layers", 1),
        ("forward", "04_losses", 1)]
    assert data["groups"][0]["findings"][0]["path"] == \
        "tests/02_activations/test_progressive_integration.py"


def test_check_puts_the_doit_setup_first(course):
    init(course.root)
    (course.root / "doit.cfg").unlink()
    run = course.orchestrator("check")
    assert run.stdout.splitlines()[0].startswith("== project: 1 doit setup problem")
    assert run.stderr.startswith("doit setup: ")
