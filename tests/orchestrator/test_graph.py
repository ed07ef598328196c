"""graph.toml validation: every mistake is one line naming the file, the module and the reason."""
from __future__ import annotations

import pytest

from orchestrator.graph import GraphError, load


def broken(project, old: str, new: str) -> str:
    text = project.read("graph.toml")
    assert old in text, f"fixture drifted: {old!r} not in graph.toml"
    project.write("graph.toml", text.replace(old, new, 1))
    with pytest.raises(GraphError) as info:
        load(project.root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("graph.toml")
    return message


def test_valid_graph_loads_in_curriculum_order(project):
    graph = load(project.root)
    assert list(graph.modules) == ["01_numbers", "02_add", "03_mul", "04_power"]
    assert graph.closure("04_power") == ["01_numbers", "02_add", "03_mul"]
    assert graph.dependents("01_numbers") == ["02_add", "03_mul", "04_power"]
    assert graph.test_deps("04_power") == ["02_add", "03_mul"]
    assert graph.test_deps("04_power", strict=True) == ["01_numbers", "02_add", "03_mul"]
    assert graph["03_mul"].timeout == 60


def test_toml_syntax_error_names_the_line(project):
    message = broken(project, 'title = "Addition"', 'title = "Addition')
    assert message.startswith("graph.toml:18:")
    assert "TOML syntax error" in message


def test_cycle_is_printed(project):
    message = broken(project, 'deps = []', 'deps = ["04_power"]')
    assert "dependency cycle:" in message
    cycle = message.split("dependency cycle: ")[1]
    assert set(cycle.split(" -> ")) >= {"01_numbers", "04_power"}
    assert cycle.split(" -> ")[0] == cycle.split(" -> ")[-1]


def test_unknown_dep_suggests_a_name(project):
    message = broken(project, 'deps = ["02_add", "03_mul"]', 'deps = ["02_add", "03_mull"]')
    assert message == ("graph.toml:29: module 04_power: unknown dep '03_mull' "
                       "(did you mean 03_mul?)")


def test_forward_dep_breaks_the_progressive_rule(project):
    text = project.read("graph.toml").replace(
        'title = "Addition"\nexport = "minicalc.ops.add"\ndeps = ["01_numbers"]',
        'title = "Addition"\nexport = "minicalc.ops.add"\ndeps = ["03_mul"]')
    project.write("graph.toml", text)
    with pytest.raises(GraphError, match=r"^graph.toml:17: module 02_add: dep '03_mul' does "
                                         r"not come earlier in graph.toml"):
        load(project.root)


def test_duplicate_export_path(project):
    message = broken(project, 'export = "minicalc.ops.mul"', 'export = "minicalc.ops.add"')
    assert message == ("graph.toml:23: module 03_mul: export path minicalc.ops.add is "
                       "already used by 02_add")


def test_missing_tests_directory(project):
    import shutil
    shutil.rmtree(project.root / "tests" / "03_mul")
    with pytest.raises(GraphError, match="module 03_mul: tests directory tests/03_mul does "
                                         "not exist"):
        load(project.root)


def test_missing_module_source(project):
    (project.root / project.source("02_add")).unlink()
    with pytest.raises(GraphError, match="module 02_add: module source "
                                         "modules/02_add/add_dev.py does not exist"):
        load(project.root)


def test_unknown_category(project):
    message = broken(project, 'requires = ["core"]', 'requires = ["cor"]')
    assert message == ("graph.toml:10: module 01_numbers: unknown category 'cor' in requires "
                       "(did you mean core?)")


def test_unknown_key(project):
    message = broken(project, 'api = ["number"]', 'api = ["number"]\ndepends = []')
    assert "module 01_numbers: unknown key 'depends'" in message


def test_unknown_project_key(project):
    message = broken(project, 'package = "minicalc"', 'package = "minicalc"\npackages = "x"')
    assert message == "graph.toml: unknown key 'packages' in [project]"


def test_preload_is_a_list_of_names_and_never_the_package(project):
    assert broken(project, 'package = "minicalc"', 'package = "minicalc"\npreload = "numpy"') \
        == "graph.toml: [project] preload must be a list of module names"
    assert broken(project, 'preload = "numpy"', 'preload = ["numpy", "minicalc.numbers"]') == (
        "graph.toml: [project] preload 'minicalc.numbers': the project's own package is "
        "imported fresh for every test run, never preloaded")


def test_bad_size_and_export_outside_package(project):
    assert "size 'huge' is not one of small, medium, large" in broken(
        project, 'title = "Power"', 'title = "Power"\nsize = "huge"')


def test_export_must_be_inside_the_package(project):
    assert "export 'other.numbers' must be a dotted path inside package 'minicalc'" in broken(
        project, 'export = "minicalc.numbers"', 'export = "other.numbers"')


def test_missing_graph_file(tmp_path):
    with pytest.raises(GraphError, match="graph.toml: no such file"):
        load(tmp_path)


def test_resolve_accepts_numbers_and_names(project):
    graph = load(project.root)
    assert graph.resolve("3") == "03_mul"
    assert graph.resolve("03") == "03_mul"
    assert graph.resolve("mul") == "03_mul"
    with pytest.raises(GraphError, match="unknown module '99_nothing'"):
        graph.resolve("99_nothing")


@pytest.mark.parametrize("tool", ["doit", "orchestrator"])
def test_commands_print_one_line_and_exit_3(project, tool):
    text = project.read("graph.toml").replace('deps = []', 'deps = ["04_power"]')
    project.write("graph.toml", text)
    run = project.run("list", tool=tool) if tool == "doit" else project.orchestrator("export")
    assert run.returncode == 3
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("ERROR: graph.toml:" if tool == "doit" else "error: graph.toml:")
    assert "dependency cycle: " in lines[0]
    assert {"01_numbers", "04_power"} <= set(lines[0].split("cycle: ")[1].split(" -> "))
    assert "Traceback" not in run.stderr + run.stdout
