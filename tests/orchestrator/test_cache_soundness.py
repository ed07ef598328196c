"""Cache soundness: 50 seeded random edits, each followed by `doit all` on minicalc.

After every edit the executed targets equal the model's affected set exactly and no
broken test is ever reported as passing (0 stale results). bench/cache_soundness.py
runs a bigger campaign."""
from __future__ import annotations

from tests.orchestrator.soundness import run_campaign, summarize


def test_fifty_random_edits_run_exactly_what_they_affect(project):
    log = run_campaign(project, edits=50, seed=20261125)
    kinds = summarize(log)
    assert len(log) == 50
    # the seed exercises every kind of edit, including breaking and repairing tests
    assert set(kinds) == {"export", "demo_cell", "test", "conftest", "graph_entry", "break",
                          "repair"}, kinds
