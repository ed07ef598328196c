"""`orchestrator init`: a graph.toml and dodo.py for a folder of module sources and tests."""
from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import pytest

from orchestrator.core.graph import load
from orchestrator.course import init as init_mod
from orchestrator.course import init_survey
from orchestrator.course.init import DODO, InitError, init, missing_setup

from .conftest import REPO, SOURCES, source_text


@pytest.fixture
def bare(project):
    """minicalc's sources and tests only: no graph.toml, dodo.py or pyproject.toml."""
    for name in ("graph.toml", "dodo.py", "pyproject.toml"):
        (project.root / name).unlink()
    return project


def deps_of(root: Path) -> dict[str, list[str]]:
    return {m.id: list(m.deps) for m in load(root)}


def test_dodo_is_the_projects_own():
    assert DODO == (REPO / "dodo.py").read_text(encoding="utf-8")


def test_init_infers_the_graph_of_minicalc(bare):
    lines = init(bare.root)
    graph = load(bare.root)
    assert graph.package == "minicalc"
    assert {m.id: m.export for m in graph} == {
        "01_numbers": "minicalc.numbers", "02_add": "minicalc.ops.add",
        "03_mul": "minicalc.ops.mul", "04_power": "minicalc.power"}
    # power's code imports mul only: deps are what is imported, not what conftest declared
    assert deps_of(bare.root) == {"01_numbers": [], "02_add": ["01_numbers"],
                                  "03_mul": ["01_numbers"], "04_power": ["03_mul"]}
    text = bare.read("graph.toml")
    assert "# 01_numbers: modules/02_add/add_dev.py:9 imports minicalc.numbers\n" \
           'deps = ["01_numbers"]' in text
    assert "source =" not in text and "tests =" not in text     # all at their defaults
    assert bare.read("dodo.py") == DODO
    assert bare.read("doit.cfg") == init_mod.DOIT_CFG
    assert lines[0] == "wrote graph.toml, dodo.py, doit.cfg"
    assert lines[1] == "sources: modules/NN_* (4 modules)"
    assert lines[2] == ("package: minicalc (named by 7 imports of the sources and tests, e.g. "
                        "tests/01_numbers/test_numbers_core.py:1 imports "
                        "minicalc.numbers.number)")
    assert lines[3] == "found 4 modules:"
    assert "deps, each with the import behind it:" in lines
    assert "  04_power <- 03_mul: modules/04_power/power_dev.py:9 imports minicalc.ops.mul" \
        in lines
    assert lines[-1] == "next: doit all"
    assert missing_setup(bare.root) == []


def test_the_shipped_curriculum_is_read_as_its_graph_toml_declares_it():
    """The inferred deps are direct edges; graph.toml may list more, but the dependency
    closure of every module, which decides what runs before what, is the same."""
    declared = load(REPO)
    plan = init_survey.survey(REPO, f"{declared.modules_dir}/[0-9]*_*", declared.tests_dir)
    assert plan.package == declared.package
    found = {m.id: m for m in plan.modules}
    assert set(found) == set(declared.modules)
    for module in declared:
        assert plan.export(found[module.id]) == module.export
        assert found[module.id].tests == PurePosixPath(module.tests.as_posix())
        inferred = set()
        todo = list(found[module.id].deps)
        while todo:
            dep = todo.pop()
            inferred.add(dep)
            todo += found[dep].deps
        assert inferred == set(declared.closure(module.id)), module.id


def test_init_then_doit_all_passes(bare):
    run = bare.orchestrator("init")
    assert run.returncode == 0, run.stderr
    run = bare.doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.statuses == {m: "PASSED" for m in ("01_numbers", "02_add", "03_mul", "04_power")}


def test_init_never_overwrites(bare):
    bare.write("graph.toml", "# mine\n")
    run = bare.orchestrator("init")
    assert run.returncode == 3
    assert run.stderr == ("error: graph.toml already exists; init never overwrites it "
                          "(move it away to start again)\n")
    (bare.root / "graph.toml").unlink()
    bare.write("dodo.py", "# mine\n")
    with pytest.raises(InitError, match=r"dodo.py already exists"):
        init(bare.root)
    assert not (bare.root / "graph.toml").exists() and bare.read("dodo.py") == "# mine\n"


def test_an_existing_doit_cfg_gets_the_run_command_the_rest_kept(bare):
    bare.write("doit.cfg", "[GLOBAL]\nverbosity = 2\n")
    lines = init(bare.root)
    assert lines[0] == "wrote graph.toml, dodo.py; added doit's run command to doit.cfg"
    assert bare.read("doit.cfg") == "[GLOBAL]\nverbosity = 2\n\n" + init_mod.DOIT_CFG
    assert missing_setup(bare.root) == []

    # a [COMMAND] section of its own: the lines go into it (doit reads one)
    for name in ("graph.toml", "dodo.py"):
        (bare.root / name).unlink()
    bare.write("doit.cfg", "[COMMAND]\nhelp = my.help:Help\n")
    init(bare.root)
    assert bare.read("doit.cfg") == ("[COMMAND]\nrun = orchestrator.campaign.doit_run:Run\n"
                                     "forget = orchestrator.campaign.doit_run:Forget\n"
                                     "help = my.help:Help\n")
    assert missing_setup(bare.root) == []


def test_a_run_command_set_on_purpose_is_left_alone(bare):
    bare.write("doit.cfg", "[COMMAND]\nrun = my.tool:Run\n")
    lines = init(bare.root)
    assert lines[0] == "wrote graph.toml, dodo.py"
    assert bare.read("doit.cfg") == "[COMMAND]\nrun = my.tool:Run\n"
    assert any(line.startswith("doit.cfg sets doit's run command to 'my.tool:Run'")
               for line in lines)


def test_an_existing_pyproject_is_kept_and_doit_cfg_registers_the_command(bare):
    bare.write("pyproject.toml", '[project]\nname = "minicalc"\n')
    lines = init(bare.root)
    assert lines[0] == "wrote graph.toml, dodo.py, doit.cfg"
    assert bare.read("pyproject.toml") == '[project]\nname = "minicalc"\n'
    assert bare.read("doit.cfg") == init_mod.DOIT_CFG
    assert missing_setup(bare.root) == []
    # registered in pyproject.toml already: nothing more is written
    for name in ("graph.toml", "dodo.py", "doit.cfg"):
        (bare.root / name).unlink()
    bare.write("pyproject.toml",
               '[tool.doit.plugins.command]\nrun = "orchestrator.campaign.doit_run:Run"\n')
    assert init(bare.root)[0] == "wrote graph.toml, dodo.py"


def test_pairing_by_number_and_name(bare):
    shutil.move(bare.root / "tests/02_add", bare.root / "tests/02_addition")   # same number
    shutil.move(bare.root / "tests/03_mul", bare.root / "tests/07_mul")        # same name
    shutil.rmtree(bare.root / "tests/04_power")                                # none
    bare.write("tests/09_extra/test_extra.py", "def test_x():\n    assert 1 == 1\n")
    bare.write("tests/support/__init__.py", "")       # not NN_name: not a module's tests
    lines = init(bare.root)
    graph = load(bare.root)
    assert {m.id: m.tests.as_posix() for m in graph} == {
        "01_numbers": "tests/01_numbers", "02_add": "tests/02_addition",
        "03_mul": "tests/07_mul", "04_power": "tests/04_power"}
    assert "paired 02_add with tests/02_addition (same number)" in lines
    assert "paired 03_mul with tests/07_mul (same name)" in lines
    assert "could not pair tests/09_extra: no module source numbered 09 or named extra" in lines
    assert ("could not pair 04_power: no test folder; created tests/04_power/ empty (doit "
            "fails the module until it holds tests)") in lines
    assert list((bare.root / "tests/04_power").iterdir()) == []
    assert 'tests = "tests/02_addition"' in bare.read("graph.toml")


def test_swapped_numbers_pair_by_name_not_by_number(bare):
    """tests/04_mul holds 03_mul's tests and tests/03_power 04_power's: renumbered in one
    place and not the other. The name wins over the number."""
    shutil.move(bare.root / "tests/03_mul", bare.root / "tests/04_mul")
    shutil.move(bare.root / "tests/04_power", bare.root / "tests/03_power")
    lines = init(bare.root)
    assert {m.id: m.tests.as_posix() for m in load(bare.root)}["03_mul"] == "tests/04_mul"
    assert "paired 03_mul with tests/04_mul (same name)" in lines
    assert "paired 04_power with tests/03_power (same name)" in lines


def test_a_second_source_for_a_module_or_an_export_is_left_out_not_fatal(bare):
    bare.write("modules/02_Add/add_dev.py", source_text("ops.add2", "X = 1\n"))   # 02_add again
    bare.write("modules/05_plus/plus_dev.py", source_text("ops.add", "Y = 1\n"))  # add's export
    lines = init(bare.root)
    assert list(load(bare.root).modules) == ["01_numbers", "02_add", "03_mul", "04_power"]
    assert ("left out modules/02_Add/add_dev.py: the same number and name as "
            "modules/02_add/add_dev.py, kept") in lines
    assert ("left out modules/05_plus/plus_dev.py: the same export path ('#| default_exp "
            "ops.add') as modules/02_add/add_dev.py, kept") in lines


def test_nn_in_a_glob_is_a_module_number(bare):
    flat = bare.root.parent / "nbs_course"
    shutil.copytree(bare.root / "tests", flat / "tests")
    (flat / "nbs").mkdir()
    for mid in SOURCES:
        shutil.copy(bare.root / bare.source(mid), flat / "nbs" / f"{mid}.py")
    (flat / "nbs" / "index.py").write_text("# %%\nprint('not a module')\n")
    lines = init(flat, sources="nbs/NN_*.py")
    assert load(flat)["02_add"].source.as_posix() == "nbs/02_add.py"
    assert lines[1] == "sources: nbs/NN_*.py (4 modules, --sources)"


def test_src_layout_a_glob_of_files_and_left_out_folders(bare):
    shutil.move(bare.root / "modules", bare.root / "src")
    bare.write("src/05_notes/readme.md", "no source here\n")
    init(bare.root)
    graph = load(bare.root)
    assert graph.modules_dir == "src" and "source =" not in bare.read("graph.toml")

    flat = bare.root.parent / "flat"
    shutil.copytree(bare.root / "tests", flat / "tests")
    (flat / "nbs").mkdir()
    for m in graph:                                  # nbdev's layout: nbs/NN_name.py
        shutil.copy(bare.root / m.source, flat / "nbs" / f"{m.id}.py")
    lines = init(flat, sources="nbs/*.py")
    graph = load(flat)
    assert graph["02_add"].source.as_posix() == "nbs/02_add.py"
    assert deps_of(flat)["04_power"] == ["03_mul"]
    assert not any(line.startswith("left out") for line in lines)


def test_a_default_folder_without_sources_is_named_not_taken(bare):
    bare.write("src/01_numbers/numbers.ipynb", "{}\n")         # a notebook, never paired
    lines = init(bare.root)
    assert load(bare.root).modules_dir == "modules"
    assert ("left out src/01_numbers: only a notebook (numbers.ipynb); pair it with a "
            "percent-format .py first (jupytext --set-formats ipynb,py:percent)") in lines


def test_init_names_an_eager_package_init(bare):
    bare.write("minicalc/__init__.py", '__version__ = "1"\nfrom minicalc.numbers import number\n')
    lines = init(bare.root)
    assert ("minicalc/__init__.py imports 1 of the package's modules (line 2 first): a "
            "module's runs see only what it builds on, so importing the package fails the "
            "runs of every module that does not build on all of them; keep in it only what "
            "imports nothing of the package (e.g. __version__)") in lines


def test_left_out_folders_are_named(bare):
    bare.write("modules/05_notes/readme.md", "no source here\n")
    bare.write("modules/06_nb/nb.ipynb", "{}\n")
    bare.write("modules/Extras/x.py", "x = 1\n")         # not NN_*: not even looked at
    bare.write("modules/07_odd/odd_dev.py", "# %%\n#| default_exp odd name\n")
    lines = init(bare.root)
    assert ("left out modules/07_odd: '#| default_exp odd name' is not a dotted module "
            "path") in lines
    assert "left out modules/05_notes: no .py file with a '#| default_exp' directive" in lines
    assert ("left out modules/06_nb: only a notebook (nb.ipynb); pair it with a "
            "percent-format .py first (jupytext --set-formats ipynb,py:percent)") in lines
    assert list(load(bare.root).modules) == ["01_numbers", "02_add", "03_mul", "04_power"]


def test_deps_are_direct_edges_and_an_import_of_a_later_module_is_a_finding(bare):
    # power imports all three: only 02 and 03 are direct (01 comes through both)
    bare.write(bare.source("04_power"), source_text(
        "power", "from minicalc.numbers import number\nfrom minicalc.ops.add import add\n"
                 "from minicalc.ops.mul import mul\n\n\ndef power(a, n):\n    return 1.0\n"))
    # numbers (01) imports a module numbered 05: the numbers are the order, so it is no dep
    bare.write("modules/05_base/base_dev.py", source_text("base", "BASE = 10\n"))
    bare.write("tests/05_base/test_base.py",
               "from minicalc.base import BASE\n\n\ndef test_base():\n    assert BASE == 10\n")
    bare.append(bare.source("01_numbers"), "\n# %%\n#| export\nfrom minicalc.base import BASE\n")
    lines = init(bare.root)
    assert deps_of(bare.root) == {"01_numbers": [], "02_add": ["01_numbers"],
                                  "03_mul": ["01_numbers"], "04_power": ["02_add", "03_mul"],
                                  "05_base": []}
    assert ("  modules/01_numbers/numbers_dev.py:18 imports minicalc.base, which 05_base "
            "exports, later than 01_numbers: move that code to 05_base or later, or renumber "
            "05_base before 01_numbers") in lines
    assert ("# not a dep: modules/01_numbers/numbers_dev.py:18 imports minicalc.base (05_base "
            "comes later)") in bare.read("graph.toml")


def test_tests_imports_are_deps_too(bare):
    bare.append(bare.test_file("03_mul"), "\nfrom minicalc.ops.add import add\n")
    init(bare.root)
    assert deps_of(bare.root)["03_mul"] == ["02_add"]
    assert "# 02_add: tests/03_mul/test_mul_core.py:7 imports minicalc.ops.add\n" in \
        bare.read("graph.toml")


def test_an_import_cycle_is_its_shortest_loop_and_the_rest_is_written(bare):
    bare.append(bare.source("01_numbers"), "\n# %%\n#| export\nimport minicalc.power\n")
    lines = init(bare.root)
    assert deps_of(bare.root) == {"01_numbers": [], "02_add": ["01_numbers"],
                                  "03_mul": ["01_numbers"], "04_power": ["03_mul"]}
    [cycle] = [line for line in lines if line.startswith("import cycle: ")]
    assert cycle.startswith(
        "import cycle: 01_numbers -> 04_power -> 03_mul -> 01_numbers (modules/01_numbers/"
        "numbers_dev.py:18 imports minicalc.power; modules/04_power/power_dev.py:9 imports "
        "minicalc.ops.mul; modules/03_mul/mul_dev.py:9 imports minicalc.numbers): no "
        "numbering puts each module after what it imports")
    assert not any("later than" in line for line in lines)          # the loop says it all
    text = bare.read("graph.toml")
    assert ("# import cycle: 01_numbers -> 04_power -> 03_mul -> 01_numbers: not a dep "
            "(modules/01_numbers/numbers_dev.py:18 imports minicalc.power)") in text
    assert text.count("# import cycle") == 1        # the imports that point back are deps


def test_package_name_when_no_import_names_it(tmp_path):
    root = tmp_path / "My-Course"
    (root / "modules/01_hello").mkdir(parents=True)
    (root / "modules/01_hello/hello_dev.py").write_text(source_text("hello", "X = 1\n"))
    init(root)
    assert load(root).package == "my_course"
    for name in ("graph.toml", "dodo.py", "doit.cfg"):
        (root / name).unlink()
    (root / "settings.ini").write_text("[DEFAULT]\nlib_name = hello-lib\n")
    lines = init(root)
    assert load(root).package == "hello_lib"
    assert lines[2] == "package: hello_lib (lib_name in settings.ini)"
    for name in ("graph.toml", "dodo.py", "doit.cfg"):
        (root / name).unlink()
    init(root, package="greet")
    assert load(root)["01_hello"].export == "greet.hello"


def test_jupytext_header_and_a_hand_written_target(bare):
    bare.write(bare.source("01_numbers"),
               "# ---\n# jupyter:\n#   jupytext:\n#     formats: ipynb,py:percent\n# ---\n"
               "#| default_exp numbers\n\n# %%\n#| export\ndef number(x):\n    return float(x)\n")
    bare.write("minicalc/numbers.py", "def number(x):\n    return x\n")
    lines = init(bare.root)
    assert load(bare.root)["01_numbers"].export == "minicalc.numbers"
    assert ("minicalc/numbers.py exists and was not written by `orchestrator export`: export "
            "refuses to overwrite it; delete it if modules/01_numbers/numbers_dev.py is the "
            "truth") in lines


def test_bad_arguments_are_one_line(bare):
    with pytest.raises(InitError, match=r"^no module sources in .*: looked for lessons/\* "
                                        r"\(name another place with --sources GLOB\)$"):
        init(bare.root, sources="lessons/*")
    with pytest.raises(InitError, match=r"^--sources '/abs/\*' must be a path inside"):
        init(bare.root, sources="/abs/*")
    with pytest.raises(InitError, match=r"no such folder"):
        init(bare.root / "nowhere")


# --- missing_setup: what `orchestrator check` reports about doit's setup -------------------

def test_missing_setup(tmp_path):
    problems = missing_setup(tmp_path)
    assert problems[0].startswith("no dodo.py: doit reads its tasks from it")
    assert problems[1].startswith("no doit.cfg or pyproject.toml registers the orchestrator's "
                                  "run command (without it doit runs with its own run command")
    (tmp_path / "dodo.py").write_text(DODO)
    (tmp_path / "pyproject.toml").write_text('[tool.doit.plugins.command]\nrun = "x:Y"\n')
    assert missing_setup(tmp_path) == [
        "pyproject.toml sets doit's run command to 'x:Y', not 'orchestrator.campaign.doit_run:Run' "
        "(without it doit runs with its own run command: no longest-path-first dispatch, no "
        "run lock, doit's exit codes instead of the orchestrator's)"]
    (tmp_path / "doit.cfg").write_text(init_mod.DOIT_CFG)     # doit.cfg is read last: it wins
    assert missing_setup(tmp_path) == []
    (tmp_path / "doit.cfg").unlink()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.doit.plugins.command]\nrun = "orchestrator.campaign.doit_run:Run"\n')
    assert missing_setup(tmp_path) == []


def test_the_project_itself_is_set_up():
    assert missing_setup(REPO) == []


def test_doit_reads_the_run_command_from_doit_cfg(tmp_path, monkeypatch):
    """What init writes is what doit itself loads (doit_cmd.DoitMain, as `doit` runs it)."""
    from doit.doit_cmd import DoitMain

    from orchestrator.campaign.doit_run import Run
    (tmp_path / "doit.cfg").write_text(init_mod.DOIT_CFG)
    monkeypatch.chdir(tmp_path)
    commands = DoitMain(config_filenames=("pyproject.toml", "doit.cfg")).get_cmds()
    assert commands.get_plugin("run") is Run
