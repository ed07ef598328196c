"""What the commands take from the user, checked: the graph of --root (or of the checkout
around the current folder), a module's name, an output file. A bad one is a UserError."""
from __future__ import annotations

from pathlib import Path

from orchestrator.cli.errors import UserError
from orchestrator.core.graph import GraphError, ModuleGraph, find_root, load


def load_graph(root: Path | None) -> ModuleGraph:
    """The validated graph of `root`, or of the checkout around the current folder."""
    try:
        return load(find_root(Path.cwd()) if root is None else root)
    except GraphError as e:
        raise UserError(str(e)) from None


def resolve(graph: ModuleGraph, name: str) -> str:
    """The id of the module `name` names: 03, 3, layers, 03_layers, each also after test:."""
    try:
        return graph.resolve(name.removeprefix("test:"))
    except GraphError as e:
        raise UserError(str(e)) from None


def writable(output: Path) -> None:
    """Refuse an output file whose folder is missing (rather than create a mistyped one)."""
    folder = output.parent
    if not folder.exists():
        raise UserError(f"cannot write {output}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"cannot write {output}: {folder} is not a folder")
