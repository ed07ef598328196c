"""The commands that set up and build a course: init writes its graph.toml and dodo.py,
export writes its module sources into the package."""
from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.errors import UserError
from orchestrator.cli.group import cli
from orchestrator.cli.inputs import load_graph
from orchestrator.core import export as export_mod
from orchestrator.core.graph import GraphError


@cli.command()
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


@cli.command("init")
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
