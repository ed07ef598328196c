"""A test target that runs alone uses every core (xdist), one that shares them does not.

With `doit -n 2` on 2 cores, cores // doit workers is 1: before, no module ever got
xdist workers, not even the last one of a run, alone on the machine. Whether a target
runs alone is decided from which targets have ended (never from a clock), and whether
xdist pays from the recorded durations, made long here so that the policy wants it.
"""
from __future__ import annotations

import os

import pytest

from orchestrator.cache.store import Store

XDIST_LINE = "orchestrator: pytest -n 2 (xdist workers)"

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores")


def recorded_long(project, module_id: str) -> None:
    """Its last result says 30 s of many short tests: what the policy gives workers to."""
    store = Store(project.root)
    result = next(store.recently_used(module_id))
    result.duration = 30.0
    result.tests = {f"{project.test_file(module_id)}::test_{i}":
                    {"outcome": "passed", "duration": 0.5} for i in range(60)}
    store.save(result)


def log(project, module_id: str) -> str:
    return project.state.log(module_id).read_text(encoding="utf-8")


def test_a_target_whose_deps_are_done_runs_alone_with_every_core(warm):
    recorded_long(warm, "04_power")
    # one more passing test: a new key, so the module runs, with its long record kept
    warm.append(warm.test_file("04_power"), "\n\ndef test_more():\n    assert True\n")
    run = warm.doit("-n", "2", "test:04_power")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == {"04_power"}                 # 01, 02 and 03 were cached
    assert XDIST_LINE in log(warm, "04_power"), log(warm, "04_power")
    assert "bringing up nodes" in log(warm, "04_power")


def test_the_overrides_still_decide(warm):
    recorded_long(warm, "04_power")
    # one more passing test: a new key, so the module runs, with its long record kept
    warm.append(warm.test_file("04_power"), "\n\ndef test_more():\n    assert True\n")
    run = warm.doit("-n", "2", "test:04_power", "xdist=never")
    assert run.returncode == 0 and run.executed == {"04_power"}, run.stdout + run.stderr
    assert "xdist" not in log(warm, "04_power")


# Each test waits until the other module's test has started: the two targets run at once,
# so neither can have ended when the other starts (a barrier, not a clock).
BARRIER = """

def test_meets_the_other_module(tmp_path_factory):
    import time
    from pathlib import Path
    meeting = Path({meeting!r})
    (meeting / {me!r}).touch()
    for _ in range(1200):
        if (meeting / {other!r}).exists():
            return
        time.sleep(0.05)
    raise AssertionError("the other module never started")
"""


def test_two_targets_that_run_side_by_side_share_the_cores(warm, tmp_path):
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    for me, other in (("02_add", "03_mul"), ("03_mul", "02_add")):
        recorded_long(warm, me)
        warm.append(warm.test_file(me), BARRIER.format(meeting=str(meeting), me=me,
                                                       other=other))
    run = warm.doit("-n", "2", "test:02_add", "test:03_mul")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == {"02_add", "03_mul"}
    for module_id in ("02_add", "03_mul"):
        assert "xdist" not in log(warm, module_id), log(warm, module_id)
