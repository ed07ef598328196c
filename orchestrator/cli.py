"""The `orchestrator` command: inspect and drive the curriculum described by graph.toml."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import export as export_mod
from .graph import GraphError, load


class UserError(click.ClickException):
    """Printed as one line, exit code 3: the user's input was wrong, not the tool."""
    exit_code = 3

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


def load_graph(root: Path):
    try:
        return load(root)
    except GraphError as e:
        raise UserError(str(e)) from None


@click.group()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".",
              help="Project root holding graph.toml.")
@click.pass_context
def main(ctx, root):
    """Inspect and drive a progressive curriculum described by graph.toml."""
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


if __name__ == "__main__":
    sys.exit(main())
