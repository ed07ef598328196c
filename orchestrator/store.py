"""The results store: one JSON file per test target under the state dir.

Each file is written atomically as soon as its target finishes, so an
interrupted run keeps what it finished. A result is trusted as a cache hit only
when it says "passed" and its key equals the current key; failed results are
kept for status and graph colours, never reused.
"""
from __future__ import annotations

import json
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
    except (ValueError, TypeError):
        # Unreadable: trust nothing from it; the target simply runs again.
        return None


def save(root: Path, result: Result) -> None:
    previous = load(root, result.module)
    if result.passed:
        result.last_pass_inputs = result.inputs
    elif previous is not None:
        result.last_pass_inputs = previous.last_pass_inputs
    atomic_write(result_path(root, result.module), json.dumps(asdict(result), indent=1))
