"""One run at a time per checkout: an flock on the state dir's lock file.

The kernel drops the lock when the holder dies (even by SIGKILL), so a crashed
run never leaves the checkout locked. The file names the holder for the message.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable


class Busy(Exception):
    """Another run holds the lock and we were told not to wait."""


class RunLock:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "lock"
        self.fd: int | None = None

    def acquire(self, wait: bool = True, say: Callable[[str], None] = print) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"another run is in progress ({self.holder()}); lock {self.path}"
            if not wait:
                os.close(self.fd)
                self.fd = None
                raise Busy(message) from None
            say(f"{message}: waiting for it to finish")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}".encode())

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown holder"
        except OSError:
            return "unknown holder"

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
