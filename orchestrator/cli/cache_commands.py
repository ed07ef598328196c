"""`orchestrator cache export|import`: passing results shared across machines through a
directory of signed cache entries, with the key of ORCHESTRATOR_CACHE_KEY."""
from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.errors import UserError
from orchestrator.cli.group import cli
from orchestrator.cli.inputs import load_graph


@cli.group()
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
