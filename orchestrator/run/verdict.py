"""A failed result in the words a student acts on: what broke (the exception's type and
the lines of its message that matter), where (the line of *their* file: sourcemap.py),
the command that checks the fix, and which few failures block everything else.

    summarize(exconly)            'AssertionError: Not equal to tolerance ...' + details
    failures(result)              [Failure(nodeid, message, where, called_from, ...)]
    rerun_command(root, ids, args) 'cd /course && .venv/bin/python -m pytest -p ... ID'
    root_causes(targets)          '2 failing modules block 11 others: 03_layers (...), ...'

Every view (doit's lines, `why`, `status`, the graph page, the CI summary, JUnit)
reads failures through here, so they all say the same thing.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

MAX_LINES = 6        # of a failure's message: its first line, and what follows that matters
MAX_CHARS = 240      # per line
NOISE = ("Use -v to get",)     # pytest's hint: it speaks of the run, not of the failure
NUMPY_SUMMARY = ("Mismatched elements", "Max absolute difference", "Max relative difference")
PLUGIN = "orchestrator.run.pytest_plugin"


def summarize(text: str) -> str:
    """An exception as at most MAX_LINES short lines: 'Type: first words' first, then the
    first non-empty lines that follow (numpy's mismatch summary, pytest's assertion
    detail). numpy starts its message with a newline: its first line is joined to the type,
    never left as a bare `AssertionError: `."""
    lines = [l.strip() for l in text.strip().splitlines()]
    lines = [l for l in lines if l and not l.startswith(NOISE)]
    if not lines:
        return "failed"
    first, rest = lines[0], lines[1:]
    kind, colon, words = first.partition(":")
    if colon and not words.strip() and " " not in kind:
        first = f"{kind}: {rest.pop(0)}" if rest else kind
    # numpy's summary before its per-element detail, which may run long
    rest = [l for l in rest if l.startswith(NUMPY_SUMMARY)] + \
        [l for l in rest if not l.startswith(NUMPY_SUMMARY)]
    return "\n".join(_clip(l) for l in [first, *rest][:MAX_LINES])


def _clip(line: str) -> str:
    return line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 3] + "..."


def headline(message: str) -> str:
    """The first line of a stored message (summarize's first line)."""
    return (message.strip().splitlines() or [""])[0]


@dataclass(frozen=True)
class Failure:
    """One failing test (or collection error) of a stored result, as every view shows it."""
    nodeid: str
    message: str               # summarize()d: type and first lines
    where: str = ""            # 'path:line' to look at: the student's source line if known
    called_from: str = ""      # the test's own line, when `where` is elsewhere
    raised_in: str = ""        # where the exception was raised, when deeper than `where`
    generated: str = ""        # the generated file's 'path:line' that `where` maps from

    @property
    def headline(self) -> str:
        return headline(self.message)

    @property
    def details(self) -> list[str]:
        return self.message.strip().splitlines()[1:]

    @property
    def trail(self) -> list[str]:
        """'called from tests/...:42', 'raised in modules/01_tensor/tensor_dev.py:300'."""
        return [f"{what} {place}" for what, place in
                (("called from", self.called_from), ("raised in", self.raised_in)) if place]


def failures(result) -> list[Failure]:
    """The failures of a stored result, each with what the plugin recorded for its test.
    Messages stored before summaries existed are summarized here."""
    found = []
    for entry in result.failures:
        test = {**result.tests.get(entry["nodeid"], {}), **entry}
        where = f"{test['path']}:{test['line']}" if test.get("path") and \
            test.get("line") is not None else ""
        found.append(Failure(entry["nodeid"], summarize(test.get("message", "")), where,
                             test.get("called_from", ""), test.get("raised_in", ""),
                             test.get("generated", "")))
    return found


def rerun_command(root: Path, nodeids: Iterable[str], pytest_args: Iterable[str] = (),
                  python: str | os.PathLike | None = None) -> str:
    """A command that runs exactly these tests as the orchestrator ran them, from any
    folder (it starts with `cd` to the project root) and in any course (it loads the
    orchestrator's plugin, which exports the current sources before collecting), quoted
    for a POSIX shell. The interpreter is named relative to the root when it lives there."""
    root = Path(root)
    python = Path(python or sys.executable)
    try:
        shown = python.relative_to(root).as_posix()
    except ValueError:
        shown = str(python)
    command = [shown, "-m", "pytest", "-p", PLUGIN, *nodeids, *pytest_args]
    return f"cd {shlex.quote(str(root))} && {shlex.join(command)}"


def pytest_args_of(result) -> list[str]:
    """The pytest arguments a stored result ran with (its `pytest:args` input, keys.py)."""
    try:
        args = json.loads(result.inputs.get("pytest:args", "[]"))
    except ValueError:
        return []
    return args if isinstance(args, list) and all(isinstance(a, str) for a in args) else []


# --- root causes ---------------------------------------------------------------------------
MAX_CAUSES = 5
MAX_FILES = 3


def root_causes(statuses: Mapping[str, str], blocked_by: Mapping[str, list[str]],
                results: Mapping[str, object]) -> str:
    """'' or one line naming the failed targets that block others, each with its failing
    test files: '2 failing modules block 11 others: 03_layers
    (tests/03_layers/test_layers_core.py: 1 test), 08_dataloader (...)'."""
    blocked = [m for m, s in statuses.items() if s == "blocked"]
    # a failed test target, or another task that failed (`export:03_layers`)
    causes = sorted({c for m in blocked for c in blocked_by.get(m, [])
                     if statuses.get(c) == "failed" or ":" in c}, key=_number)
    if not causes:
        return ""
    named = [f"{c} ({_what_failed(c, results.get(c))})" for c in causes[:MAX_CAUSES]]
    if len(causes) > MAX_CAUSES:
        named.append(f"and {len(causes) - MAX_CAUSES} more")
    modules = "module blocks" if len(causes) == 1 else "modules block"
    return (f"{len(causes)} failing {modules} {len(blocked)} "
            f"other{'s' if len(blocked) != 1 else ''}: {', '.join(named)}")


def _what_failed(cause: str, result) -> str:
    """'tests/03_layers/test_layers_core.py: 1 test, ...', or the result's reason."""
    if result is None:
        return "failed, see above" if ":" in cause else "no stored result"
    files = Counter(f["nodeid"].split("::")[0] for f in result.failures)
    if not files:
        return result.reason
    shown = [f"{path}: {n} test{'s' if n != 1 else ''}" for path, n in
             sorted(files.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FILES]]
    if len(files) > MAX_FILES:
        shown.append(f"{len(files) - MAX_FILES} more files")
    return ", ".join(shown)


def _number(module: str) -> tuple:
    head = module.rpartition(":")[2].split("_", 1)[0]
    return (int(head) if head.isdigit() else sys.maxsize, module)
