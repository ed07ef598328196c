"""The remote cache's lines: what it says goes to the process's stderr, one line each,
never showing a credential (scrubbed), with server- or user-given text made printable and
short, and a failed connection told in the OS's words."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from orchestrator.core.urls import redact, scrub


class Scrubbed:
    """A `say` whose lines never show a credential (scrub)."""

    def __init__(self, say: Callable[[str], object], secrets: Iterable[str] = ()) -> None:
        self.say: Callable[[str], object] = say.say if isinstance(say, Scrubbed) else say
        self.secrets = list(secrets)

    def __call__(self, line: str) -> None:
        self.say(scrub(line, self.secrets))


def to_stderr(line: str) -> None:
    # the process's own stderr: doit swaps sys.stderr to capture a task's output while its
    # action runs (where uploads happen), and a line said there would never be seen
    print(line, file=sys.__stderr__ or sys.stderr, flush=True)


def short(text: str, limit: int = 80) -> str:
    """Server- or user-given text as it may go in a line: printable, and short."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def redirect_target(location: str) -> str:
    """' to URL' for a redirect's Location (without its credentials), '' for none."""
    return f" to {short(redact(location))}" if location else ""


def describe(error) -> str:
    """'connection refused', 'name or service not known': the OS's words where there are."""
    seen = error
    for _ in range(8):           # the chain httpx -> httpcore -> OSError
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[0].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    return f"{type(error).__name__}: {short(str(error))}"
