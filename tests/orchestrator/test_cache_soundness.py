"""Cache soundness: 60 seeded random edits, each followed by `doit all` on minicalc.

After every edit the executed targets equal the model's affected set exactly and no
broken test is ever reported as passing (0 stale results). bench/cache_soundness.py
runs a bigger campaign."""
from __future__ import annotations

from tests.orchestrator.soundness import Campaign, run_campaign, summarize, switch_arguments


def test_sixty_random_edits_run_exactly_what_they_affect(project):
    log = run_campaign(project, edits=60, seed=20261205)
    kinds = summarize(log)
    assert len(log) == 60
    # the seed exercises every kind of edit: declared and undeclared inputs, the tree, the
    # environment, scoped and ignored files
    assert set(kinds) == set(Campaign.KINDS), kinds


def test_narrowed_and_full_runs_switch_back_and_forth_from_the_cache(project):
    Campaign.prepare(project)
    log = switch_arguments(project)
    assert len(log) == 6
