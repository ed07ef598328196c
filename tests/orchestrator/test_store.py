"""The result store's reading order: what a no-op run reads, and what it never needs to."""
from __future__ import annotations

import os
import time

from orchestrator.cache.store import Cause, Result, Status, Store


def passing(key: str, finished: float) -> Result:
    return Result(module="01_a", status=Status.PASSED, cause=Cause.NONE, reason="",
                  key=key * 64, inputs={}, counts={"passed": 1}, duration=2.0,
                  tests={"tests/01_a/test_a.py::t": {"outcome": "passed"}}, finished=finished)


def saved(store: Store, result: Result, used: float):
    path = store.save(result)
    os.utime(path, (used, used))
    return path


def test_recently_used_reads_one_file_when_the_first_is_enough(tmp_path, capsys):
    store, now = Store(tmp_path), time.time()
    saved(store, passing("a", now - 100), now - 10)
    older = saved(store, passing("b", now - 50), now - 50)
    older.write_text('{"module": "01_a", "duration": null}')     # corrupt, and never read
    os.utime(older, (now - 50, now - 50))
    assert next(store.recently_used("01_a")).key == "a" * 64
    assert older.exists() and capsys.readouterr().err == ""
    # reading them all does read it, and sets it aside in one line
    assert [r.key[0] for r in store.recently_used("01_a")] == ["a"]
    assert not older.exists() and "was unreadable" in capsys.readouterr().err


def test_lookup_tries_the_most_recently_used_first_and_marks_its_hit(tmp_path):
    store, now = Store(tmp_path), time.time()
    saved(store, passing("a", now - 70), now - 30)     # the newest run, least used since
    saved(store, passing("b", now - 90), now - 20)
    saved(store, passing("c", now - 80), now - 10)
    tried = []

    def current(result: Result) -> bool:
        tried.append(result.key[0])
        return result.key[0] == "b"

    assert store.lookup("01_a", current).key == "b" * 64
    assert tried == ["c", "b"]                      # "a" was never parsed nor tried
    assert [r.key[0] for r in store.recently_used("01_a")] == ["b", "c", "a"]
    # `latest` still means the newest run, whichever was reused since
    assert store.latest("01_a").key == "a" * 64


def test_lookup_finds_nothing_among_failures_and_changed_keys(tmp_path):
    store, now = Store(tmp_path), time.time()
    failed = passing("f", now)
    failed.status, failed.cause, failed.reason = Status.FAILED, Cause.TESTS_FAILED, "1 failed"
    failed.counts = {"failed": 1}
    failed.failures = [{"nodeid": "tests/01_a/test_a.py::t", "message": "boom"}]
    saved(store, failed, now)
    saved(store, passing("a", now - 10), now - 10)
    assert store.lookup("01_a", lambda r: True).key == "a" * 64
    assert store.lookup("01_a", lambda r: False) is None
