"""The orchestrator's own bytecode, written once as pip writes it at install.

An editable install (`pip install -e`, this repository's README) writes no bytecode, and
where PYTHONDONTWRITEBYTECODE is set Python never writes any either: every `doit`
command then compiles the orchestrator's modules again, ~0.1 s, a third of a no-op on a
course of a hundred modules. So a run that executes tests, and only then (a no-op stays
a no-op), compiles the package's modules that have no current bytecode, in the
background. Only the orchestrator's own package: never a course's file (a course's
generated package gets its bytecode from export.py). Where the package cannot be written
(a read-only install), nothing is written and nothing is said."""
from __future__ import annotations

import compileall
import sys
import threading
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]     # orchestrator/
_started = threading.Event()


def write_in_background() -> None:
    """Compile the package's stale or missing bytecode in a daemon thread, once per
    process; nothing when Python writes bytecode itself."""
    if not sys.dont_write_bytecode or _started.is_set():
        return
    _started.set()
    threading.Thread(target=write, name="own-bytecode", daemon=True).start()


def write() -> bool:
    """compileall over the package: a module whose .pyc is current is only stat'ed. Its
    writes are atomic (a temp file renamed), so a process that ends meanwhile leaves no
    half-written .pyc. True when every module has bytecode now."""
    return bool(compileall.compile_dir(str(PACKAGE), quiet=2, force=False))
