"""A failed result in the words a student acts on: what broke (the exception's type and
the lines of its message that matter), where (the line of *their* file: sourcemap.py),
the command that checks the fix, and which few failures block everything else.

    summarize(exconly)            'AssertionError: Not equal to tolerance ...' + details
    failures(result)              [Failure(nodeid, message, where, called_from, ...)]
    rerun_command(root, ids, args) 'cd /course && .venv/bin/python -m pytest -p ... ID'
    root_causes(blocked, failed, results)  '2 failing modules block 11 others: 03_layers (...)'

Every view (doit's lines, `why`, `status`, the graph page, the CI summary, JUnit)
reads failures through here, so they all say the same thing.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
    lines = [line.strip() for line in text.strip().splitlines()]
    lines = [line for line in lines if line and not line.startswith(NOISE)]
    if not lines:
        return "failed"
    first, rest = lines[0], lines[1:]
    kind, colon, words = first.partition(":")
    if colon and not words.strip() and " " not in kind:
        first = f"{kind}: {rest.pop(0)}" if rest else kind
    # numpy's summary before its per-element detail, which may run long
    rest = [line for line in rest if line.startswith(NUMPY_SUMMARY)] + \
        [line for line in rest if not line.startswith(NUMPY_SUMMARY)]
    return "\n".join(_clip(line) for line in [first, *rest][:MAX_LINES])


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


def root_causes(blocked: Mapping[str, list[str]], failed: Collection[str],
                results: Mapping[str, object]) -> str:
    """'' or one line naming the failed targets that block others, each with its failing
    test files: '2 failing modules block 11 others: 03_layers
    (tests/03_layers/test_layers_core.py: 1 test), 08_dataloader (...)'. `blocked`: each
    blocked target and what blocked it; `failed`: the test targets that failed."""
    # a failed test target, or another task that failed (`export:03_layers`)
    causes = sorted({c for by in blocked.values() for c in by if c in failed or ":" in c},
                    key=_number)
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
