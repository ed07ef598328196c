"""A result cache shared across machines through a directory: the remote cache's entries, on disk.

    DIR/ac/<address>     a signed envelope (an ActionResult), exactly as on the server
    DIR/cas/<sha256>     the result it names

The same entries as the HTTP cache (remote_entry.py), in its server's layout (a directory
exported here can be served by nginx as it is). `export` writes, for each stored pass, its
shareable entry: no private path (remote_entry.shareable; a result that names one stays
here, one line), signed with ORCHESTRATOR_CACHE_KEY, or unsigned without a key. `import`
reads, for each module, the entry at the address of its declared inputs as the next export
will make them, and installs it only if every check of remote_entry passes (its signature
with the same key, unless the user vouches for the directory with Trust.UNSIGNED: `cache
import --allow-unsigned`) and its observed inputs, valued now, give its key. A hand-written
or altered entry is therefore refused like a forged one on a server.

A directory is as hostile as a server: only regular files are read (never through a
symlink, never a FIFO or a device: lstat, then opened with O_NOFOLLOW | O_NONBLOCK and
checked again with fstat), each up to its cap. A refused entry costs its module one line;
the import goes on and ends with a summary (cli.py).
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from orchestrator.cache import keys
from orchestrator.cache.remote_entry import (
    MAX_AC_BYTES,
    NotShareable,
    Rejected,
    Trust,
    ac_address,
    declared_digest,
    make_entry,
    verify,
)
from orchestrator.cache.store import Store
from orchestrator.core.files import atomic_write
from orchestrator.core.graph import ModuleGraph


class Outcome(Enum):
    IMPORTED = "imported"
    NO_ENTRY = "no entry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Imported:
    """What `import` did for one module."""
    module: str
    outcome: Outcome
    why: str = ""                 # a rejection's reason

    def __str__(self) -> str:
        return f"rejected: {self.why}" if self.outcome is Outcome.REJECTED else \
            self.outcome.value


@dataclass
class Exported:
    modules: list[str] = field(default_factory=list)     # those with an entry written
    kept: list[str] = field(default_factory=list)        # one line per result kept here
    signed: bool = True


def export_results(graph: ModuleGraph, directory: Path, key: bytes | None) -> Exported:
    """Write every stored pass as an entry (OSError if the directory cannot be written)."""
    directory.mkdir(parents=True, exist_ok=True)      # even empty: CI caches the path
    done, store = Exported(signed=key is not None), Store(graph.root)
    for module in graph:
        wrote = False
        # oldest first: of two passes with the same declared inputs, the newest keeps the address
        for result in reversed([r for r in store.results(module.id) if r.reusable]):
            try:
                entry = make_entry(key, result, declared_digest(result), graph.root)
            except NotShareable as e:
                done.kept.append(f"{module.id}: not exported: {e}")
                continue
            atomic_write(directory / "cas" / entry.cas, entry.blob)        # the blob first
            atomic_write(directory / "ac" / entry.ac, entry.ac_body)
            wrote = True
        if wrote:
            done.modules.append(module.id)
    return done


def import_results(graph: ModuleGraph, directory: Path, key: bytes | None,
                   trust: Trust = Trust.SIGNED, pytest_args=()) -> list[Imported]:
    """One Imported per module, in curriculum order; verified entries are stored."""
    store = Store(graph.root)
    return [_import(graph, module, directory, key, trust, list(pytest_args), store)
            for module in graph]


def _import(graph, module, directory: Path, key, trust: Trust, pytest_args, store) -> Imported:
    declared = keys.declared(graph, module, pytest_args, prospective=True)
    digest = keys.digest(declared)
    try:
        body = read_regular(directory / "ac" / ac_address(module.id, digest), MAX_AC_BYTES)
        result = None if body is None else verify(
            body, lambda cas, size: read_regular(directory / "cas" / cas, size), key,
            module.id, digest, trust)
    except Rejected as e:
        return Imported(module.id, Outcome.REJECTED, str(e))
    if result is None:
        return Imported(module.id, Outcome.NO_ENTRY)
    if not keys.is_hit(graph, declared, result):    # its observed inputs differ here
        return Imported(module.id, Outcome.NO_ENTRY)
    store.save(result)
    return Imported(module.id, Outcome.IMPORTED)


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file at `path` (None: nothing there); Rejected for a symlink,
    a FIFO, a device, a directory, a file over `limit` bytes or one that cannot be read."""
    name = f"{path.parent.name}/{path.name}"
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):     # never open a FIFO or a device
            raise Rejected(f"{name} is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) |
                     getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        why = "a symbolic link" if e.errno == errno.ELOOP else e.strerror or type(e).__name__
        raise Rejected(f"{name} cannot be read ({why})") from None
    try:
        info = os.fstat(fd)           # what was opened, had it been swapped since lstat
        if not stat.S_ISREG(info.st_mode):
            raise Rejected(f"{name} is not a regular file")
        if info.st_size > limit:
            raise Rejected(f"{name} is larger than {limit} bytes")
        data = bytearray()
        while len(data) <= limit and (chunk := os.read(fd, 1 << 16)):
            data += chunk
    except OSError as e:
        raise Rejected(f"{name} cannot be read ({e.strerror or type(e).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Rejected(f"{name} is larger than {limit} bytes")
    return bytes(data)
