"""What the reporter shows while a run is on, in the style of Bazel's status line.

On a terminal: finished lines scroll above one live line
    [7/20 done] running 13_transformers 4.2s, 09_spatial 1.0s | ~25s left
and status words are coloured (rich: it honours NO_COLOR and FORCE_COLOR). Piped
(CI logs): no colour and no live line, but a `RUNNING 13_transformers` line when a
target starts, so a long silence in a log still says what is going on.
The estimate comes from the recorded durations (schedule.py) of the targets this run
selected and has not finished, a running one counting what it has already spent: the
longest chain of them still to run, or the work left spread over the workers when that
is longer. It moves with the work done, and ends near zero.
"""
from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.live import Live

STYLES = {"PASSED": "green", "(cached)": "green", "FLAKY": "yellow", "FAILED": "bold red",
          "BLOCKED": "dark_orange", "RUNNING": "cyan", "INTERRUPTED": "bold red",
          "bad": "bold red", "IGNORED": "dim"}


def on_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make(stream, total: int, durations: dict[str, float], dependents: dict[str, list[str]],
         workers: int = 1) -> Progress:
    """Colours on a terminal, or anywhere FORCE_COLOR asks for them; the live line only
    on a terminal. `durations`: each selected target's recorded seconds; `dependents`:
    the selected targets that wait for each."""
    coloured = on_terminal(stream) or bool(os.environ.get("FORCE_COLOR"))
    kind = ColouredProgress if coloured else Progress
    return kind(stream, total, durations, dependents, workers)


class Progress:
    """Plain lines (a log, a pipe; the reporter adds RUNNING when a target starts, since
    no live line shows it). Imports nothing: a no-op `doit all` in CI pays for no
    terminal library."""
    live: Live | None = None

    def __init__(self, stream, total: int, durations: dict[str, float],
                 dependents: dict[str, list[str]], workers: int = 1):
        self.stream = stream
        self.total = total
        self.durations, self.dependents = durations, dependents
        self.workers = max(1, workers)
        self.running: dict[str, float] = {}
        self.done: set[str] = set()
        self.lock = threading.Lock()

    def print(self, text: str) -> None:
        self.stream.write(text if text.endswith("\n") else text + "\n")

    def started(self, target: str) -> None:
        with self.lock:
            self.running[target] = time.monotonic()

    def finished(self, target: str) -> None:
        with self.lock:
            self.running.pop(target, None)
            self.done.add(target)

    def stop(self) -> None:
        pass

    def left(self, target: str, now: float) -> float:
        """What is left of a target's recorded duration: all of it until it starts."""
        if target in self.done:
            return 0.0
        own = self.durations.get(target, 0.0)
        if target in self.running:
            return max(0.0, own - (now - self.running[target]))
        return own

    def estimate(self, now: float) -> float | None:
        """Seconds left: the longest chain of unfinished selected targets, or all the work
        left shared by the workers if that takes longer; None without durations."""
        if not self.durations:
            return None
        chain: dict[str, float] = {}

        def longest(target: str) -> float:      # this target, then its longest dependents
            if target not in chain:
                after = [longest(d) for d in self.dependents.get(target, ())]
                chain[target] = self.left(target, now) + max(after, default=0.0)
            return chain[target]
        critical = max(longest(t) for t in self.durations)
        shared = sum(self.left(t, now) for t in self.durations) / self.workers
        return max(critical, shared)


class ColouredProgress(Progress):
    """Coloured status words, and on a terminal the live line, drawn by rich."""

    def __init__(self, stream, total: int, durations: dict[str, float],
                 dependents: dict[str, list[str]], workers: int = 1):
        super().__init__(stream, total, durations, dependents, workers)
        from rich.console import Console
        from rich.live import Live
        self.console = Console(file=stream, highlight=False, soft_wrap=True,
                               force_terminal=True)
        if on_terminal(stream):
            self.live = Live(self._line(), console=self.console, transient=True,
                             refresh_per_second=4, redirect_stdout=False,
                             redirect_stderr=False, get_renderable=self._line)
            self.live.start()

    def print(self, text: str) -> None:
        """One or more finished lines, the first word coloured by what it says."""
        from rich.text import Text
        for line in text.rstrip("\n").split("\n"):
            words = line.split(" ", 2)
            word = words[1] if words[0] == "(cached)" and len(words) > 1 else words[0]
            self.console.print(Text(line, style=STYLES.get(word, "")))

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _line(self):
        from rich.text import Text
        with self.lock:
            now = time.monotonic()
            running = sorted(self.running.items(), key=lambda kv: kv[1])
            names = ", ".join(f"{t} {now - since:.1f}s" for t, since in running)
            left = self.estimate(now)
        text = Text(f"[{len(self.done)}/{self.total} done] ", style="bold")
        text.append(f"running {names}" if names else "waiting", style="cyan")
        if left is not None:
            text.append(f" | ~{left:.0f}s left")
        return text
