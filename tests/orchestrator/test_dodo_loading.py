"""Loading dodo.py has no side effects: every doit command loads it (`doit list`, `doit
help`, tab completion), so making the campaign only reads graph.toml and the command
line's variables. No stored result is read until a run dispatches, nothing is written,
no global is set, and sys.argv is not parsed: doit's loader hands the campaign over."""
from __future__ import annotations

import subprocess
import sys

import pytest
from doit import doit_cmd
from doit.exceptions import InvalidDodoFile

from orchestrator.campaign.doit_run import CAMPAIGN
from orchestrator.campaign.tasks import Campaign
from orchestrator.report import console, run_context

# doit's own main, with every touch of the state dir (.orchestrator/) said on stderr
WATCHED_DOIT = """\
import sys

def watch(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and \\
            ".orchestrator" in str(args[0]):
        sys.stderr.write(f"STATE {event} {args[0]}\\n")

sys.addaudithook(watch)
from doit.doit_cmd import DoitMain
sys.exit(DoitMain().run(sys.argv[1:]))
"""


def watched(project, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    run = subprocess.run([sys.executable, "-c", WATCHED_DOIT, *args], cwd=project.root,
                         env=project.env(), capture_output=True, text=True, timeout=300)
    return run, [line for line in run.stderr.splitlines() if line.startswith("STATE ")]


def test_listing_and_help_read_no_stored_result(warm):
    # the course registers the orchestrator's help, as `orchestrator init` writes it
    assert 'help = "orchestrator.campaign.doit_run:Help"' in warm.read("pyproject.toml")
    for args in (("list",), ("list", "--all"), ("help", "test"), ("info", "all"),
                 ("list", "strict=1")):
        run, touched = watched(warm, *args)
        assert run.returncode == (1 if args[0] == "info" else 0), run.stderr  # `all`: not run
        assert touched == [], f"doit {' '.join(args)} read the state dir: {touched}"
    # the watch sees what a run reads: a run reads the stored results
    run, touched = watched(warm, "all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert any("/results/" in line for line in touched), run.stderr


def test_making_the_campaign_parses_no_argv_sets_no_global_writes_nothing(project, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["doit", "test:nosuch", "stirct=1"])   # not read
    monkeypatch.setattr(doit_cmd, "_CMDLINE_VARS", {"strict": "1"})        # doit's, read
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    campaign = Campaign(project.root)
    assert campaign.strict is True
    assert campaign.doit_config()[CAMPAIGN] is campaign     # doit's loader hands it over
    assert not hasattr(run_context, "ACTIVE_CAMPAIGN")
    assert not hasattr(console, "active_campaign")
    assert list(campaign.all_task()["task_dep"]) and list(campaign.test_tasks())
    assert sorted(p.relative_to(project.root) for p in project.root.rglob("*")) == before
    assert not (project.root / ".orchestrator").exists()


@pytest.mark.parametrize("variables, line", [
    ({"stirct": "1"}, "stirct: unknown variable (did you mean strict?) (known: pytest, "
                      "strict, flaky_attempts, lock, xdist, launcher, junit)"),
    ({"lock": "maybe"}, "lock=maybe: expected one of wait, fail"),
])
def test_a_bad_variable_is_one_line(project, monkeypatch, variables, line):
    monkeypatch.setattr(doit_cmd, "_CMDLINE_VARS", variables)
    with pytest.raises(InvalidDodoFile) as info:
        Campaign(project.root)
    assert str(info.value) == line


def test_task_names_are_resolved_by_the_commands_not_by_loading(project):
    run = project.doit("list", "--all")                       # no name to resolve
    assert run.returncode == 0 and "test:03_mul" in run.stdout
    typo = project.doit("test:mull")
    assert (typo.returncode, typo.stderr) == (
        3, "ERROR: unknown task 'test:mull' (did you mean test:03_mul?)\n")
    bad = project.doit("all", "nosuch=1")
    assert bad.returncode == 3 and len(bad.stderr.splitlines()) == 1, bad.stderr
    assert bad.stderr.startswith("ERROR: nosuch: unknown variable")
