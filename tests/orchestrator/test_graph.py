"""graph.toml validation: every mistake is one line naming the file, the line of the key at
fault (or of its table), the module and the reason."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.graph import GraphError, load


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


def test_closure_and_dependents_agree_with_networkx_on_the_shipped_curriculum():
    """The graph walks its edges itself (networkx's import would be a quarter of a no-op
    run); networkx is the oracle."""
    import networkx as nx
    graph = load(Path(__file__).resolve().parents[2])
    dag = nx.DiGraph([(dep, m.id) for m in graph for dep in m.deps])
    order = list(graph.modules)
    for m in graph:
        assert graph.closure(m.id) == sorted(nx.ancestors(dag, m.id), key=order.index), m.id
        assert graph.dependents(m.id) == sorted(nx.descendants(dag, m.id), key=order.index)
    assert graph.closure("13_transformers")[:2] == ["01_tensor", "02_activations"]


def test_a_later_dep_that_closes_no_cycle_is_named(project):
    message = broken(project, 'deps = ["01_numbers"]', 'deps = ["01_numbers", "03_mul"]')
    assert "02_add" in message and "dep '03_mul' does not come earlier" in message
    assert "cycle" not in message


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
    assert message == ("graph.toml:32: module 04_power: unknown dep '03_mull' "
                       "(did you mean 03_mul?)")


def test_forward_dep_breaks_the_progressive_rule(project):
    text = project.read("graph.toml").replace(
        'title = "Addition"\nexport = "minicalc.ops.add"\ndeps = ["01_numbers"]',
        'title = "Addition"\nexport = "minicalc.ops.add"\ndeps = ["03_mul"]')
    project.write("graph.toml", text)
    with pytest.raises(GraphError, match=r"^graph.toml:20: module 02_add: dep '03_mul' does "
                                         r"not come earlier in graph.toml"):
        load(project.root)


def test_duplicate_export_path(project):
    message = broken(project, 'export = "minicalc.ops.mul"', 'export = "minicalc.ops.add"')
    assert message == ("graph.toml:25: module 03_mul: export path minicalc.ops.add is "
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
    assert message == ("graph.toml:15: module 01_numbers: unknown category 'cor' in requires "
                       "(did you mean core?)")


def test_unknown_key(project):
    message = broken(project, 'api = ["number"]', 'api = ["number"]\ndepends = []')
    assert "module 01_numbers: unknown key 'depends'" in message


def test_env_names_environment_variables(project):
    message = broken(project, 'api = ["number"]', 'api = ["number"]\nenv = ["SEED", "1X"]')
    assert message.endswith("module 01_numbers: env '1X' is not an environment variable's name")
    message = broken(project, 'env = ["SEED", "1X"]', 'env = "SEED"')
    assert message.endswith("module 01_numbers: 'env' must be a list of strings")


def test_unknown_project_key(project):
    message = broken(project, 'package = "minicalc"', 'package = "minicalc"\npackages = "x"')
    assert message == "graph.toml:3: unknown key 'packages' in [project]"


def test_preload_is_a_list_of_names_and_never_the_package(project):
    assert broken(project, 'package = "minicalc"', 'package = "minicalc"\npreload = "numpy"') \
        == "graph.toml:3: [project] preload must be a list of module names"
    assert broken(project, 'preload = "numpy"', 'preload = ["numpy", "minicalc.numbers"]') == (
        "graph.toml:3: [project] preload 'minicalc.numbers': the project's own package is "
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


# ---- bad input: one line naming the file, the line and the problem, never a traceback

def test_non_utf8_graph_names_the_line(project):
    path = project.root / "graph.toml"
    path.write_bytes(path.read_bytes().replace(b'title = "Power"', b'title = "Pow\xe9r"'))
    with pytest.raises(GraphError) as info:
        load(project.root)
    assert str(info.value) == ("graph.toml:30: not valid UTF-8 (byte 0xe9 at column 13); "
                               "save it as UTF-8")


@pytest.mark.parametrize("old, new, expected", [
    ('package = "minicalc"', 'package = 5',
     "graph.toml:2: [project] 'package' must be a string, not an integer (5)"),
    ('modules_dir = "modules"', 'modules_dir = 5',
     "graph.toml:3: [project] 'modules_dir' must be a string, not an integer (5)"),
    ('tests_dir = "tests"', 'tests_dir = ["tests"]',
     "graph.toml:4: [project] 'tests_dir' must be a string, not an array ([\"tests\"])"),
    ('[project]\npackage = "minicalc"\nmodules_dir = "modules"\ntests_dir = "tests"\n',
     'project = 5\n', "graph.toml:1: 'project' must be a table, not an integer (5)"),
    ('[categories]\ncore = "test_{name}_core.py"', '[categories]\ncore = 5',
     "graph.toml:7: [categories] 'core' must be a string, not an integer (5)"),
    ('export = "minicalc.numbers"', 'export = 5',
     "graph.toml:12: module 01_numbers: 'export' must be a string, not an integer (5)"),
    ('title = "Numbers"', 'title = 5',
     "graph.toml:11: module 01_numbers: 'title' must be a string, not an integer (5)"),
    ('title = "Power"', 'title = "Power"\nsize = 5',
     "graph.toml:31: module 04_power: 'size' must be a string, not an integer (5)"),
    ('title = "Power"', 'title = "Power"\nsource = 5',
     "graph.toml:31: module 04_power: 'source' must be a string, not an integer (5)"),
    ('title = "Power"', 'title = "Power"\nsource = true',
     "graph.toml:31: module 04_power: 'source' must be a string, not a boolean (true)"),
    ('package = "minicalc"', 'package = "mini-calc"',
     "graph.toml:2: [project] package 'mini-calc' must be a Python package name"),
])
def test_wrong_typed_values_are_one_line(project, old, new, expected):
    assert broken(project, old, new) == expected


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "data/../../x"])
def test_inputs_outside_the_project(project, bad):
    message = broken(project, 'api = ["number"]', f'api = ["number"]\ninputs = ["{bad}"]')
    assert message == (f"graph.toml:15: module 01_numbers: inputs '{bad}' is outside the "
                       "project (paths are relative to the folder of graph.toml)")


def test_declared_input_must_exist(project):
    message = broken(project, 'api = ["number"]', 'api = ["number"]\ninputs = ["data/nothing"]')
    assert message == "graph.toml:15: module 01_numbers: inputs 'data/nothing' does not exist"
    project.write("data/nothing/a.txt", "1\n")
    assert load(project.root)["01_numbers"].entry["inputs"] == ["data/nothing"]


def test_source_and_dirs_outside_the_project(project):
    assert broken(project, 'title = "Power"', 'title = "Power"\nsource = "../power.py"') == (
        "graph.toml:31: module 04_power: source '../power.py' is outside the project "
        "(paths are relative to the folder of graph.toml)")
    project.write("graph.toml", project.read("graph.toml").replace(
        'source = "../power.py"\n', ''))
    assert broken(project, 'tests_dir = "tests"', 'tests_dir = "/tmp"') == (
        "graph.toml:4: [project] tests_dir '/tmp' is outside the project "
        "(paths are relative to the folder of graph.toml)")


# ---- optional keys and their defaults

def test_categories_and_title_are_optional(project):
    text = project.read("graph.toml")
    text = text.replace('[categories]\ncore = "test_{name}_core.py"\n'
                        'edge_cases = "test_edge_cases.py"\n', '')
    text = text.replace('requires = ["core"]\n', '').replace('title = "Multiplication"\n', '')
    project.write("graph.toml", text)
    graph = load(project.root)
    assert graph.categories == {}
    assert graph["03_mul"].title == "Mul"
    assert graph["02_add"].title == "Addition"


def test_title_default_is_the_name_in_words(project):
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Numbers"\n', ''))
    assert load(project.root)["01_numbers"].title == "Numbers"


def test_tests_key_points_at_another_folder(project):
    import shutil
    shutil.move(project.root / "tests" / "03_mul", project.root / "tests" / "multiplication")
    with pytest.raises(GraphError, match="tests directory tests/03_mul does not exist"):
        load(project.root)
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Multiplication"', 'title = "Multiplication"\ntests = "tests/multiplication"'))
    graph = load(project.root)
    assert graph["03_mul"].tests.as_posix() == "tests/multiplication"
    assert broken(project, 'tests = "tests/multiplication"', 'tests = "tests/nothing"') == \
        "graph.toml:25: module 03_mul: tests directory tests/nothing does not exist"
    assert broken(project, 'tests = "tests/nothing"', 'tests = "../elsewhere"') == (
        "graph.toml:25: module 03_mul: tests '../elsewhere' is outside the project "
        "(paths are relative to the folder of graph.toml)")


def test_two_modules_cannot_share_or_nest_tests(project):
    assert broken(project, 'title = "Multiplication"',
                  'title = "Multiplication"\ntests = "tests/02_add"') == (
        "graph.toml:25: module 03_mul: tests directory tests/02_add is already the tests "
        "of 02_add")
    project.write("tests/02_add/more/test_x.py", "def test_x():\n    pass\n")
    assert broken(project, 'tests = "tests/02_add"', 'tests = "tests/02_add/more"') == (
        "graph.toml:25: module 03_mul: tests directory tests/02_add/more is inside "
        "tests/02_add, the tests of 02_add (pytest would run it twice)")


def test_export_may_name_a_top_level_file_of_the_package(project):
    project.write("graph.toml", project.read("graph.toml").replace(
        'export = "minicalc.power"', 'export = "power"'))
    graph = load(project.root)
    assert graph["04_power"].export == "minicalc.power"
    assert graph["04_power"].export_file(graph.root) == project.root / "minicalc" / "power.py"
    assert broken(project, 'export = "power"', 'export = "minicalc"') == (
        "graph.toml:31: module 04_power: export 'minicalc' is the package itself: name a file "
        "inside it, 'minicalc.power' or just 'power' (the package's __init__.py is generated "
        "and imports nothing)")
    assert "export 'power-x' must be a dotted path inside package 'minicalc'" in broken(
        project, 'export = "minicalc"', 'export = "power-x"')
