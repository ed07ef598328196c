"""The `orchestrator` command: inspect and drive the curriculum described by graph.toml.

The group is group.py's; each module below registers its commands on it when imported.
Exit codes are decided in the commands: 0 ok, 1 a check found a problem, 3 bad input (a
bad graph.toml, an unknown module, a usage error: errors.py), always one `error: ...` line
on stderr.
"""
from __future__ import annotations

from orchestrator.cli import (
    cache_commands,
    ci_commands,
    course_commands,
    inspect_commands,
    run_commands,
)
from orchestrator.cli.group import cli

COMMAND_MODULES = (inspect_commands, course_commands, ci_commands, run_commands,
                   cache_commands)    # imported for their commands: `--help` lists them all


def main(args: list[str] | None = None) -> None:
    """The console script and `python -m orchestrator`: the command line (args None: the
    process's) run, then the process exits with its code."""
    cli.main(args)


if __name__ == "__main__":
    main()
