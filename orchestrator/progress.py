"""What the reporter shows while a run is on, in the style of Bazel's status line.

On a terminal: finished lines scroll above one live line
    [7/20 done] running 13_transformers 4.2s, 09_spatial 1.0s | ~25s left
and status words are coloured (rich: it honours NO_COLOR and FORCE_COLOR). Piped
(CI logs): no colour and no live line, but a `RUNNING 13_transformers` line when a
target starts, so a long silence in a log still says what is going on.
The estimate comes from recorded durations (schedule.py): the longest remaining
chain of work, counting what the running targets have already spent.
"""
from __future__ import annotations

import os
import threading
import time

STYLES = {"PASSED": "green", "(cached)": "green", "FLAKY": "yellow", "FAILED": "bold red",
          "BLOCKED": "dark_orange", "RUNNING": "cyan", "INTERRUPTED": "bold red",
          "bad": "bold red", "IGNORED": "dim"}


def on_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make(stream, total: int, remaining_path: dict[str, float],
         durations: dict[str, float]) -> "Progress":
    """Colours on a terminal, or anywhere FORCE_COLOR asks for them; the live line only
    on a terminal."""
    coloured = on_terminal(stream) or bool(os.environ.get("FORCE_COLOR"))
    kind = ColouredProgress if coloured else Progress
    return kind(stream, total, remaining_path, durations)


class Progress:
    """Plain lines (a log, a pipe; the reporter adds RUNNING when a target starts, since
    no live line shows it). Imports nothing: a no-op `doit all` in CI pays for no
    terminal library."""
    live = None

    def __init__(self, stream, total: int, remaining_path: dict[str, float],
                 durations: dict[str, float]):
        self.stream = stream
        self.total = total
        self.remaining_path, self.durations = remaining_path, durations
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

    def estimate(self, now: float) -> float | None:
        """Seconds left: the longest remaining chain, a running target counted from now."""
        chains = []
        for target, since in self.running.items():
            own = self.durations.get(target, 0.0)
            after = self.remaining_path.get(target, own) - own
            chains.append(max(0.0, own - (now - since)) + after)
        pending = set(self.remaining_path) - self.done - set(self.running)
        chains += [self.remaining_path[t] for t in pending]
        return max(chains) if chains else None


class ColouredProgress(Progress):
    """Coloured status words, and on a terminal the live line, drawn by rich."""

    def __init__(self, stream, total: int, remaining_path: dict[str, float],
                 durations: dict[str, float]):
        super().__init__(stream, total, remaining_path, durations)
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
