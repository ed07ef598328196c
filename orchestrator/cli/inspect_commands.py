"""The commands that inspect the graph and the last results, and change nothing: graph,
check, coverage, status, why. (Their imports are inside them: `orchestrator --help` and
every other command start without them.)"""
from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.errors import UserError
from orchestrator.cli.group import cli
from orchestrator.cli.inputs import load_graph, resolve, writable
from orchestrator.cli.result_lines import age, explain, table
from orchestrator.core.graph import ModuleGraph


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json", "html"]),
              default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--focus", help="Highlight this module's dependency closure and dependents.")
@click.option("--strict", is_flag=True, help="Draw the classroom order (N after all of 1..N-1).")
@click.pass_obj
def graph(root, fmt, output, focus, strict):
    """Draw the module graph, coloured by each module's last test status."""
    from orchestrator.report.status import all_states
    from orchestrator.views.render import RENDERERS, make_view
    if output:
        writable(output)
    g = load_graph(root)
    view = make_view(g, all_states(g), strict=strict, focus=resolve(g, focus) if focus else None)
    text = RENDERERS[fmt](view)
    if output:
        from orchestrator.core.files import atomic_write
        try:
            atomic_write(output, text)
        except OSError as e:
            raise UserError(f"cannot write {output}: {e.strerror}") from None
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=not text.endswith("\n"))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: every finding, grouped, for tools.")
@click.pass_obj
def check(root, fmt):
    """Validate graph.toml, then check that every module imports only what it builds on,
    that doit is set up, and that no run read what graph.toml rules out for it.

    Findings are grouped by kind and module, the worst kind first: each group's header,
    with its count and what it does to a run, and the closing count go to standard
    output; each finding, one line, to standard error. Exit 1 if anything is found."""
    import json

    from orchestrator.course.init import missing_setup
    from orchestrator.course.layering import Finding, Kind, groups, summary
    from orchestrator.course.layering import check as layering_check
    g = load_graph(root)
    found = [Finding(Kind.SETUP, None, f"doit setup: {p}") for p in missing_setup(g.root)]
    found += [Finding.of(v) for v in layering_check(g)]
    found += [Finding(Kind.UNDECLARED_READ, _reader(g, line), line)
              for line in undeclared_reads(g)]
    grouped = groups(found, g)
    if fmt == "json":
        click.echo(json.dumps({"ok": not found, "count": len(found),
                               "groups": [group.as_json() for group in grouped]}, indent=1))
    else:
        for group in grouped:
            click.echo(group.header())
            for finding in group.findings:
                click.echo(finding.text, err=True)
        if grouped:
            click.echo(summary(grouped))
    if found:
        raise SystemExit(1)
    if fmt == "text":
        click.echo(f"graph.toml ok; layering ok: {len(g.modules)} modules import only their "
                   "dependency closure")


def _reader(graph: ModuleGraph, line: str) -> str | None:
    """The module an `undeclared read: NN_name read ...` line is about."""
    return next((m.id for m in graph if line.startswith(f"undeclared read: {m.id} read ")),
                None)


def undeclared_reads(graph: ModuleGraph) -> list[str]:
    """One line per file a module's latest run read that graph.toml rules out for it
    (keys.undeclared_reads): such a result is never reused until the file is declared.
    Each read is judged by today's graph.toml: one declared since that run is no finding
    (the module's key changed with it, so its next run runs)."""
    from orchestrator.cache.keys import scope_of
    from orchestrator.cache.store import Store
    store = Store(graph.root, repair=False)
    scope = scope_of(graph)
    lines = []
    for m in graph:
        latest = store.latest(m.id)
        for read in latest.undeclared if latest else []:
            why = scope.outside(read["file"], m.id)
            if why:
                lines.append(f"undeclared read: {m.id} read {read['file']}, but {why}")
    return lines


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True)
@click.option("--check", "strict", is_flag=True,
              help="Fail if a module has no passing test in a category it requires.")
@click.pass_obj
def coverage(root, fmt, strict):
    """Modules x testing-plan categories: passing tests per cell, from the last runs."""
    from orchestrator.report import coverage as cov
    g = load_graph(root)
    cells = cov.matrix(g)
    click.echo(cov.to_json(g, cells) if fmt == "json" else
               cov.to_text(g, cells, markdown=fmt == "markdown"))
    gaps = cov.missing(g, cells)
    if strict and gaps:
        for gap in gaps:
            click.echo(f"missing: {gap} (required by graph.toml, no passing test)", err=True)
        raise SystemExit(1)


@cli.command()
@click.pass_obj
def status(root):
    """Every module's state and its last result: test counts (the same as doit's lines),
    duration and age; skipped tests by reason. A blocked module shows what blocks it, no
    figures of an older run."""
    from orchestrator.cache.store import Store
    from orchestrator.cache.tally import Bucket, Tally
    from orchestrator.report.status import State, all_states, blockers
    graph = load_graph(root)
    states = all_states(graph)
    rows: list[tuple[str, ...]] = [("module", "state", "tests", "passed", "failed", "skipped",
                                    "not-run", "duration", "age", "")]
    skipped = []
    for mid, state in states.items():
        r = None if state.state is State.BLOCKED else state.result
        if r is None:
            by = blockers(graph, states, mid) if state.state is State.BLOCKED else []
            rows.append((mid, state.state, *["-"] * 7, f"(by {', '.join(by)})" if by else ""))
            continue
        tally = Tally.of(r)
        rows.append((mid, state.state, str(tally.selected),
                     *(str(tally[b]) for b in (Bucket.PASSED, Bucket.FAILED, Bucket.SKIPPED,
                                               Bucket.NOT_RUN)),
                     f"{r.duration:.1f}s", age(r.finished), ""))
        skipped += [f"  {mid}  {line}" for line in tally.skip_lines()]
    click.echo(table(rows))
    if skipped:
        click.echo("\nskipped tests, by reason:\n" + "\n".join(skipped))
    offenders = sorted(Store(graph.root).flaky_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    if offenders:
        click.echo("\nflaky tests (times they failed, then passed on a retry):")
        for nodeid, times in offenders:
            click.echo(f"  {times:>3}  {nodeid}")


@cli.command()
@click.argument("target")
@click.option("--pytest", "pytest_args", default=None,
              help="pytest arguments of the next run [default: those of the last run].")
@click.pass_obj
def why(root, target, pytest_args):
    """Will the next run reuse TARGET's result (test:NN)? If not, which inputs changed; if
    it failed, what failed, where, and the command that checks a fix."""
    from orchestrator.campaign.options import BadOption, split_pytest_args
    from orchestrator.report.status import (
        State,
        all_states,
        blockers,
        last_pytest_args,
        target_state,
    )
    try:
        args = None if pytest_args is None else list(split_pytest_args(pytest_args,
                                                                        "--pytest"))
    except BadOption as e:
        raise UserError(str(e)) from None
    graph = load_graph(root)
    mid = resolve(graph, target)
    state = target_state(graph, mid, args)
    by = blockers(graph, all_states(graph, args), mid) if state.state is State.BLOCKED else []
    lines = explain(state, graph.root, blocked_by=by)
    implied = last_pytest_args(graph.root, mid) if args is None else []
    if implied:       # say which run the answer is about
        import shlex
        lines[0] += f" (with pytest={shlex.quote(shlex.join(implied))}, as its last run)"
    for line in lines:
        click.echo(line)
