"""The tree walk lists again only the folders that changed (tree.Tree): a folder's listing
is reused while its inode, mtime and ctime are those it was listed with, and only once it
was listed RACY_SECONDS after its last change. Every change of a folder's entries shows."""
from __future__ import annotations

import os
import time

import pytest

from orchestrator.core import tree as tree_mod
from orchestrator.core.tree import Tree


@pytest.fixture
def project(tmp_path):
    for rel in ("a/one.py", "a/two.py", "b/deep/three.txt", "top.toml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    return tmp_path


@pytest.fixture
def listings(monkeypatch):
    """The folders os.scandir listed, in order."""
    listed = []
    real = os.scandir

    def scandir(path="."):
        listed.append(os.fspath(path))
        return real(path)
    monkeypatch.setattr(tree_mod.os, "scandir", scandir)
    return listed


def later(monkeypatch, seconds: float) -> None:
    """The clock `seconds` on: what was written now is settled by then."""
    real = time.time
    monkeypatch.setattr(tree_mod.time, "time", lambda: real() + seconds)


def test_a_settled_folder_is_not_listed_again(project, listings, monkeypatch):
    later(monkeypatch, 10)
    tree = Tree(project)
    assert list(tree.files()) == ["a/one.py", "a/two.py", "b/deep/three.txt", "top.toml"]
    assert len(listings) == 4                     # root, a, b, b/deep
    tree.invalidate()
    listings.clear()
    assert list(tree.files()) == ["a/one.py", "a/two.py", "b/deep/three.txt", "top.toml"]
    assert listings == []


def test_each_change_of_a_folders_entries_is_seen(project, listings, monkeypatch):
    later(monkeypatch, 10)
    tree = Tree(project)
    tree.files()
    (project / "a" / "new.py").write_text("x")            # created
    (project / "b" / "deep" / "three.txt").unlink()        # removed
    os.rename(project / "top.toml", project / "renamed.toml")
    tree.invalidate()
    listings.clear()
    assert list(tree.files()) == ["a/new.py", "a/one.py", "a/two.py", "renamed.toml"]
    assert sorted(os.path.relpath(p, project) for p in listings) == [".", "a", "b/deep"]


def test_a_folder_changed_within_the_racy_window_is_listed_every_time(project, listings):
    tree = Tree(project)           # the real clock: everything was written just now
    tree.files()
    tree.invalidate()
    listings.clear()
    tree.files()
    assert len(listings) == 4      # not trusted yet: the folder could change unseen
    # a change within the clock's granularity, which may leave the folder's mtime as it was
    (project / "a" / "same_tick.py").write_text("x")
    tree.invalidate()
    assert "a/same_tick.py" in tree.files()


def test_a_folder_that_becomes_a_virtual_environment_is_left_out(project, monkeypatch):
    later(monkeypatch, 10)
    tree = Tree(project)
    assert "b/deep/three.txt" in tree.files()
    (project / "b" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    tree.invalidate()
    assert list(tree.files()) == ["a/one.py", "a/two.py", "top.toml"]
