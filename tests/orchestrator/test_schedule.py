"""Longest remaining path first, from recorded durations."""
from __future__ import annotations

from orchestrator.cache.store import Store
from orchestrator.campaign.schedule import (
    Progress,
    durations,
    priorities,
    remaining_path,
    runs_alone,
    simulate,
)
from orchestrator.core.graph import load


def test_remaining_path_adds_the_longest_chain_after_each_module(project):
    graph = load(project.root)
    took = {"01_numbers": 1.0, "02_add": 5.0, "03_mul": 2.0, "04_power": 3.0}
    assert remaining_path(graph, took, strict=False) == {
        "04_power": 3.0, "03_mul": 5.0, "02_add": 8.0, "01_numbers": 9.0}
    # strict: 03 also waits for 02, so 02's chain runs through 03 and 04
    assert remaining_path(graph, took, strict=True) == {
        "04_power": 3.0, "03_mul": 5.0, "02_add": 10.0, "01_numbers": 11.0}


class Chains:
    """A graph of its own: A, then X (long, nothing after it) beside Y -> Z (short, then
    long): X and Y tie on their remaining path."""

    def __init__(self):
        from types import SimpleNamespace
        deps = {"A": [], "X": ["A"], "Y": ["A"], "Z": ["Y"]}
        self.modules = {m: SimpleNamespace(id=m, index=i) for i, m in enumerate(deps)}
        self.deps = deps

    def __iter__(self):
        return iter(self.modules.values())

    def __getitem__(self, module_id):
        return self.modules[module_id]

    def test_deps(self, module_id, strict=False):
        return self.deps[module_id]

    def waiting_on(self, module_id, strict=False):
        direct = [m for m, deps in self.deps.items() if module_id in deps]
        return direct + [w for m in direct for w in self.waiting_on(m)]


def test_between_equal_paths_the_module_with_more_behind_it_starts_first():
    """TinyTorch on a fresh clone (sizes guessed): 09_spatial ends its chain, 11_embeddings
    leads to 13 and 17; both tie at 26, and 09 went first, in curriculum order, holding
    the critical path back 1.6 s."""
    graph = Chains()
    took = {"A": 1.0, "X": 5.0, "Y": 1.0, "Z": 4.0}
    assert remaining_path(graph, took, strict=False) == {"Z": 4.0, "Y": 5.0, "X": 5.0, "A": 6.0}
    assert priorities(graph, took, strict=False) == {
        "Z": (4.0, 0.0), "Y": (5.0, 4.0), "X": (5.0, 0.0), "A": (6.0, 5.0)}
    assert list(simulate(graph, took, workers=1)) == ["A", "Y", "X", "Z"]


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


# --- a module that runs alone: the rest of the run waits on it -----------------------------

def test_a_module_runs_alone_when_every_unfinished_target_waits_on_it(project):
    """minicalc's diamond: 01 -> 02, 03 -> 04. Whether a starting target has the machine
    to itself follows from what has finished, never from a clock."""
    graph = load(project.root)
    every = list(graph.modules)

    def alone(module_id, finished=(), failed=(), considered=every, strict=False):
        return runs_alone(graph, module_id, considered, set(finished), set(failed), strict)

    assert alone("01_numbers")                                   # all the rest waits on it
    assert not alone("02_add", finished={"01_numbers"})          # 03_mul may run beside it
    assert alone("02_add", finished={"01_numbers", "03_mul"})    # 04_power waits on it
    assert alone("04_power", finished={"01_numbers", "02_add", "03_mul"})
    assert not alone("04_power", finished={"01_numbers", "02_add"})   # (not yet possible)
    # a failed target is finished, and what waits on it is blocked: finished too
    assert alone("02_add", finished={"01_numbers", "03_mul"}, failed={"03_mul"})
    assert alone("03_mul", finished={"01_numbers", "02_add"}, failed={"02_add"})
    # `doit test:02_add` considers 02_add and its deps' targets only: 03_mul never runs
    assert alone("02_add", finished={"01_numbers"}, considered=["01_numbers", "02_add"])
    # strict (classroom order): 03_mul waits on 02_add too
    assert alone("02_add", finished={"01_numbers"}, strict=True)
    assert not alone("03_mul", finished={"01_numbers"}, strict=False)


def test_waiting_on_is_every_target_downstream(project):
    graph = load(project.root)
    assert graph.waiting_on("01_numbers", strict=False) == ["02_add", "03_mul", "04_power"]
    assert graph.waiting_on("02_add", strict=False) == ["04_power"]
    assert graph.waiting_on("03_mul", strict=True) == ["04_power"]
    assert graph.waiting_on("02_add", strict=True) == ["03_mul", "04_power"]
    assert graph.waiting_on("04_power", strict=False) == []


def test_progress_follows_the_targets_that_end(project):
    """What the campaign records as doit's threads end targets (tasks.Campaign: a cache
    hit, a test run, a failed export), and what a starting target asks of it."""
    graph = load(project.root)
    progress = Progress(graph, strict=False)
    assert progress.alone("01_numbers") and not progress.alone("02_add")
    progress.finish("01_numbers")                 # cached
    assert not progress.alone("02_add") and not progress.alone("03_mul")
    progress.finish("03_mul", failed=True)        # 04_power is blocked now
    assert progress.alone("02_add")
    # `doit test:03_mul`: the run considers 01 and 03 only
    only = Progress(graph, strict=False)
    only.consider(["01_numbers", "03_mul", "not_a_module"])
    assert only.considered == ["01_numbers", "03_mul"]
    assert not only.alone("03_mul")               # 01_numbers has not ended
    only.finish("01_numbers")
    assert only.alone("03_mul")


def test_a_simulated_run_says_which_modules_start_alone(project):
    graph = load(project.root)
    took = {"01_numbers": 1.0, "02_add": 5.0, "03_mul": 2.0, "04_power": 3.0}
    # two workers: 01 alone (all wait on it), 02 and 03 side by side, 04 alone at the end
    assert simulate(graph, took, workers=2) == {
        "01_numbers": True, "02_add": False, "03_mul": False, "04_power": True}
    # one worker: 03 ends before 02 starts, so 02 starts alone (04 waits on it)
    assert simulate(graph, {**took, "03_mul": 9.0}, workers=1) == {
        "01_numbers": True, "03_mul": False, "02_add": True, "04_power": True}
    assert list(simulate(graph, took, workers=1)) == ["01_numbers", "02_add", "03_mul",
                                                      "04_power"]
