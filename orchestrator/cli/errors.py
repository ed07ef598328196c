"""Bad input to the `orchestrator` command is one `error: ...` line on stderr and exit 3:
UserError, which every command raises, and the click classes that turn click's own usage
errors (unknown option or command, bad choice, missing argument or command) into one."""
from __future__ import annotations

import click


class UserError(click.ClickException):
    """Printed as one line, exit code 3: the user's input was wrong, not the tool."""
    exit_code = 3

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class OneLineUsage(click.Command):
    """Click's usage errors (unknown option or command, bad choice, missing argument) as
    UserErrors too: one line and exit 3, instead of click's usage block and exit 2.
    A mixin, first in the bases of a click.Command or click.Group."""

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
                raise missing_command(ctx, self)
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


def missing_command(ctx: click.Context, group: click.Group) -> UserError:
    """What `group`, invoked as `ctx`, says when it is given no command."""
    path, commands = ctx.command_path, group.list_commands(ctx)
    return UserError(f"{path}: missing command (one of: {', '.join(commands)}) "
                     f"(see '{path} --help')")
