"""The `orchestrator` group: its help, --root and --version. The command modules register
their commands on it (@cli.command); main.py imports them all."""
from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.errors import Commands

DISTRIBUTION = "progressive-orchestrator"


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


@click.group("orchestrator", cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project root holding graph.toml [default: the nearest folder holding "
                   "graph.toml, here or above].")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=print_version, help="Show the version and exit.")
@click.pass_context
def cli(ctx, root):
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
