"""Watching real processes from a test: the pids a test under run wrote, and whether they
are still alive (a zombie counts as dead: it only waits to be reaped)."""
from __future__ import annotations

import time
from pathlib import Path


def wait_for_pids(pidfile: Path, count: int | None = None, within: float = 30) -> list[int]:
    """The pids written to `pidfile` (at least one, or exactly `count`)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = (pidfile.read_text() if pidfile.exists() else "").split()
        if pids and (count is None or len(pids) == count):
            return [int(p) for p in pids]
        time.sleep(0.05)
    raise AssertionError(f"the test never wrote {pidfile}")


def gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
