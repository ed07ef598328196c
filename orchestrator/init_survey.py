"""What is in a course and how its modules depend on each other: `orchestrator init`'s survey.

It reads the folder and writes nothing: a pipeline of plain steps, each a function of the
previous step's result:

    survey: find_sources -> pair_tests -> name_package -> infer_deps

Sources are `modules/NN_name/` or `src/NN_name/` folders (or what a glob names),
each with one percent-format file holding `#| default_exp`. Each is paired with
a test folder by number and name; its deps are the modules whose export paths its
exported code and its tests import, reduced to direct edges (what graph.toml
asks for). The result is a `Plan`, which init.py renders and writes.
"""
from __future__ import annotations

import ast
import configparser
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import networkx as nx

from . import export
from .graph import MODULE_ID
from .layering import imports_in

DEFAULT_SOURCES = ("modules/[0-9]*_*", "src/[0-9]*_*")
DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class InitError(Exception):
    """init cannot go on (a file exists, nothing found, an import cycle): one line."""


@dataclass
class Found:
    """One module source found on disk."""
    id: str                        # "02_add"
    name: str                      # "add"
    source: PurePosixPath          # relative to the root
    default_exp: str               # "ops.add" (or "minicalc.ops.add": see name_package)
    tests: PurePosixPath | None = None
    imports: list[tuple[str, str]] = field(default_factory=list)  # (dotted name, "file:line")
    deps: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)   # dep -> the first import naming it

    @property
    def number(self) -> int:
        return int(self.id.split("_", 1)[0])


@dataclass
class Plan:
    root: Path
    modules: list[Found]           # in curriculum order
    package: str = ""
    package_from: str = ""         # how the package name was decided, for the report
    modules_dir: str = "modules"
    tests_dir: str = "tests"
    notes: list[str] = field(default_factory=list)
    create_dirs: list[PurePosixPath] = field(default_factory=list)   # empty test folders

    def export(self, module: Found) -> str:
        return f"{self.package}.{module.default_exp}"


# --- the pipeline --------------------------------------------------------------------------

def survey(root: Path, sources: str | None = None, tests_dir: str = "tests",
           package: str | None = None) -> Plan:
    """What init would write, found without writing anything."""
    modules, notes = find_sources(Path(root).resolve(), sources)
    plan = Plan(root=Path(root).resolve(), modules=modules, notes=notes,
                tests_dir=_relative(tests_dir, "--tests"))
    pair_tests(plan)
    name_package(plan, package)
    infer_deps(plan)
    return plan


def find_sources(root: Path, pattern: str | None) -> tuple[list[Found], list[str]]:
    """Every module folder (or source file) the glob names, in number order; and what was
    left out, and why."""
    patterns = [pattern] if pattern else list(DEFAULT_SOURCES)
    for glob in patterns:
        _relative(glob, "--sources")
        matches = sorted(p for p in root.glob(glob) if not p.name.startswith("."))
        if matches:
            break
    else:
        looked = pattern or "modules/NN_name/ and src/NN_name/"
        raise InitError(f"no module sources in {root}: looked for {looked} "
                        "(name another place with --sources GLOB)")
    found, skipped = [], []
    for path in matches:
        module = _module_at(root, path, skipped)
        if module is not None:
            found.append(module)
    if not found:
        raise InitError(f"no module sources in {root}: " + "; ".join(skipped))
    seen: dict[str, Found] = {}
    for module in found:
        if module.id in seen:
            raise InitError(f"two sources for module {module.id}: {seen[module.id].source} "
                            f"and {module.source}")
        seen[module.id] = module
    return sorted(found, key=lambda m: (m.number, m.name)), [f"left out {s}" for s in skipped]


def module_id(name: str) -> str | None:
    """'01_Tensor', '01-tensor' -> '01_tensor'; None if it does not look like NN_name."""
    candidate = re.sub(r"[\s\-]+", "_", name.strip()).lower()
    return candidate if MODULE_ID.match(candidate) else None


def _module_at(root: Path, path: Path, skipped: list[str]) -> Found | None:
    where = path.relative_to(root).as_posix()
    if path.is_dir():
        mid = module_id(path.name)
        if mid is None:
            skipped.append(f"{where}: the folder name is not NN_name")
            return None
        source = _source_in(path, where, mid.split("_", 1)[1], skipped)
    elif path.suffix == ".py":
        stem = path.stem.removesuffix("_dev")
        mid = module_id(stem) or module_id(path.parent.name)
        if mid is None:
            skipped.append(f"{where}: neither it nor its folder is named NN_name")
            return None
        source = path if _default_exp(path) is not None else None
        if source is None:
            skipped.append(f"{where}: no '#| default_exp' directive")
    else:
        return None
    if source is None:
        return None
    default_exp = _default_exp(source)
    if not DOTTED.fullmatch(default_exp):
        skipped.append(f"{where}: '#| default_exp {default_exp}' is not a dotted module path")
        return None
    return Found(id=mid, name=mid.split("_", 1)[1],
                 source=PurePosixPath(source.relative_to(root).as_posix()),
                 default_exp=default_exp)


def _source_in(folder: Path, where: str, name: str, skipped: list[str]) -> Path | None:
    """The percent-format file of a module folder: the one .py with `#| default_exp`."""
    candidates = [p for p in sorted(folder.glob("*.py")) if _default_exp(p) is not None]
    if len(candidates) > 1:
        preferred = [p for p in candidates if p.name == f"{name}_dev.py"]
        if len(preferred) == 1:
            return preferred[0]
        raise InitError(f"{where}: several sources with '#| default_exp' "
                        f"({', '.join(p.name for p in candidates)}); name one with --sources")
    if candidates:
        return candidates[0]
    notebooks = sorted(folder.glob("*.ipynb"))
    if notebooks:
        skipped.append(f"{where}: only a notebook ({notebooks[0].name}); pair it with a "
                       "percent-format .py first (jupytext --set-formats ipynb,py:percent)")
    else:
        skipped.append(f"{where}: no .py file with a '#| default_exp' directive")
    return None


def _default_exp(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for cell in export.split_cells(text):
        if "default_exp" in cell.directives:
            return cell.directives["default_exp"]
    return None


def name_package(plan: Plan, package: str | None) -> None:
    """The package the modules export into: --package, else the prefix that the imports of
    the sources and tests put before other modules' `default_exp` paths, else nbdev's
    settings.ini `lib_name`, else the folder's name."""
    for module in plan.modules:
        module.imports = list(_source_imports(plan.root, module)) + \
            list(_test_imports(plan.root, module))
    if package:
        plan.package, plan.package_from = package, "--package"
    else:
        plan.package, plan.package_from = _guess_package(plan)
    if not plan.package.isidentifier():
        raise InitError(f"the package name '{plan.package}' ({plan.package_from}) is not a "
                        "Python name; pass --package NAME")
    parents = {m.source.parent.parent for m in plan.modules}
    if len(parents) == 1 and parents != {PurePosixPath(".")}:
        plan.modules_dir = parents.pop().as_posix()


def _guess_package(plan: Plan) -> tuple[str, str]:
    votes: Counter = Counter()
    paths = {m.default_exp for m in plan.modules}
    for name in [n for m in plan.modules for n, _ in m.imports]:
        top, _, rest = name.partition(".")        # `top.ops.add`: a vote for `top`
        if any(rest == p or rest.startswith(p + ".") for p in paths):
            votes[top] += 1
    if votes:
        best = votes.most_common(1)[0][0]
        return best, "named by the imports of the sources and tests"
    settings = plan.root / "settings.ini"        # nbdev's project settings
    if settings.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(settings, encoding="utf-8")
            name = parser.get("DEFAULT", "lib_name", fallback="")
        except configparser.Error:
            name = ""
        if name:
            return name.replace("-", "_"), "lib_name in settings.ini"
    guess = re.sub(r"\W+", "_", plan.root.name).strip("_").lower()
    return guess, "the folder's name: no import names it (pass --package to choose)"


def pair_tests(plan: Plan) -> None:
    """Each module gets the test folder with its number and name; failing that, the only
    folder with its number, or the only one with its name. The rest is reported."""
    tests_root = plan.root / plan.tests_dir
    folders = {}
    if tests_root.is_dir():
        for path in sorted(p for p in tests_root.iterdir() if p.is_dir()):
            mid = module_id(path.name)
            if mid is not None:
                folders[PurePosixPath(plan.tests_dir, path.name)] = mid
    free = dict(folders)
    for how in (_same_id, _same_number, _same_name):
        for module in plan.modules:
            if module.tests is None:
                matches = [f for f, mid in free.items() if how(module.id, mid)]
                if len(matches) == 1:
                    module.tests = matches[0]
                    del free[matches[0]]
                    if how is not _same_id:
                        plan.notes.append(f"paired {module.id} with {matches[0]} "
                                          f"(same {'number' if how is _same_number else 'name'})")
    for folder, mid in free.items():
        number, name = mid.split("_", 1)
        plan.notes.append(f"could not pair {folder}: no module source numbered {number} "
                          f"or named {name}")
    for module in plan.modules:
        if module.tests is None:
            module.tests = PurePosixPath(plan.tests_dir, module.id)
            plan.create_dirs.append(module.tests)
            plan.notes.append(f"could not pair {module.id}: no test folder; created "
                              f"{module.tests}/ empty (doit fails the module until it "
                              "holds tests)")


def _same_id(a: str, b: str) -> bool:
    return a == b


def _same_number(a: str, b: str) -> bool:
    return int(a.split("_", 1)[0]) == int(b.split("_", 1)[0])


def _same_name(a: str, b: str) -> bool:
    return a.split("_", 1)[1] == b.split("_", 1)[1]


def infer_deps(plan: Plan) -> None:
    """deps: the modules whose export paths a module's exported code and tests import,
    reduced to direct edges; the modules reordered so that every dep comes first."""
    owners = {plan.export(m): m.id for m in plan.modules}
    by_id = {m.id: m for m in plan.modules}
    dag = nx.DiGraph()
    dag.add_nodes_from(by_id)
    for module in plan.modules:
        for name, where in module.imports:
            path = next((p for p in owners if name == p or name.startswith(p + ".")), None)
            if path is not None and owners[path] != module.id:
                module.why.setdefault(owners[path], f"{where} imports {path}")
                dag.add_edge(owners[path], module.id)
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        steps = "; ".join(by_id[b].why[a] for a, b in cycle)
        raise InitError(f"the modules import each other in a cycle ({steps}): a curriculum "
                        "builds each module on earlier ones only")
    direct = nx.transitive_reduction(dag)
    order = list(nx.lexicographical_topological_sort(dag, key=lambda i: (by_id[i].number, i)))
    plan.modules = [by_id[i] for i in order]
    for module in plan.modules:
        module.deps = [d for d in order if direct.has_edge(d, module.id)]
    numbered = sorted(plan.modules, key=lambda m: (m.number, m.name))
    if numbered != plan.modules:
        plan.notes.append("graph.toml lists the modules in dependency order, not number "
                          "order: " + ", ".join(m.id for m in plan.modules))


def _source_imports(root: Path, module: Found):
    """(dotted name, 'file:line') of every absolute import in the exported cells."""
    text = (root / module.source).read_text(encoding="utf-8")
    for cell in export.split_cells(text):
        if not export.EXPORTING & cell.directives.keys():
            continue
        try:
            tree = ast.parse("\n".join(cell.lines))
        except SyntaxError:
            continue              # export names it; the deps of the rest still count
        for line, name in imports_in(tree):
            yield name, f"{module.source}:{cell.line + line - 1}"


def _test_imports(root: Path, module: Found):
    folder = root / module.tests
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for line, name in imports_in(tree):
            yield name, f"{path.relative_to(root).as_posix()}:{line}"


def _relative(value: str, option: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise InitError(f"{option} '{value}' must be a path inside the folder")
    return path.as_posix()
