"""A missing command is one line and exit 3 in every click pyproject.toml allows.

click 8.1 prints the help and exits 0 when a group gets no arguments, 8.2 raises
NoArgsIsHelpError (absent from 8.1), and options alone fail with click's English
"Missing command.": the orchestrator's groups say it themselves, from click's public
API alone (tested on click 8.1.7 and 8.5.1)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator.cli.main import main

CLI = Path(__file__).resolve().parents[2] / "orchestrator" / "cli"

COMMANDS = ("affected, cache, check, ci-matrix, coverage, export, forget, graph, init, report, "
            "rerun, status, watch, why")


def orchestrator(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(list(args))
    out, err = capsys.readouterr()
    return ended.value.code, out, err


@pytest.mark.parametrize("args, path, commands", [
    ((), "orchestrator", COMMANDS),
    (("--root", "elsewhere"), "orchestrator", COMMANDS),         # options alone
    (("cache",), "orchestrator cache", "export, import"),
    (("--root", "elsewhere", "cache"), "orchestrator cache", "export, import"),
])
def test_a_missing_command_is_one_line_and_exit_3(capsys, args, path, commands):
    assert orchestrator(capsys, *args) == (
        3, "", f"error: {path}: missing command (one of: {commands}) (see '{path} --help')\n")


def test_the_groups_still_run_their_commands_and_show_their_usage(capsys):
    code, out, err = orchestrator(capsys, "cache", "--help")
    assert code == 0 and err == ""
    assert out.startswith("Usage: orchestrator cache [OPTIONS] COMMAND [ARGS]...\n"), out
    code, out, _ = orchestrator(capsys, "--help")
    assert code == 0 and out.startswith("Usage: orchestrator [OPTIONS] COMMAND [ARGS]...\n")
    code, _, err = orchestrator(capsys, "grpah")    # click's own words (8.2 adds a guess)
    assert code == 3 and err.startswith("error: orchestrator: No such command 'grpah'.")
    assert err.endswith(" (see 'orchestrator --help')\n") and len(err.splitlines()) == 1


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_no_newer_click_name_and_no_click_text_in_the_code(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | \
        {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    texts = [n.value for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert "NoArgsIsHelpError" not in names
    assert not [t for t in texts if "Missing command" in t]
