"""In a module's test run, the package holds only what the module builds on.

doit runs NN's tests after the tests of NN's deps, and nothing orders them against the
other modules: whether a later module's generated file exists when NN's tests import it
depends on what else happened to run first. Left alone, a test of 02 importing 07's
export fails on a fresh checkout and passes once 07 was exported: two verdicts for one
tree. So a run fails closed: importing an export of a module outside NN's dependency
closure raises ModuleNotFoundError, one line naming the import, the module that exports
it and where the import was made, whether or not that module's file exists. Code that
guards such an import (`try: ... except ImportError:`) takes its fallback, every time.
`orchestrator check` lists the same imports with the ways out (layering.py), and
`orchestrator init` lists them when it adopts a course.

Active in every pytest run whose selection lies in one module's tests folder: the runs
the orchestrator starts, its retries, and the `rerun:` commands it prints, so a rerun
fails as the run did; in xdist workers too. A run over several modules' tests (the whole
suite of a project) has no one closure and is left alone.

pytest_plugin.py registers it (`register`, from its pytest_addoption), and the finder
goes first on sys.meta_path before any conftest is imported.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

PLUGIN_NAME = "orch-closure-guard"


def register(pluginmanager) -> None:
    """Called from pytest_plugin.py's pytest_addoption, when it is registered and before
    any conftest is loaded: the earliest moment a plugin can join in."""
    if pluginmanager.get_plugin(PLUGIN_NAME) is None:
        pluginmanager.register(GuardPlugin(), PLUGIN_NAME)


class GuardPlugin:
    @pytest.hookimpl(tryfirst=True)
    def pytest_load_initial_conftests(self, early_config, parser, args):
        # before pytest imports the conftests of the selection
        selection = getattr(early_config.known_args_namespace, "file_or_dir", None) or []
        install(early_config.rootpath, early_config.invocation_params.dir, selection)

    def pytest_configure(self, config):
        # xdist workers are configured from the controller's arguments: install there too
        install(config.rootpath, config.invocation_params.dir, config.args)


@dataclass(frozen=True)
class Closure:
    """What one module's run may import of the package."""
    module: str                    # "02_activations"
    package: str                   # "tinyml"
    builds_on: tuple[str, ...]     # its dependency closure, in curriculum order
    outside: dict[str, str]        # export path -> the module outside the closure exporting it
    root: Path

    def owner(self, name: str) -> str | None:
        """The module outside the closure that exports `name` (or a module inside it):
        `name` and each package above it looked up, not every export compared (asked of
        each import of the package: a hundred modules' run imports dozens)."""
        while name:
            found = self.outside.get(name)
            if found is not None:
                return found
            name = name.rpartition(".")[0]
        return None

    def refusal(self, name: str, owner: str, where: str) -> str:
        """One line, what matters first (the reporter shows 200 characters of it)."""
        builds_on = ", ".join(self.builds_on) or "nothing"
        return (f"{name} is exported by {owner}, which {self.module} does not build on "
                f"(import at {where}): its runs see only {builds_on}, whatever else was "
                "exported; `orchestrator check` lists the ways out")


class ClosureFinder:
    """First on sys.meta_path: refuses the exports outside the closure, before any other
    finder could find their files."""

    def __init__(self, closure: Closure):
        self.closure = closure
        self.prefix = closure.package + "."

    def find_spec(self, name, path=None, target=None):
        if not name.startswith(self.prefix):
            return None                  # most imports: one string comparison
        owner = self.closure.owner(name)
        if owner is None:
            return None
        raise ModuleNotFoundError(self.closure.refusal(name, owner, importer(self.closure.root)),
                                  name=name)


def install(root: Path, invocation_dir: Path, selection: list[str]) -> ClosureFinder | None:
    """Put the finder of the module whose tests `selection` names first on sys.meta_path
    (once per process); None when the selection is not one module's tests."""
    if any(isinstance(f, ClosureFinder) for f in sys.meta_path):
        return None
    closure = closure_of(Path(root), Path(invocation_dir), selection)
    if closure is None or not closure.outside:
        return None
    finder = ClosureFinder(closure)
    sys.meta_path.insert(0, finder)
    return finder


def closure_of(root: Path, invocation_dir: Path, selection: list[str]) -> Closure | None:
    """The closure of the one module whose tests folder holds every path of `selection`
    (`tests/02_x`, `tests/02_x/test_y.py::test_z`), or None."""
    if not selection:
        return None
    from orchestrator.core.graph import GraphError
    from orchestrator.run.session_graph import graph_of
    try:
        graph = graph_of(root)
    except GraphError:
        return None                      # pytest_plugin.py reports it
    if graph is None:
        return None
    owners = {_owner_of(graph, invocation_dir, arg) for arg in selection}
    owner = owners.pop() if len(owners) == 1 else None
    if owner is None:
        return None
    module = graph[owner]
    inside = set(graph.closure(module.id)) | {module.id}
    outside = {m.export: m.id for m in graph if m.id not in inside}
    return Closure(module.id, graph.package, tuple(graph.closure(module.id)), outside, root)


def _owner_of(graph, invocation_dir: Path, arg: str) -> str | None:
    path = (invocation_dir / arg.split("::", 1)[0]).resolve()
    # the folders on the way up, looked up among the tests folders: one resolve of the
    # root, not one per module (a hundred modules: ~2 ms of a run that takes ~60)
    root = graph.root.resolve()
    folders = {root / module.tests: module.id for module in graph}
    for folder in (path, *path.parents):
        if folder in folders:
            return folders[folder]
    for module in graph:        # a tests folder reached through a symlink
        tests = (graph.root / module.tests).resolve()
        if path == tests or tests in path.parents:
            return module.id
    return None


def importer(root: Path) -> str:
    """'file:line' of the code whose import is being refused: the first frame that is
    neither importlib's machinery nor this file (relative to the root when inside it)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<frozen importlib") and name != __file__ and \
                "importlib" not in Path(name).parts[-2:-1]:
            try:
                name = Path(name).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                pass
            return f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return "an unknown place"
