"""The `orchestrator` command: inspect and drive the curriculum described by graph.toml.

Exit codes are decided here: 0 ok, 1 a check found a problem, 3 bad input (a bad
graph.toml, an unknown module, a usage error), always one `error: ...` line on stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.cli.result_lines import age, explain, table
from orchestrator.core import export as export_mod
from orchestrator.core.graph import GraphError, ModuleGraph, find_root, load
from orchestrator.core.state import StateDir

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

    def __init__(self, *args, **kwargs):
        # No command: click 8.1 prints the help (exit 0), 8.2 raises NoArgsIsHelpError, and
        # options alone (`--root x`) fail in English. Instead the group is invoked without
        # one and says so itself (missing_command), alike in every click 8.
        kwargs.setdefault("invoke_without_command", True)
        kwargs.setdefault("subcommand_metavar", "COMMAND [ARGS]...")   # not "[COMMAND]"
        super().__init__(*args, **kwargs)
        callback = self.callback

        def needs_a_command(*args, **kwargs):
            ctx = click.get_current_context()
            if ctx.invoked_subcommand is None:
                raise missing_command(ctx)
            return None if callback is None else callback(*args, **kwargs)
        self.callback = needs_a_command

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
    message = " ".join(error.format_message().split())
    return UserError(f"{path}: {message} (see '{path} --help')")


def missing_command(ctx: click.Context) -> UserError:
    path, commands = ctx.command_path, ctx.command.list_commands(ctx)
    return UserError(f"{path}: missing command (one of: {', '.join(commands)}) "
                     f"(see '{path} --help')")


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
    from orchestrator.views.render import RENDERERS, make_view
    from orchestrator.report.status import all_states
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


@main.command()
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
    from orchestrator.course.layering import Finding, Kind, check as layering_check, groups, summary
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


def _reader(graph, line: str) -> str | None:
    """The module an `undeclared read: NN_name read ...` line is about."""
    return next((m.id for m in graph if line.startswith(f"undeclared read: {m.id} read ")),
                None)


def undeclared_reads(graph) -> list[str]:
    """One line per file a module's latest run read that graph.toml rules out for it
    (keys.undeclared_reads): such a result is never reused until the file is declared."""
    from orchestrator.cache.store import Store
    store = Store(graph.root, repair=False)
    lines = []
    for m in graph:
        latest = store.latest(m.id)
        for read in latest.undeclared if latest else []:
            lines.append(f"undeclared read: {m.id} read {read['file']}, but {read['why']}")
    return lines


@main.command()
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


@main.command()
@click.option("--since", required=True, help="A git revision: compare the work tree with it.")
@click.option("--run", "run_them", is_flag=True, help="Run just those test targets with doit.")
@click.pass_obj
def affected(root, since, run_them):
    """The test targets whose inputs changed since a git revision, and their dependents."""
    import subprocess
    from orchestrator.cache.affected import GitError, affected as find
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
    from orchestrator.cache.affected import GitError, affected as find
    from orchestrator.course.ci_matrix import matrix_json
    g = load_graph(root)
    try:
        selected = find(g, since) if since else list(g.modules)
    except GitError as e:
        raise UserError(str(e)) from None
    click.echo(matrix_json(g, selected))


@main.group()
def cache():
    """Share passing results across machines through a directory of signed cache entries."""


def cache_key() -> bytes | None:
    """ORCHESTRATOR_CACHE_KEY, the key entries are signed and checked with (None: unset)."""
    import os
    from orchestrator.cache.remote_entry import ConfigError, signing_key
    try:
        return signing_key(os.environ)
    except ConfigError as e:
        raise UserError(str(e)) from None


@cache.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def cache_export(root, directory):
    """Write every passing result into DIRECTORY as a cache entry (ac/ and cas/, as on a
    server), signed with ORCHESTRATOR_CACHE_KEY; without the key the entries are unsigned
    and only `cache import --allow-unsigned` takes them. A result that names a path
    outside the project is not exported."""
    from orchestrator.cache.remote_cache import export_results
    key, graph = cache_key(), load_graph(root)
    try:
        done = export_results(graph, directory, key)
    except OSError as e:
        raise UserError(f"cannot write {directory}: {e.strerror or e}") from None
    for line in done.kept:
        click.echo(f"warning: {line}", err=True)
    if not done.signed:
        click.echo("note: ORCHESTRATOR_CACHE_KEY is not set: the entries are unsigned; "
                   "`orchestrator cache import` takes them only with --allow-unsigned", err=True)
    click.echo(f"exported {len(done.modules)} passing results to {directory}")


@cache.command("import")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--allow-unsigned", is_flag=True,
              help="Trust DIRECTORY: take entries without checking their signature (their "
                   "content hash, schema and inputs are still checked). Only for a directory "
                   "nobody else can write.")
@click.pass_obj
def cache_import(root, directory, allow_unsigned):
    """Install the entries of DIRECTORY whose signature checks with ORCHESTRATOR_CACHE_KEY
    and whose key equals the current key of their module."""
    from orchestrator.cache.remote_cache import Outcome, import_results
    from orchestrator.cache.remote_entry import Trust
    key, graph = cache_key(), load_graph(root)
    if key is None and not allow_unsigned:
        raise UserError("cache import: ORCHESTRATOR_CACHE_KEY is not set, so no entry can be "
                        "verified; set it to the key the entries were signed with, or pass "
                        f"--allow-unsigned to trust {directory}")
    trust = Trust.UNSIGNED if allow_unsigned else Trust.SIGNED
    try:
        outcome = import_results(graph, directory, key, trust)
    except OSError as e:
        raise UserError(f"cannot store an imported result: {e.strerror or e}") from None
    for entry in outcome:
        click.echo(f"{entry.module}: {entry}")
    imported = sum(1 for e in outcome if e.outcome is Outcome.IMPORTED)
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
    """Every module's state and its last result: test counts (the same as doit's lines),
    duration and age; skipped tests by reason. A blocked module shows what blocks it, no
    figures of an older run."""
    from orchestrator.report.status import all_states, blockers
    from orchestrator.cache.tally import Bucket, Tally
    graph = load_graph(root)
    states = all_states(graph)
    rows = [("module", "state", "tests", "passed", "failed", "skipped", "not-run", "duration",
             "age", "")]
    skipped = []
    for mid, state in states.items():
        r = None if state.state == "blocked" else state.result
        if r is None:
            by = blockers(graph, states, mid) if state.state == "blocked" else []
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
    from orchestrator.cache.store import Store
    offenders = sorted(Store(graph.root).flaky_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    if offenders:
        click.echo("\nflaky tests (times they failed, then passed on a retry):")
        for nodeid, times in offenders:
            click.echo(f"  {times:>3}  {nodeid}")


@main.command()
@click.argument("target")
@click.option("--pytest", "pytest_args", default=None,
              help="pytest arguments of the next run [default: those of the last run].")
@click.pass_obj
def why(root, target, pytest_args):
    """Will the next run reuse TARGET's result (test:NN)? If not, which inputs changed; if
    it failed, what failed, where, and the command that checks a fix."""
    from orchestrator.campaign.options import BadOption, split_pytest_args
    from orchestrator.report.status import last_pytest_args, target_state
    try:
        args = None if pytest_args is None else list(split_pytest_args(pytest_args,
                                                                        "--pytest"))
    except BadOption as e:
        raise UserError(str(e)) from None
    graph = load_graph(root)
    mid = resolve(graph, target)
    state = target_state(graph, mid, args)
    lines = explain(state, graph.root)
    implied = last_pytest_args(graph.root, mid) if args is None else []
    if implied:       # say which run the answer is about
        import shlex
        lines[0] += f" (with pytest={shlex.quote(shlex.join(implied))}, as its last run)"
    for line in lines:
        click.echo(line)


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
    from orchestrator.cli import watch as watching
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
              help="The module folders (or source files), relative to DIRECTORY; NN "
                   "stands for a module's number, as in 'src/NN_*' or 'nbs/NN_*.py' "
                   "[default: modules/NN_* or src/NN_*, whichever the tests import].")
@click.option("--tests", "tests_dir", metavar="DIR", default="tests", show_default=True,
              help="The folder holding one test folder per module.")
@click.option("--package", metavar="NAME",
              help="The package the modules export into [default: the one their "
                   "imports name].")
@click.pass_obj
def init_command(root, directory, sources, tests_dir, package):
    """Write graph.toml and dodo.py for the module sources and tests in DIRECTORY
    [default: here], and register doit's run command (a doit.cfg): modules in number
    order, deps from the imports of earlier modules, tests paired by number and name.
    It says what it chose and why; an import of a later module is listed, not a dep.
    Never overwrites a file of the course."""
    from orchestrator.course import init as init_mod
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


@main.command()
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
    from orchestrator.run import verdict
    from orchestrator.campaign.options import BadOption, split_pytest_args
    from orchestrator.cache.store import Store
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


@main.command()
@click.argument("modules", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Forget every module's results.")
@click.pass_obj
def forget(root, modules, everything):
    """Drop the stored results of MODULES (NN, test:NN), so their next run runs their tests
    instead of reusing a pass. `doit -a test:NN` re-runs NN and what it builds on at once.
    (A remote cache may still hold a pass with the same key.)"""
    from orchestrator.report.status import forget as drop, forgotten
    graph = load_graph(root)
    if not modules and not everything:
        raise UserError("orchestrator forget: name the modules (NN or test:NN), or --all "
                        "(see 'orchestrator forget --help')")
    ids = list(graph.modules) if everything else [resolve(graph, m) for m in modules]
    for mid in ids:
        click.echo(forgotten(mid, drop(graph.root, mid)))


if __name__ == "__main__":
    sys.exit(main())
