"""One run at a time per checkout: an exclusive lock on the state dir's lock file
(StateDir.lock).

The operating system drops the lock when the holder dies (even by SIGKILL), so a
crashed run never leaves the checkout locked. The file names the holder for the message.

How a file is locked depends on the platform (`locker(sys.platform)`): flock where
there is fcntl (Linux, macOS, the BSDs), msvcrt.locking on Windows. Each imports its
module only when a lock is taken, so importing this file works everywhere.
"""
from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.core.state import StateDir


class Busy(Exception):
    """Another run holds the lock and we were told not to wait."""


class Flock:
    """flock(2): the lock belongs to the open file, released when its last fd closes."""

    def try_lock(self, fd: int) -> bool:
        import fcntl
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def lock(self, fd: int) -> None:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX)

    def unlock(self, fd: int) -> None:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_UN)


class Msvcrt:
    """msvcrt.locking on Windows: a byte-range lock, mandatory there, so it covers one
    byte far past the holder's text (Windows lets a range past the end be locked) and
    another process can still read who holds it. LK_LOCK would give up after 10 s, so
    waiting is a loop of non-blocking tries (Ctrl-C still stops it)."""

    OFFSET = 1 << 20
    POLL = 0.2
    BUSY = {errno.EACCES, errno.EDEADLK, getattr(errno, "EDEADLOCK", errno.EDEADLK)}

    def try_lock(self, fd: int) -> bool:
        import msvcrt
        os.lseek(fd, self.OFFSET, os.SEEK_SET)
        try:
            # typeshed declares msvcrt's functions for win32 only; mypy checks as the host
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError as e:
            if e.errno in self.BUSY:
                return False
            raise
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
        return True

    def lock(self, fd: int) -> None:
        while not self.try_lock(fd):
            time.sleep(self.POLL)

    def unlock(self, fd: int) -> None:
        import msvcrt
        os.lseek(fd, self.OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        finally:
            os.lseek(fd, 0, os.SEEK_SET)


def locker(platform: str = sys.platform) -> Flock | Msvcrt:
    """How to lock a file on `platform` (a sys.platform value)."""
    return Msvcrt() if platform == "win32" else Flock()


class RunLock:
    def __init__(self, state_dir: Path, platform: str = sys.platform):
        """`state_dir`: the folder (a StateDir's path) whose lock file is taken."""
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = StateDir.at(state_dir).lock
        self.fd: int | None = None
        self.locker = locker(platform)

    def acquire(self, wait: bool = True, say: Callable[[str], None] = print) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0),
                          0o644)
        if not self.locker.try_lock(self.fd):
            message = f"another run is in progress ({self.holder()}); lock {self.path}"
            if not wait:
                os.close(self.fd)
                self.fd = None
                raise Busy(message) from None
            say(f"{message}: waiting for it to finish")
            self.locker.lock(self.fd)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}".encode())

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown holder"
        except OSError:
            return "unknown holder"

    def release(self) -> None:
        if self.fd is not None:
            self.locker.unlock(self.fd)
            os.close(self.fd)
            self.fd = None
