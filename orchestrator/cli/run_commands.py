"""The commands that run tests or decide what the next run runs: affected (and runs them),
watch, rerun, forget."""
from __future__ import annotations

import sys

import click

from orchestrator.cli.errors import UserError
from orchestrator.cli.group import cli
from orchestrator.cli.inputs import load_graph, resolve


@cli.command()
@click.option("--since", required=True, help="A git revision: compare the work tree with it.")
@click.option("--run", "run_them", is_flag=True, help="Run just those test targets with doit.")
@click.pass_obj
def affected(root, since, run_them):
    """The test targets whose inputs changed since a git revision, and their dependents."""
    import subprocess

    from orchestrator.cache.affected import GitError
    from orchestrator.cache.affected import affected as find
    g = load_graph(root)
    try:
        targets = find(g, since)
    except GitError as e:
        raise UserError(str(e)) from None
    for mid in targets:
        click.echo(f"test:{mid}")
    if run_them and targets:
        doit = [sys.executable, "-m", "doit", *[f"test:{m}" for m in targets]]
        raise SystemExit(subprocess.call(doit, cwd=g.root))


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--debounce", type=click.FloatRange(min=0.01), default=0.2, show_default=True,
              help="Seconds without a new change before a cycle starts.")
@click.pass_obj
def watch(root, targets, debounce):
    """Run doit now and after every saved edit, until Ctrl-C (exit 130).

    TARGETS are doit's: all (the default), test:NN, export:NN, and variables
    (pytest="-x"). Each cycle is `doit TARGETS`: what the edit affects runs, the rest
    is (cached) PASSED; a cycle's exit code is shown and the watch goes on."""
    from orchestrator.cli import watch as watching
    graph = load_graph(root)
    try:
        args = watching.doit_arguments(graph, targets)
        watching.notifier()
    except watching.WatchError as e:
        raise UserError(str(e)) from None
    raise SystemExit(watching.watch(graph, args, debounce=debounce))


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--pytest", "pytest_args", default=None,
              help="pytest arguments [default: those of the run that failed].")
@click.pass_obj
def rerun(root, targets, pytest_args):
    """Run tests again as the orchestrator ran them, after exporting the current sources,
    from any folder inside the checkout. TARGETS: test ids (tests/.../test_x.py::test_y),
    or a module (NN, test:NN) for the tests that failed in its last run. Exit code:
    pytest's (0 when they pass)."""
    import subprocess

    from orchestrator.cache.store import Store
    from orchestrator.campaign.options import BadOption, split_pytest_args
    from orchestrator.run import verdict
    graph = load_graph(root)
    ids, args = [], []
    for name in targets:
        if "::" in name or name.endswith(".py") or "/" in name:
            ids.append(name)
            continue
        mid = resolve(graph, name)
        last = next(Store(graph.root, repair=False).recently_used(mid), None)
        if last is None or last.passed:
            raise UserError(f"test:{mid} did not fail in its last run: nothing to rerun "
                            f"(`doit test:{mid}` runs it)")
        ids += [f.nodeid for f in verdict.failures(last)]
        args = verdict.pytest_args_of(last)
    try:
        args = args if pytest_args is None else list(split_pytest_args(pytest_args, "--pytest"))
    except BadOption as e:
        raise UserError(str(e)) from None
    click.echo(f"rerun: {verdict.rerun_command(graph.root, ids, args)}", err=True)
    command = [sys.executable, "-m", "pytest", "-p", verdict.PLUGIN, *ids, *args]
    raise SystemExit(subprocess.call(command, cwd=graph.root))


@cli.command()
@click.argument("modules", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Forget every module's results.")
@click.pass_obj
def forget(root, modules, everything):
    """Drop the stored results of MODULES (NN, test:NN), so their next run runs their tests
    instead of reusing a pass. `doit -a test:NN` re-runs NN and what it builds on at once.
    (A remote cache may still hold a pass with the same key.)"""
    from orchestrator.report.status import forget as drop
    from orchestrator.report.status import forgotten
    graph = load_graph(root)
    if not modules and not everything:
        raise UserError("orchestrator forget: name the modules (NN or test:NN), or --all "
                        "(see 'orchestrator forget --help')")
    ids = list(graph.modules) if everything else [resolve(graph, m) for m in modules]
    for mid in ids:
        click.echo(forgotten(mid, drop(graph.root, mid)))
