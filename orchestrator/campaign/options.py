"""The doit command-line variables (`doit all strict=1 lock=fail`) as one checked value.

    options = RunOptions.from_vars(doit.get_var)

Each variable is read once, here; a bad value is a BadOption whose message is the
one line to print (`lock=maybe: expected one of wait, fail`). An empty value
(`strict=`) means the default. HELP has one line per variable for `doit help`.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

XDIST_MODES = ("policy", "never", "always")    # runner.py's xdist policy, or an override
LAUNCHERS = ("warm", "cold")                   # launch.py: fork from the warm server, or not
LOCK_MODES = ("wait", "fail")                  # lock.py: when another run holds the checkout
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")

HELP = {
    "pytest": 'extra pytest arguments, e.g. pytest="-x -k core" (part of the cache key)',
    "strict": "strict=1: classroom order, module N waits for all of 1..N-1 (1/0, true/false, "
              "yes/no)",
    "flaky_attempts": "flaky_attempts=3: re-run failing tests up to 3 tries; a pass on a retry "
                      "is reported FLAKY",
    "lock": "lock=fail: refuse instead of waiting if another run holds the checkout "
            "(wait, fail)",
    "xdist": "xdist=never|always: override the xdist policy (policy, never, always)",
    "launcher": "launcher=cold: a new pytest process per module instead of a fork of the warm "
                "server (warm, cold)",
    "junit": "junit=FILE: also write the run's JUnit XML (one testsuite per module) to FILE",
}


class BadOption(ValueError):
    """A doit variable with a bad value, as one printable line."""


@dataclass(frozen=True)
class RunOptions:
    pytest_args: tuple[str, ...] = ()
    strict: bool = False
    flaky_attempts: int = 1
    lock: str = "wait"
    xdist: str = "policy"
    launcher: str = "warm"
    junit: str = ""                 # where to write the run's JUnit XML ('' for nowhere)

    @property
    def wait_for_lock(self) -> bool:
        return self.lock == "wait"

    @classmethod
    def from_vars(cls, get: Callable[[str, str], str | None]) -> RunOptions:
        """Read and check every variable; `get(name, default)` is doit's get_var
        (which returns None when doit is not running, e.g. a dodo.py imported by a test)."""
        def value(name: str, default: str) -> str:
            raw = get(name, default)
            return default if raw is None or not raw.strip() else raw.strip()
        return cls(
            pytest_args=split_pytest_args(value("pytest", "")),
            strict=boolean("strict", value("strict", "0")),
            flaky_attempts=positive_int("flaky_attempts", value("flaky_attempts", "1")),
            lock=choice("lock", value("lock", "wait"), LOCK_MODES),
            xdist=choice("xdist", value("xdist", "policy"), XDIST_MODES),
            launcher=choice("launcher", value("launcher", "warm"), LAUNCHERS),
            junit=value("junit", ""))


def split_pytest_args(text: str, name: str = "pytest") -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as e:      # shlex: "No closing quotation", "No escaped character"
        what = {"No closing quotation": "unbalanced quotes",
                "No escaped character": "a backslash at the end"}.get(str(e), "cannot split it")
        raise BadOption(f"{name}={text}: {what} ({e})") from None


def boolean(name: str, text: str) -> bool:
    if text.lower() in TRUE + FALSE:
        return text.lower() in TRUE
    raise BadOption(f"{name}={text}: expected one of {', '.join(TRUE + FALSE)}")


def positive_int(name: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise BadOption(f"{name}={text}: expected a whole number >= 1")
    return int(text)


def choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    if text.lower() not in choices:
        raise BadOption(f"{name}={text}: expected one of {', '.join(choices)}")
    return text.lower()


def unknown_variables(names: Iterable[str]) -> None:
    """`doit all stirct=1` -> BadOption naming the variable doit would silently ignore."""
    from orchestrator.core.graph import suggest
    for name in names:
        if name not in HELP:
            raise BadOption(f"{name}: unknown variable{suggest(name, HELP)} (known: "
                            f"{', '.join(HELP)})")


def help_text() -> str:
    """The variables, one line each, for `doit help` (task docs or the command's help)."""
    width = max(map(len, HELP))
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in HELP.items())
