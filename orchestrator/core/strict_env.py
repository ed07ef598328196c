"""The environment a test run sees, and the part of it that is in the key: Bazel's strict
test environment, so a variable nobody declared can neither change a result unseen nor
leak into a test.

A module's tests get only:
  PASSED, not keyed    where programs and the user's files are: PATH (the running
                       interpreter's folder first, as nox and tox do, so `python3` in a test
                       is the run's interpreter), HOME, USER, LOGNAME, SHELL, TERM, TMPDIR,
                       TMP, TEMP, VIRTUAL_ENV, and the system variables Windows needs
  PASSED and KEYED     the locale (LANG, LANGUAGE, LC_*, TZ); what configures native
                       libraries (OPENBLAS_*, OMP_*, MKL_*, KMP_*, GOTO_*, BLIS_*, VECLIB_*,
                       NUMEXPR_*, LD_LIBRARY_PATH, LD_PRELOAD, DYLD_*): some machines need
                       them for numpy to compute correctly; what changes Python or pytest
                       (PYTHON*, PYTEST_*: PYTHONPATH, PYTEST_ADDOPTS, PYTEST_PLUGINS, ...)
  DECLARED             the variables the module's `env` names in graph.toml (keyed by a
                       digest of the value, or "unset")
Nothing else: not CI's variables, not a token a shell happened to hold, and never the
orchestrator's own (ORCHESTRATOR_*: the remote cache's key, token and URL). Keys hold a
sha256 of each value, never the value: keys are uploaded to a shared cache.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable, Mapping

PASSED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TMPDIR", "TMP", "TEMP",
    "VIRTUAL_ENV",
    # Windows: Python, its subprocesses and its temp dirs do not work without these
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "APPDATA",
    "LOCALAPPDATA", "PROGRAMDATA", "HOMEDRIVE", "HOMEPATH", "NUMBER_OF_PROCESSORS",
    "PROCESSOR_ARCHITECTURE",
})
KEYED = re.compile(r"(LANG|LANGUAGE|LC_\w+|TZ|LD_LIBRARY_PATH|LD_PRELOAD|DYLD_\w+|"
                   r"(OPENBLAS|OMP|MKL|KMP|GOTO|BLIS|VECLIB|NUMEXPR)_\w+|"
                   r"PYTHON\w*|PYTEST_\w+)")
# pytest's own signals to its subprocesses: set by a pytest that started this orchestrator
# (its test suite), never meant for the pytest the orchestrator starts
PYTEST_INTERNAL = re.compile(r"PYTEST_(CURRENT_TEST|VERSION|XDIST_\w+)")
OWN = "ORCHESTRATOR_"      # the orchestrator's settings and secrets: never passed


def keyed_names(environ: Mapping[str, str]) -> list[str]:
    """The variables set in `environ` that a test sees and the key records."""
    return sorted(n for n in environ if _keyed(n))


def for_tests(declared: Iterable[str] = (), environ: Mapping[str, str] | None = None
              ) -> dict[str, str]:
    """The environment of a test run: the passed and keyed variables, and those `declared`
    (a module's `env`) that are set."""
    environ = os.environ if environ is None else environ
    declared = set(declared)
    env = {n: v for n, v in environ.items()
           if (n in PASSED or _keyed(n) or n in declared) and not n.startswith(OWN)}
    here = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if here and path.split(os.pathsep)[0] != here:
        env["PATH"] = os.pathsep.join([here, path] if path else [here])
    return env


def key_entries(declared: Iterable[str] = (), environ: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """{"envvar:NAME": sha256 of the value} for every keyed variable that is set, and for
    each declared one ("unset" when it is not)."""
    environ = os.environ if environ is None else environ
    names = set(keyed_names(environ)) | set(declared)
    return {f"envvar:{n}": digest(environ.get(n)) for n in sorted(names)}


def digest(value: str | None) -> str:
    if value is None:
        return "unset"
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def _keyed(name: str) -> bool:
    return bool(KEYED.fullmatch(name)) and not PYTEST_INTERNAL.fullmatch(name)
