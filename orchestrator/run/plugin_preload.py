"""Import pytest's plugins in the warm server, once, exactly as pytest would. Every forked
child then starts with them imported, instead of each child importing them again:
  - the entry-point plugins (xdist, anyio and their dependencies), through pytest's own
    assertion-rewriting import hook: measured on a course of small modules, a forked
    `pytest.main` took 0.18 s with them, 0.095 s without;
  - the orchestrator's plugin, which every run names with `-p` (runner.py), through the
    same hook: pytest rewrites a `-p` module as it imports it; without the bytecode cache
    (PYTHONDONTWRITEBYTECODE) each child rewrote and compiled it again (~7 ms);
  - pytest's own builtin plugins, plainly (`builtin_plugin_modules`).

Why it cannot change a result:
  - pytest rewrites the asserts of every module of a distribution that declares a
    `pytest11` entry point (its rule: config._iter_rewritable_modules over the
    distribution's files), and of each `-p` module. We mark the same names and import
    through the same hook, so a plugin's asserts are rewritten exactly as in a fresh
    process.
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


def builtin_plugin_modules() -> list[str]:
    """pytest's own plugin modules, which every session imports (`get_config`); `import
    pytest` imports only some of them (~15 ms of a small module's child). pytest imports
    them plainly, before its rewriting hook exists (its plugin manager's hook is a dummy
    until the command line is parsed): a plain import here is the same import. [] where
    pytest's internals moved."""
    try:
        from _pytest.config import builtin_plugins, default_plugins
    except ImportError:
        return []
    return [f"_pytest.{name}" for name in default_plugins if name in builtin_plugins]


def preload_plugins(named: tuple[str, ...] = ()) -> list[str]:
    """Import, through an assertion-rewriting hook, the plugin modules every child's pytest
    imports: `named` (each run's command line names them with -p, which pytest marks for
    rewriting as it imports them) and every `pytest11` entry-point plugin, unless
    PYTEST_DISABLE_PLUGIN_AUTOLOAD is set. The names imported."""
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    try:
        hook, plugins = _marked_hook(autoload)
    except Exception:          # pytest's internals moved: children import plugins themselves
        return []
    hook.mark_rewrite(*named)
    imported = []
    sys.meta_path.insert(0, hook)
    try:
        for module in [*named, *plugins]:
            try:
                importlib.import_module(module)
                imported.append(module)
            except Exception:
                pass
    finally:
        sys.meta_path.remove(hook)
    return imported


def _marked_hook(autoload: bool):
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
    for dist in metadata.distributions() if autoload else ():
        points = [ep for ep in dist.entry_points if ep.group == "pytest11"]
        if points:
            hook.mark_rewrite(*_iter_rewritable_modules([str(f) for f in dist.files or []]))
            plugins += [ep.value.split(":")[0] for ep in points]
    return hook, plugins
