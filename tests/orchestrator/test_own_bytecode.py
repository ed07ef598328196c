"""The orchestrator writes its own bytecode once where nothing else does (an editable
install, PYTHONDONTWRITEBYTECODE): own_bytecode.py. Only its own package, only stale or
missing modules, never when Python writes bytecode itself."""
from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

from orchestrator.core import own_bytecode


def package(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    for rel in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py"):
        (root / rel).write_text(f"NAME = {rel!r}\n")
    return root


def cached(path: Path) -> bool:
    return Path(importlib.util.cache_from_source(str(path))).is_file()


def test_every_module_of_the_package_gets_its_bytecode(tmp_path, monkeypatch):
    root = package(tmp_path)
    monkeypatch.setattr(own_bytecode, "PACKAGE", root)
    assert own_bytecode.write() is True
    assert all(cached(p) for p in root.rglob("*.py"))
    outside = tmp_path / "course.py"               # never anything beside the package
    outside.write_text("x = 1\n")
    own_bytecode.write()
    assert not cached(outside)


def test_nothing_is_started_when_python_writes_bytecode_itself(monkeypatch):
    started = []

    class Recorded:
        def __init__(self, **kw):
            started.append(kw)

        def start(self):
            pass
    monkeypatch.setattr(own_bytecode, "_started", threading.Event())
    monkeypatch.setattr(own_bytecode.threading, "Thread", Recorded)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    own_bytecode.write_in_background()
    assert started == []
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    own_bytecode.write_in_background()
    own_bytecode.write_in_background()            # once per process
    assert [kw["name"] for kw in started] == ["own-bytecode"]


def test_a_package_that_cannot_be_written_is_left_as_it_is(tmp_path, monkeypatch):
    root = package(tmp_path)
    monkeypatch.setattr(own_bytecode, "PACKAGE", root)
    (root / "__pycache__").write_text("not a folder")    # where the bytecode would go
    assert own_bytecode.write() is False               # said by the result, not raised
