"""Longest remaining path first, from recorded durations."""
from __future__ import annotations

from orchestrator.cache.store import Store
from orchestrator.campaign.schedule import durations, remaining_path
from orchestrator.core.graph import load


def test_remaining_path_adds_the_longest_chain_after_each_module(project):
    graph = load(project.root)
    took = {"01_numbers": 1.0, "02_add": 5.0, "03_mul": 2.0, "04_power": 3.0}
    assert remaining_path(graph, took, strict=False) == {
        "04_power": 3.0, "03_mul": 5.0, "02_add": 8.0, "01_numbers": 9.0}
    # strict: 03 also waits for 02, so 02's chain runs through 03 and 04
    assert remaining_path(graph, took, strict=True) == {
        "04_power": 3.0, "03_mul": 5.0, "02_add": 10.0, "01_numbers": 11.0}


def test_a_run_dispatches_the_longest_path_first(project):
    assert project.doit("all").returncode == 0
    # the recorded durations, made far apart: measured ones would race on a busy machine
    store = Store(project.root)
    for module_id, seconds in (("02_add", 0.5), ("03_mul", 30.0)):
        result = next(store.recently_used(module_id))
        result.duration = seconds
        store.save(result)
    assert durations(load(project.root))["03_mul"] == 30.0
    # one worker, every target run again (-a): the order they run in is the dispatch order
    run = project.doit("-a", "-n", "1", "all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert list(run.statuses) == ["01_numbers", "03_mul", "02_add", "04_power"], run.stdout
    # `all` lists its targets by declared sizes (alike here): listing reads no stored result
    deps = project.doit("info", "all").stdout.split("task_dep")[1]
    assert deps.index("test:02_add") < deps.index("test:03_mul")


def test_a_module_never_run_is_guessed_from_its_size(project):
    """A fresh clone has no history: the declared size class orders the chains."""
    project.write("graph.toml", project.read("graph.toml").replace(
        'title = "Multiplication"', 'title = "Multiplication"\nsize = "large"'))
    graph = load(project.root)
    assert durations(graph) == {"01_numbers": 1.0, "02_add": 1.0, "03_mul": 15.0,
                                "04_power": 1.0}
    assert project.doit("all").returncode == 0
    recorded = durations(graph)
    measured = next(Store(project.root).recently_used("03_mul")).duration
    assert recorded["03_mul"] == measured > 0      # measured now, no longer guessed
