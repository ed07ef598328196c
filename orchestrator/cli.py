"""The `orchestrator` command: inspect and drive the curriculum described by graph.toml.

Exit codes are decided here: 0 ok, 1 a check found a problem, 3 bad input (a bad
graph.toml, an unknown module, a usage error), always one `error: ...` line on stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import export as export_mod
from .graph import GraphError, ModuleGraph, find_root, load

DISTRIBUTION = "progressive-orchestrator"


class UserError(click.ClickException):
    """Printed as one line, exit code 3: the user's input was wrong, not the tool."""
    exit_code = 3

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class OneLineUsage:
    """Click's usage errors (unknown option or command, bad choice, missing argument) as
    UserErrors too: one line and exit 3, instead of click's usage block and exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            path = f"{parent.command_path} {info_name}" if parent else info_name
            raise usage_error(e, path) from None


class Command(OneLineUsage, click.Command):
    pass


class Commands(OneLineUsage, click.Group):
    command_class = Command
    group_class = type          # subgroups (cache) are Commands too

    def main(self, *args, **kwargs):
        kwargs.setdefault("prog_name", "orchestrator")   # not "python -m orchestrator"
        return super().main(*args, **kwargs)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:      # resolving the command name
            raise usage_error(e, ctx.command_path) from None


def usage_error(error: click.UsageError, path: str) -> UserError:
    ctx = error.ctx
    if ctx is not None:
        path = ctx.command_path
    if isinstance(error, click.exceptions.NoArgsIsHelpError) or \
            error.message == "Missing command.":
        message = f"missing command (one of: {', '.join(ctx.command.list_commands(ctx))})"
    else:
        message = " ".join(error.format_message().split())
    return UserError(f"{path}: {message} (see '{path} --help')")


def load_graph(root: Path | None):
    """The validated graph of `root`, or of the checkout around the current folder."""
    try:
        return load(find_root(Path.cwd()) if root is None else root)
    except GraphError as e:
        raise UserError(str(e)) from None


def print_version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    import importlib.metadata
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = f"unknown ({DISTRIBUTION} is not installed; pip install -e .)"
    click.echo(f"{ctx.find_root().info_name} {version}")
    ctx.exit()


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project root holding graph.toml [default: the nearest folder holding "
                   "graph.toml, here or above].")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=print_version, help="Show the version and exit.")
@click.pass_context
def main(ctx, root):
    """Inspect and drive a progressive curriculum described by graph.toml.

    Tests are run by doit, from the checkout:

    \b
      doit all               export and test every module, in dependency order
      doit test:NN           module NN, after the tests of what it builds on
      doit -n 2 all          independent branches side by side
      doit list              every export:NN and test:NN task

    These commands inspect the graph and the last results. Exit codes: 0 ok,
    1 a check found a problem, 3 bad input (one line on stderr).
    """
    ctx.obj = root


@main.command()
@click.argument("modules", nargs=-1)
@click.option("--force", is_flag=True, help="Overwrite generated files edited by hand.")
@click.pass_obj
def export(root, modules, force):
    """Export module sources into the package (all modules, or the ones named)."""
    graph = load_graph(root)
    try:
        ids = [graph.resolve(m) for m in modules] or list(graph.modules)
        for mid in ids:
            target = export_mod.export_module(graph[mid], graph, force=force)
            click.echo(f"exported {mid} -> {target.relative_to(graph.root)}")
    except (GraphError, export_mod.ExportError) as e:
        raise UserError(str(e)) from None


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json", "html"]),
              default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--focus", help="Highlight this module's dependency closure and dependents.")
@click.option("--strict", is_flag=True, help="Draw the classroom order (N after all of 1..N-1).")
@click.pass_obj
def graph(root, fmt, output, focus, strict):
    """Draw the module graph, coloured by each module's last test status."""
    from .render import RENDERERS, make_view
    from .status import all_states
    if output:
        writable(output)
    g = load_graph(root)
    view = make_view(g, all_states(g), strict=strict, focus=resolve(g, focus) if focus else None)
    text = RENDERERS[fmt](view)
    if output:
        from .files import atomic_write
        try:
            atomic_write(output, text)
        except OSError as e:
            raise UserError(f"cannot write {output}: {e.strerror}") from None
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=not text.endswith("\n"))


@main.command()
@click.pass_obj
def check(root):
    """Validate graph.toml, then check that every module imports only what it builds on."""
    from .init import missing_setup
    from .layering import check as layering_check
    g = load_graph(root)
    violations = layering_check(g)
    for v in violations:
        click.echo(str(v), err=True)
    problems = missing_setup(g.root)
    for problem in problems:
        click.echo(f"doit setup: {problem}", err=True)
    if violations or problems:
        raise SystemExit(1)
    click.echo(f"graph.toml ok; layering ok: {len(g.modules)} modules import only their "
               "dependency closure")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True)
@click.option("--check", "strict", is_flag=True,
              help="Fail if a module has no passing test in a category it requires.")
@click.pass_obj
def coverage(root, fmt, strict):
    """Modules x testing-plan categories: passing tests per cell, from the last runs."""
    from . import coverage as cov
    g = load_graph(root)
    cells = cov.matrix(g)
    click.echo(cov.to_json(g, cells) if fmt == "json" else
               cov.to_text(g, cells, markdown=fmt == "markdown"))
    gaps = cov.missing(g, cells)
    if strict and gaps:
        for gap in gaps:
            click.echo(f"missing: {gap} (required by graph.toml, no passing test)", err=True)
        raise SystemExit(1)


@main.command()
@click.option("--since", required=True, help="A git revision: compare the work tree with it.")
@click.option("--run", "run_them", is_flag=True, help="Run just those test targets with doit.")
@click.pass_obj
def affected(root, since, run_them):
    """The test targets whose inputs changed since a git revision, and their dependents."""
    import subprocess
    from .affected import GitError, affected as find
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


@main.command("ci-matrix")
@click.option("--since", help="Only the targets affected since this git revision.")
@click.pass_obj
def ci_matrix(root, since):
    """A GitHub Actions matrix (JSON): one job per independent branch of the graph."""
    from .affected import GitError, affected as find
    from .ci_matrix import matrix_json
    g = load_graph(root)
    try:
        selected = find(g, since) if since else list(g.modules)
    except GitError as e:
        raise UserError(str(e)) from None
    click.echo(matrix_json(g, selected))


@main.group()
def cache():
    """Share passing results across machines through a directory, keyed by content."""


@cache.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def cache_export(root, directory):
    """Copy every passing result into DIRECTORY (one file per content key)."""
    from .remote_cache import export_results
    done = export_results(load_graph(root), directory)
    click.echo(f"exported {len(done)} passing results to {directory}")


@cache.command("import")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.pass_obj
def cache_import(root, directory):
    """Install results from DIRECTORY whose key equals the current key of their module."""
    from .remote_cache import import_results
    outcome = import_results(load_graph(root), directory)
    for mid, what in outcome.items():
        click.echo(f"{mid}: {what}")
    imported = sum(1 for w in outcome.values() if w == "imported")
    click.echo(f"imported {imported} of {len(outcome)} results")


def writable(output: Path) -> None:
    """Refuse an output file whose folder is missing (rather than create a mistyped one)."""
    folder = output.parent
    if not folder.exists():
        raise UserError(f"cannot write {output}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"cannot write {output}: {folder} is not a folder")


def resolve(graph: ModuleGraph, name: str) -> str:
    try:
        return graph.resolve(name.removeprefix("test:"))
    except GraphError as e:
        raise UserError(str(e)) from None


@main.command()
@click.pass_obj
def status(root):
    """Every module's last result, test counts, duration and age."""
    from .status import all_states
    graph = load_graph(root)
    rows = [("module", "state", "tests", "failed", "duration", "age")]
    for mid, state in all_states(graph).items():
        r = state.result
        rows.append((mid, state.state,
                     str(sum(r.counts.values())) if r else "-",
                     str(len(r.failures)) if r else "-",
                     f"{r.duration:.1f}s" if r else "-",
                     age(r.finished) if r else "-"))
    click.echo(table(rows))
    from .store import Store
    offenders = sorted(Store(graph.root).flaky_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    if offenders:
        click.echo("\nflaky tests (times they failed, then passed on a retry):")
        for nodeid, times in offenders:
            click.echo(f"  {times:>3}  {nodeid}")


@main.command()
@click.argument("target")
@click.option("--pytest", "pytest_args", default="", help="pytest arguments of the next run.")
@click.pass_obj
def why(root, target, pytest_args):
    """Will the next run reuse TARGET's result (test:NN)? If not, which inputs changed."""
    from .options import BadOption, split_pytest_args
    from .status import target_state
    try:
        args = list(split_pytest_args(pytest_args, "--pytest"))
    except BadOption as e:
        raise UserError(str(e)) from None
    graph = load_graph(root)
    mid = resolve(graph, target)
    state = target_state(graph, mid, args)
    for line in explain(state):
        click.echo(line)


def explain(state) -> list[str]:
    r, target = state.result, f"test:{state.module}"
    if r is None:
        return [f"{target} will run: it has no stored result ({state.state})"]
    when = f"{age(r.finished)} ago, {r.duration:.1f}s"
    if state.reusable:
        return [f"{target} will reuse its result: passed {when}; none of its "
                f"{len(r.inputs)} inputs changed"]
    if r.passed:
        head = (f"{target} will re-run: {len(state.changes)} input(s) changed since it passed "
                f"({when}):")
    else:
        head = (f"{target} will re-run: its last run failed ({r.reason}, {when}); failed runs "
                "are never reused")
        if state.changes:
            head += f". Changed since the last pass: {len(state.changes)}"
        elif not state.ever_passed:
            head += ". It never passed"
    return [head] + [f"  {kind:8} {name}" for name, kind in state.changes]


def age(timestamp: float) -> str:
    import time
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


@main.command()
@click.argument("targets", nargs=-1)
@click.option("--debounce", type=click.FloatRange(min=0.01), default=0.2, show_default=True,
              help="Seconds without a new change before a cycle starts.")
@click.pass_obj
def watch(root, targets, debounce):
    """Run doit now and after every saved edit, until Ctrl-C (exit 130).

    TARGETS are doit's: all (the default), test:NN, export:NN, and variables
    (pytest="-x"). Each cycle is `doit TARGETS`: what the edit affects runs, the rest
    is (cached) PASSED; a cycle's exit code is shown and the watch goes on."""
    from . import watch as watching
    graph = load_graph(root)
    try:
        args = watching.doit_arguments(graph, targets)
        watching.notifier()
    except watching.WatchError as e:
        raise UserError(str(e)) from None
    raise SystemExit(watching.watch(graph, args, debounce=debounce))


@main.command("init")
@click.argument("directory", required=False,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--sources", metavar="GLOB",
              help="The module folders (or source files), relative to DIRECTORY "
                   "[default: modules/NN_*, else src/NN_*].")
@click.option("--tests", "tests_dir", metavar="DIR", default="tests", show_default=True,
              help="The folder holding one test folder per module.")
@click.option("--package", metavar="NAME",
              help="The package the modules export into [default: the one their "
                   "imports name].")
@click.pass_obj
def init_command(root, directory, sources, tests_dir, package):
    """Write graph.toml and dodo.py for the module sources and tests in DIRECTORY
    [default: here]: deps from the imports, tests paired by number and name. Never
    overwrites a file."""
    from . import init as init_mod
    try:
        lines = init_mod.init(directory or root or Path("."), sources, tests_dir, package)
    except init_mod.InitError as e:
        raise UserError(str(e)) from None
    for line in lines:
        click.echo(line)


@main.command()
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
    from . import ci_report
    if junit:
        writable(junit)
    graph = load_graph(root)
    targets = ci_report.from_last_run(graph)
    if not targets:
        raise UserError("nothing to report: no run recorded in .orchestrator/last_run.json "
                        "(run doit first)")
    if junit:
        from .junit import write_junit     # xml.etree only when a JUnit report is asked for
        try:
            write_junit(junit, targets)
        except OSError as e:
            raise UserError(f"cannot write {junit}: {e.strerror}") from None
    if for_github:
        problem = ci_report.github(targets, graph.root, os.environ,
                                   lambda line: click.echo(line, nl=False))
        if problem:
            click.echo(f"warning: {problem}", err=True)
    else:
        click.echo(ci_report.summary_markdown(targets), nl=False)
    if junit:
        click.echo(f"wrote {junit} ({len(targets)} test suites)")


if __name__ == "__main__":
    sys.exit(main())
