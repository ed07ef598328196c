"""File digests behind a stat cache, as Bazel, ninja and git keep one: a file whose size,
mtime, ctime and inode are unchanged is not read again. The ctime is what an archive
cannot fake: `tar --mtime` (or `touch -r`) can give new content its old size and mtime,
but writing a file always sets its ctime to now.

The cache lives in the state dir (StateDir.statcache), one process-wide table per
project. An entry is trusted only if the file was already older than RACY_SECONDS
when it was hashed: a file written within the clock's granularity of its hashing
could change again without its mtime moving ("racy git"), so such files are
always read.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path

from orchestrator.core.files import atomic_write
from orchestrator.core.state import StateDir

RACY_SECONDS = 2.0
MISSING = "missing"


class StatCache:
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.entries: dict[str, list] = self._load()
        self.dirty = False

    def _load(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def digest(self, path: Path, kind: str = "file", compute=None) -> str:
        """sha256 of the file's bytes (or `compute(path)` for another kind of digest),
        MISSING if it does not exist."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return MISSING
        if not stat.S_ISREG(st.st_mode):    # a folder, a FIFO, a device: reading it could hang
            return f"not a regular file: {_kind(st.st_mode)}"
        name = f"{kind}:{path}"
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        with self.lock:
            entry = self.entries.get(name)
        if entry is not None and entry[:4] == stamp:
            return entry[4]
        value = compute(path) if compute else hashlib.sha256(path.read_bytes()).hexdigest()
        # racy: written within the clock's granularity of now (mtime or ctime), it could
        # change again without either moving
        if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > RACY_SECONDS:
            with self.lock:
                self.entries[name] = [*stamp, value]
                self.dirty = True
        return value

    def save(self) -> None:
        with self.lock:
            if not self.dirty:
                return
            text = json.dumps(self.entries, separators=(",", ":"))
            self.dirty = False
        try:
            atomic_write(self.path, text)
        except OSError:
            pass    # a cache: losing it costs time, never correctness


def _kind(mode: int) -> str:
    """What a path that is not a regular file is (its kind, not its permissions)."""
    kinds = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))
    return next((name for test, name in kinds if test(mode)), "other")


_caches: dict[Path, StatCache] = {}
_caches_lock = threading.Lock()


def cache_for(state: StateDir) -> StatCache:
    """The stat cache of the state dir `state`: one per process."""
    path = state.statcache
    with _caches_lock:
        if path not in _caches:
            _caches[path] = StatCache(path)
        return _caches[path]


def save_all() -> None:
    with _caches_lock:
        caches = list(_caches.values())
    for cache in caches:
        cache.save()
