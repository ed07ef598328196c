"""Import pytest's entry-point plugins in the warm server, once, exactly as pytest would:
through pytest's own assertion-rewriting import hook. Every forked child then starts with
them imported and rewritten, instead of each child spending ~0.1 s importing xdist, anyio
and their dependencies (measured on a course of small modules: a forked `pytest.main`
took 0.18 s with them, 0.095 s without).

Why it cannot change a result:
  - pytest rewrites the asserts of every module of a distribution that declares a
    `pytest11` entry point (its rule: config._iter_rewritable_modules over the
    distribution's files). We mark the same names and import through the same hook, so a
    plugin's asserts are rewritten exactly as in a fresh process.
  - In the child, pytest marks those names again and finds them imported; it warns
    ("cannot be rewritten") only for a module whose loader is not its hook's type, and
    ours is the same type: no warning, nothing imported twice.
  - The server runs in the project root with the tests' strict environment, the
    environment a fresh `python -m pytest` would import them in.
  - With PYTEST_DISABLE_PLUGIN_AUTOLOAD set, pytest loads no entry points: neither do we.
    A project that sets `enable_assertion_pass_hook` gets plugins without pass hooks from
    here, as the hook has no project configuration; that ini option is for test code, and
    the plugins' pass hooks are not.
Anything unexpected (another pytest's internals, a plugin failing to import) skips the
preload for that plugin: the child then imports it itself, the result the same, only slower.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import cast


class _HookConfig:
    """The little of pytest's Config that its rewriting hook reads before a session."""

    def __init__(self):
        from _pytest.stash import Stash
        from pluggy._tracing import TagTracer
        self.stash = Stash()
        self.trace = TagTracer().get("config")

    def getini(self, name: str):
        if name == "enable_assertion_pass_hook":
            return False
        raise ValueError(name)      # python_files: the hook falls back to pytest's default


def preload_entry_point_plugins() -> list[str]:
    """Import every `pytest11` plugin module through an assertion-rewriting hook; the names
    imported."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return []
    try:
        hook, plugins = _marked_hook()
    except Exception:          # pytest's internals moved: children import plugins themselves
        return []
    imported = []
    sys.meta_path.insert(0, hook)
    try:
        for module in plugins:
            try:
                importlib.import_module(module)
                imported.append(module)
            except Exception:
                pass
    finally:
        sys.meta_path.remove(hook)
    return imported


def _marked_hook():
    from importlib import metadata

    from _pytest.assertion import AssertionState, assertstate_key
    from _pytest.assertion.rewrite import AssertionRewritingHook
    from _pytest.config import Config, _iter_rewritable_modules

    # a stand-in: the part of a Config that AssertionState and the hook read
    config = cast(Config, _HookConfig())
    config.stash[assertstate_key] = AssertionState(config, "rewrite")
    hook = AssertionRewritingHook(config)
    config.stash[assertstate_key].hook = hook
    plugins: list[str] = []
    for dist in metadata.distributions():
        points = [ep for ep in dist.entry_points if ep.group == "pytest11"]
        if points:
            hook.mark_rewrite(*_iter_rewritable_modules([str(f) for f in dist.files or []]))
            plugins += [ep.value.split(":")[0] for ep in points]
    return hook, plugins
