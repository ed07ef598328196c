"""Content keys: what a cached result depends on, and naming what changed."""
from __future__ import annotations

from orchestrator.cache import keys
from orchestrator.core.graph import load
from orchestrator.run.pytest_plugin import export_all


def key_of(project, module_id: str, args=()):
    graph = load(project.root)
    export_all(graph)
    return keys.inputs(graph, graph[module_id], list(args))


def test_key_lists_every_input_by_name(project):
    project.write("tests/conftest.py", "# shared\n")
    project.write("graph_notes.txt", "any file of the tree\n")
    key = key_of(project, "04_power")
    names = set(key)
    assert {"test:tests/04_power/test_power_core.py", "conftest:tests/conftest.py",
            "export:minicalc/numbers.py", "export:minicalc/ops/add.py",
            "export:minicalc/ops/mul.py", "export:minicalc/power.py", "graph:04_power",
            "pytest:args", "pytest:config", "env:python", "env:interpreter",
            "installed:numpy", "installed:pytest", "file:graph_notes.txt"} <= names
    assert not any(n.startswith("test:tests/01") for n in names)


def test_changes_names_the_edited_file(project):
    before = key_of(project, "02_add")
    project.append(project.test_file("02_add"), "\n# edited\n")
    project.write("tests/02_add/helpers.py", "X = 1\n")
    after = key_of(project, "02_add")
    assert keys.changes(before, after) == [("test:tests/02_add/helpers.py", "added"),
                                           ("test:tests/02_add/test_add_core.py", "changed")]
    assert keys.digest(before) != keys.digest(after)


def test_environment_change_invalidates_every_key(project, monkeypatch):
    graph = load(project.root)
    export_all(graph)
    before = {m.id: keys.digest(keys.inputs(graph, m, [])) for m in graph}
    real = keys.installed_distributions
    monkeypatch.setattr(keys, "installed_distributions", lambda: {**real(), "numpy": "0.0.1"})
    after = {m.id: keys.digest(keys.inputs(graph, m, [])) for m in graph}
    assert all(before[m] != after[m] for m in before)
    assert keys.changes(keys.inputs(graph, graph["01_numbers"], []),
                        {**keys.inputs(graph, graph["01_numbers"], []), "installed:numpy": "9"}) \
        == [("installed:numpy", "changed")]


def test_extra_inputs_declared_in_graph_are_keyed(project):
    project.write("data/table.csv", "a,b\n1,2\n")
    text = project.read("graph.toml").replace('title = "Multiplication"',
                                              'title = "Multiplication"\ninputs = ["data"]')
    project.write("graph.toml", text)
    before = key_of(project, "03_mul")
    assert before["input:data/table.csv"]
    project.write("data/table.csv", "a,b\n1,3\n")
    assert keys.changes(before, key_of(project, "03_mul")) == [
        ("input:data/table.csv", "changed")]


def test_header_only_change_of_an_export_keeps_the_key(project):
    """A markdown edit changes the source hash in the header, not the exported body."""
    before = key_of(project, "01_numbers")
    project.append(project.source("01_numbers"), "# a note in the demo cell\n")
    after = key_of(project, "01_numbers")
    assert before == after


def test_shared_test_helpers_are_keyed_for_every_module(project):
    project.write("tests/support/__init__.py", "")
    project.write("tests/support/helpers.py", "X = 1\n")
    before = key_of(project, "02_add")
    assert "support:tests/support/helpers.py" in before
    project.write("tests/support/helpers.py", "X = 2\n")
    assert keys.changes(before, key_of(project, "02_add")) == [
        ("support:tests/support/helpers.py", "changed")]


def test_distribution_metadata_read_by_pytest_is_not_an_observed_file(project):
    from orchestrator.core.graph import load
    graph = load(project.root)
    seen = {"read": ["minicalc_dist.egg-info/entry_points.txt",
                     "site/foo-1.0.dist-info/METADATA", "data/real.txt"], "listed": []}
    project.write("minicalc_dist.egg-info/entry_points.txt", "[x]\n")
    project.write("site/foo-1.0.dist-info/METADATA", "Name: foo\n")
    project.write("data/real.txt", "1\n")
    found = keys.observed_inputs(graph, graph["01_numbers"], seen, {})
    assert list(found) == ["observed:data/real.txt"]
