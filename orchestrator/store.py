"""The results store: one JSON file per test target under the state dir.

Each file is written atomically as soon as its target finishes, so an
interrupted run keeps what it finished. A result is trusted as a cache hit only
when it says "passed" and its key equals the current key; failed results are
kept for status and graph colours, never reused.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .files import atomic_write

STATE_DIR = ".orchestrator"


@dataclass
class Result:
    module: str
    status: str                      # "passed" | "failed"
    reason: str                      # one line: why it failed ("" when passed)
    key: str                         # digest of `inputs`
    inputs: dict[str, str]           # see keys.py
    counts: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    failures: list[dict] = field(default_factory=list)  # [{nodeid, message}]
    tests: dict[str, dict] = field(default_factory=dict)
    finished: float = field(default_factory=time.time)
    log: str = ""
    last_pass_inputs: dict[str, str] | None = None      # for `why` after a failure
    flaky: list[str] = field(default_factory=list)      # failed, then passed on a retry
    collection_errors: list[dict] = field(default_factory=list)
    exitstatus: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def state_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR


def result_path(root: Path, module_id: str) -> Path:
    return state_dir(root) / "results" / f"{module_id}.json"


def load(root: Path, module_id: str) -> Result | None:
    path = result_path(root, module_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Result(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, OSError):
        # Unreadable: trust nothing from it; set it aside so the target runs again.
        set_aside(root, path, f"{module_id} will run again")
        return None


def set_aside(root: Path, path: Path, consequence: str) -> Path:
    """Move a corrupt state file to the state dir's corrupt/ folder, saying so in one line."""
    corrupt = state_dir(root) / "corrupt"
    corrupt.mkdir(parents=True, exist_ok=True)
    target = corrupt / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
    try:
        os.replace(path, target)
    except FileNotFoundError:      # another reader set it aside first
        return target
    print(f"warning: {path.relative_to(root)} was unreadable; set aside as "
          f"{target.relative_to(root)}; {consequence}", file=sys.stderr)
    return target


def check_doit_db(root: Path, db: Path) -> None:
    """doit's sqlite db only schedules; if it is corrupt, set it aside and start afresh."""
    if not db.exists():
        return
    import sqlite3
    try:
        with sqlite3.connect(db) as connection:
            ok = connection.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        ok = False
    if not ok:
        set_aside(root, db, "doit's schedule db is rebuilt (test results are unaffected)")


def record_flaky(root: Path, nodeids: list[str]) -> None:
    """Count flaky outcomes per test across runs, so repeat offenders can be listed."""
    if not nodeids:
        return
    counts = flaky_counts(root)
    for nodeid in nodeids:
        counts[nodeid] = counts.get(nodeid, 0) + 1
    atomic_write(state_dir(root) / "flaky.json", json.dumps(counts, indent=1, sort_keys=True))


def flaky_counts(root: Path) -> dict[str, int]:
    try:
        return json.loads((state_dir(root) / "flaky.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def save(root: Path, result: Result) -> None:
    previous = load(root, result.module)
    if result.passed:
        result.last_pass_inputs = result.inputs
    elif previous is not None:
        result.last_pass_inputs = previous.last_pass_inputs
    atomic_write(result_path(root, result.module), json.dumps(asdict(result), indent=1))
