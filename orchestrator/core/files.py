"""File helpers shared by export and the results store: digests and atomic writes."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _umask() -> int:
    """The process umask, read without changing it where the kernel allows.

    os.umask can only set it; setting it and back again would race with any thread
    creating a file meanwhile (doit runs tasks in threads), so that is the fallback,
    done once, when this module is imported."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# What open() would give a new file; mkstemp alone gives 0600.
FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write to a temp file beside `path`, then rename: readers never see half a file, and
    a symlink planted at `path` is replaced, never followed. Text is written as UTF-8.

    The file gets the permissions any new file gets (0666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, FILE_MODE)
            # text as open(path, "w", encoding="utf-8") writes it: newlines as the OS's
            f.write(content if isinstance(content, bytes) else
                    content.replace("\n", os.linesep).encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
