"""The state dir's layout: every file the orchestrator keeps, named in one place (the rest
of the code asks StateDir for the path).

    .orchestrator/
      results/NN_name/<key>.json   stored results, several per module (store.py)
      logs/NN_name.log             pytest's output of the module's last run
      reports/NN_name.json         the pytest plugin's report of the last attempt
      reports/NN_name.observed/    what the run's processes read (observe.py), per process
      tmp/NN_name/                 pytest's --basetemp for the module
      statcache.json               (size, mtime, ctime, inode) -> digest: a no-op reads
                                   nothing (digests.py)
      last_run.json                what the last run did with each target (status.py)
      flaky.json                   how often each test passed only on a retry
      corrupt/                     state files that could not be read, set aside
      graph/                       `doit graph` output
      outputs.json                 files it wrote into the project (JUnit reports): never
                                   an input of a key (tree.py rules the tree in otherwise)
      lock                         one run per checkout (lock.py)

doit's own task db is not here: every task decides by its `uptodate` (the results above
are the record), so doit keeps its db in memory (dep_file ":memory:",
campaign/tasks.py) and a broken disk cannot corrupt it.
"""
from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".orchestrator"


class StateDirError(Exception):
    """The state dir cannot be written: one printable line."""


@dataclass(frozen=True)
class StateDir:
    project: Path
    name: str = STATE_DIR

    @classmethod
    def at(cls, path: Path) -> StateDir:
        """The state dir that is the folder `path` (whatever its name: a test's temp dir)."""
        return cls(path.parent, path.name)

    @property
    def path(self) -> Path:
        return self.project / self.name

    @property
    def all_results(self) -> Path:
        return self.path / "results"

    def results(self, module_id: str) -> Path:
        return self.all_results / module_id

    def result(self, module_id: str, key: str) -> Path:
        return self.results(module_id) / f"{key}.json"

    def log(self, module_id: str) -> Path:
        return self.path / "logs" / f"{module_id}.log"

    def report(self, module_id: str) -> Path:
        return self.path / "reports" / f"{module_id}.json"

    def observed(self, module_id: str) -> Path:
        return self.report(module_id).with_suffix(".observed")

    def tmp(self, module_id: str) -> Path:
        return self.path / "tmp" / module_id

    @property
    def statcache(self) -> Path:
        return self.path / "statcache.json"

    @property
    def last_run(self) -> Path:
        return self.path / "last_run.json"

    @property
    def flaky(self) -> Path:
        return self.path / "flaky.json"

    @property
    def corrupt(self) -> Path:
        return self.path / "corrupt"

    @property
    def graph(self) -> Path:
        return self.path / "graph"

    @property
    def lock(self) -> Path:
        return self.path / "lock"

    @property
    def outputs(self) -> Path:
        return self.path / "outputs.json"

    def written(self) -> set[str]:
        """The files (relative to the project) the orchestrator wrote into the project."""
        try:
            names = json.loads(self.outputs.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()

    def record_written(self, path: Path) -> None:
        """Remember that the orchestrator wrote `path` (a report): if it lies in the project,
        the next run's keys must not take it for an input."""
        try:
            rel = path.resolve().relative_to(self.project.resolve()).as_posix()
        except ValueError:
            return                          # outside the project: no key sees it
        names = sorted(self.written() | {rel})
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.outputs.write_text(json.dumps(names), encoding="utf-8")
        except OSError:
            pass            # the run's keys then include the report: a re-run, never stale

    def rel(self, path: Path) -> str:
        return path.relative_to(self.project).as_posix()

    def ensure_writable(self) -> None:
        """Make the state dir and prove a file can be written in it, or say why not in one
        line (a file in its place, a read-only tree, a full disk)."""
        probe = self.path / f".probe.{os.getpid()}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as f:
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise StateDirError(describe(self.path, e)) from None
        finally:
            try:
                probe.unlink()
            except OSError:
                pass


def describe(path: Path, error: OSError) -> str:
    """One line for an OSError on the state dir."""
    reasons: dict[int | None, str | None] = {
        errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied", errno.EPERM: "permission denied",
        errno.ENOTDIR: "a file is in the way", errno.EEXIST: "a file is in the way",
        errno.EDQUOT: "the disk quota is exceeded"}
    why = reasons.get(error.errno, error.strerror)
    return f"cannot write the state dir {path}: {why}"
