"""doit's run with priority dispatch: the ready task with the longest remaining path goes first."""
from __future__ import annotations

from types import SimpleNamespace

from orchestrator.campaign.doit_run import PriorityReady


def node(name):
    return SimpleNamespace(task=SimpleNamespace(name=name))


def test_ready_queue_pops_the_highest_priority_first_and_ties_in_arrival_order():
    # (remaining path, what of it lies after the task): equal paths go by the second
    priorities = {"short": (1.0, 0.0), "long": (9.5, 0.0), "long2": (9.5, 0.0),
                  "feeds": (9.5, 8.0)}
    ready = PriorityReady(lambda name: priorities.get(name, (0.0, 0.0)))
    for name in ("short", "plain", "long", "long2", "feeds"):
        ready.append(node(name))
    assert len(ready) == 5 and ready
    assert [ready.popleft().task.name for _ in range(5)] == \
        ["feeds", "long", "long2", "short", "plain"]
    assert not ready
    fifo = PriorityReady()            # no campaign: doit's own first-come order
    for name in ("b", "a", "c"):
        fifo.append(node(name))
    assert [fifo.popleft().task.name for _ in range(3)] == ["b", "a", "c"]


def test_doit_run_is_the_priority_run_in_an_orchestrated_project(project):
    """minicalc's pyproject registers the command, as this repository's does: every
    end-to-end test of the orchestrator runs through it."""
    assert "run tasks (ready tasks dispatched by priority)" in project.doit("help", "run").stdout
    run = project.doit("-n", "2", "all")
    assert run.returncode == 0 and len(run.executed) == 4
