"""doit's run with priority dispatch: the ready task with the longest remaining path goes first."""
from __future__ import annotations

from types import SimpleNamespace

from orchestrator.campaign.doit_run import PriorityReady


def node(name, priority=None):
    meta = None if priority is None else {"priority": priority}
    return SimpleNamespace(task=SimpleNamespace(name=name, meta=meta))


def test_ready_queue_pops_the_highest_priority_first_and_ties_in_arrival_order():
    ready = PriorityReady()
    for n in (node("short", 1.0), node("plain"), node("long", 9.5), node("long2", 9.5)):
        ready.append(n)
    assert len(ready) == 4 and ready
    assert [ready.popleft().task.name for _ in range(4)] == ["long", "long2", "short", "plain"]
    assert not ready


def test_doit_run_is_the_priority_run_in_an_orchestrated_project(project):
    """minicalc's pyproject registers the command, as this repository's does: every
    end-to-end test of the orchestrator runs through it."""
    assert "run tasks (ready tasks dispatched by priority)" in project.doit("help", "run").stdout
    run = project.doit("-n", "2", "all")
    assert run.returncode == 0 and len(run.executed) == 4
