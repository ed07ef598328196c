"""The commands for CI: ci-matrix plans the jobs (one per independent branch of the graph),
report tells what the last run did (Markdown, JUnit XML, GitHub annotations)."""
from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.errors import UserError
from orchestrator.cli.group import cli
from orchestrator.cli.inputs import load_graph
from orchestrator.core.state import StateDir


@cli.command("ci-matrix")
@click.option("--since", help="Only the targets affected since this git revision.")
@click.pass_obj
def ci_matrix(root, since):
    """A GitHub Actions matrix (JSON): one job per independent branch of the graph."""
    from orchestrator.cache.affected import GitError
    from orchestrator.cache.affected import affected as find
    from orchestrator.course.ci_matrix import matrix_json
    g = load_graph(root)
    try:
        selected = find(g, since) if since else list(g.modules)
    except GitError as e:
        raise UserError(str(e)) from None
    click.echo(matrix_json(g, selected))


@cli.command()
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged JUnit XML of the last run to this file.")
@click.option("--github", "for_github", is_flag=True,
              help="GitHub Actions: an ::error annotation per failure on standard output, "
                   "and the table appended to $GITHUB_STEP_SUMMARY.")
@click.pass_obj
def report(root, junit, for_github):
    """The last run for CI, from the stored results and last_run.json: a Markdown table
    (module, status, tests, duration) on standard output, JUnit XML, GitHub annotations.

    A doit run writes the same JUnit XML at its end with junit=FILE, and annotates by
    itself under GitHub Actions: use --github only where the run did not. Exit 0 when
    the report was made, whatever the run's outcome."""
    import os

    from orchestrator.report import ci_report
    graph = load_graph(root)
    targets = ci_report.from_last_run(graph)
    if not targets:
        raise UserError("nothing to report: no run recorded in .orchestrator/last_run.json "
                        "(run doit first)")
    if junit:      # its folder is created, as pytest's --junitxml and doit's junit= do
        problem = ci_report.write_junit_report(junit, targets)
        StateDir(graph.root).record_written(Path(junit))
        if problem:
            raise UserError(f"cannot write {junit}: {problem}")
    if for_github:
        problem = ci_report.github(targets, graph.root, os.environ,
                                   lambda line: click.echo(line, nl=False))
        if problem:
            click.echo(f"warning: {problem}", err=True)
    else:
        click.echo(ci_report.summary_markdown(targets), nl=False)
    if junit:
        click.echo(f"wrote {junit} ({len(targets)} test suites)")
