"""`orchestrator init`: graph.toml and dodo.py for a folder that already has module sources.

A pipeline of plain steps, each a function of the previous step's result:

    survey: find_sources -> pair_tests -> name_package -> infer_deps;  then render, write

Sources are `modules/NN_name/` or `src/NN_name/` folders (or what a glob names),
each with one percent-format file holding `#| default_exp`. Each is paired with
a test folder by number and name; its deps are the modules whose export paths its
exported code and its tests import, reduced to direct edges (what graph.toml
asks for). Nothing that exists is overwritten: an existing graph.toml or dodo.py
stops init before it writes anything.
"""
from __future__ import annotations

import ast
import configparser
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import networkx as nx

from . import export
from .graph import GRAPH_FILE, MODULE_ID, GraphError, load
from .layering import imports_in

DEFAULT_SOURCES = ("modules/[0-9]*_*", "src/[0-9]*_*")
RUN_COMMAND = "orchestrator.doit_run:Run"
HELP_COMMAND = "orchestrator.doit_run:Help"
DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# doit reads the [COMMAND] section of doit.cfg (INI) like [tool.doit.plugins.command] of
# pyproject.toml (doit_cmd.DoitConfig); ConfigParser knows no trailing comments.
DOIT_CFG = f"""\
# doit's `run` command, replaced by the orchestrator's: the longest remaining path runs
# first, one run holds the checkout at a time, and the exit code says what happened.
# Its `help` also lists the variables of `doit test:NN name=value`.
[COMMAND]
run = {RUN_COMMAND}
help = {HELP_COMMAND}
"""
PYPROJECT_LINES = (f'[tool.doit.plugins.command]\nrun = "{RUN_COMMAND}"\n'
                   f'help = "{HELP_COMMAND}"')
DOIT_CFG_LINES = f"[COMMAND]\nrun = {RUN_COMMAND}\nhelp = {HELP_COMMAND}"

# The same text as the project's own dodo.py (test_init checks that they are equal).
DODO = '''\
"""doit tasks for this curriculum; everything comes from graph.toml.

    doit                    same as `doit all`
    doit test:NN_name       export and test NN after the tests of what it builds on
    doit list --all         every task
The logic lives in orchestrator/tasks.py.
"""
from pathlib import Path

from orchestrator.tasks import Campaign

CAMPAIGN = Campaign(Path(__file__).resolve().parent)
DOIT_CONFIG = CAMPAIGN.doit_config()


def task_export():
    """export a module's source into the package"""
    yield from CAMPAIGN.export_tasks()


def task_test():
    """run a module's tests after its deps' tests pass"""
    yield from CAMPAIGN.test_tasks()


def task_all():
    return CAMPAIGN.all_task()


def task_graph():
    return CAMPAIGN.graph_task()
'''


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

def init(root: Path, sources: str | None = None, tests_dir: str = "tests",
         package: str | None = None) -> list[str]:
    """Survey `root`, write graph.toml, dodo.py (and doit.cfg); the report, line by line."""
    root = Path(root)
    if not root.is_dir():
        raise InitError(f"{root}: no such folder")
    refuse_existing(root)
    plan = survey(root, sources, tests_dir, package)
    return write(plan) + report(plan)


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


def refuse_existing(root: Path) -> None:
    for name in (GRAPH_FILE, "dodo.py"):
        if (root / name).exists():
            raise InitError(f"{root / name} already exists; init never overwrites it "
                            "(move it away to start again)")


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


def render(plan: Plan) -> str:
    """The commented graph.toml."""
    settings = [(f'package = "{plan.package}"',
                 "the package the modules export into (generated: git-ignore it)"),
                (f'modules_dir = "{plan.modules_dir}"',
                 f"{plan.modules_dir}/NN_name/name_dev.py, unless `source` says otherwise"),
                (f'tests_dir = "{plan.tests_dir}"',
                 f"{plan.tests_dir}/NN_name/, unless `tests` says otherwise")]
    width = max(len(setting) for setting, _ in settings) + 2
    out = [
        "# The curriculum, as `orchestrator init` found it. The order of the [modules.*]",
        "# tables is the curriculum order; `deps` are the modules each one builds on",
        "# directly (what its exported code and its tests import; the comment above each",
        "# says which import), always earlier in this file. Every key is in the README's",
        "# \"graph.toml reference\"; `orchestrator check` re-checks the imports.",
        "",
        "[project]",
        *(f"{setting.ljust(width)}# {comment}" for setting, comment in settings),
        "",
        "# A testing plan (optional): categories the modules' tests must cover, each a",
        "# file name or a pytest marker; a module lists them in `requires`.",
        "# [categories]",
        '# core = "test_{name}_core.py"',
        '# edge_cases = "marker"',
    ]
    for i, module in enumerate(plan.modules):
        out += ["", f"[modules.{module.id}]", f'export = "{plan.export(module)}"']
        for dep in module.deps:
            out.append(f"# {dep}: {module.why[dep]}")
        out.append("deps = [" + ", ".join(f'"{d}"' for d in module.deps) + "]")
        default_source = PurePosixPath(plan.modules_dir, module.id, f"{module.name}_dev.py")
        if module.source != default_source:
            out.append(f'source = "{module.source}"')
        if module.tests != PurePosixPath(plan.tests_dir, module.id):
            out.append(f'tests = "{module.tests}"')
        if i == 0:
            out.append('# size = "small"   # the timeout of its tests: small 60 s, '
                       "medium 300 s, large 900 s")
    return "\n".join(out) + "\n"


def write(plan: Plan) -> list[str]:
    """Write graph.toml, dodo.py and (with no pyproject.toml) doit.cfg, each only if absent."""
    files = {GRAPH_FILE: render(plan), "dodo.py": DODO}
    if not (plan.root / "pyproject.toml").exists() and not (plan.root / "doit.cfg").exists():
        files["doit.cfg"] = DOIT_CFG
    for folder in plan.create_dirs:
        (plan.root / folder).mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        try:
            with open(plan.root / name, "x", encoding="utf-8") as f:    # never overwrite
                f.write(text)
        except FileExistsError:
            raise InitError(f"{plan.root / name} appeared while init ran; init never "
                            "overwrites it") from None
        written.append(name)
    return [f"wrote {', '.join(written)}"]


def report(plan: Plan) -> list[str]:
    rows = [(m.id, str(m.source), str(m.tests), ", ".join(m.deps) or "-")
            for m in plan.modules]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"found {len(plan.modules)} modules exporting into package {plan.package} "
             f"({plan.package_from}):"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  deps: " + r[3]
              for r in rows]
    lines += plan.notes
    lines += _generated_conflicts(plan)
    try:
        load(plan.root)
    except GraphError as e:       # a case init does not foresee: say so, keep the file
        lines.append(f"the graph.toml written does not load ({e}): edit it, or tell us")
    lines += missing_setup(plan.root)
    lines.append("next: doit all")
    return lines


def _generated_conflicts(plan: Plan) -> list[str]:
    """Files at the export targets that export did not write: it will refuse them."""
    lines = []
    for module in plan.modules:
        target = plan.root.joinpath(*plan.export(module).split(".")).with_suffix(".py")
        if export.hand_edited(target):
            lines.append(f"{target.relative_to(plan.root)} exists and was not written by "
                         f"`orchestrator export`: export refuses to overwrite it; delete it if "
                         f"{module.source} is the truth")
    return lines


# --- what doit needs -----------------------------------------------------------------------

def missing_setup(root: Path) -> list[str]:
    """What `doit all` needs in `root` and does not find there ([] if nothing): dodo.py,
    and doit's `run` command registered as the orchestrator's. One problem per item; an
    item that says what to add goes on with the lines to add, indented."""
    root = Path(root)
    problems = []
    if not (root / "dodo.py").is_file():
        problems.append("no dodo.py: doit reads its tasks from it (`orchestrator init` writes "
                        "it in a folder without graph.toml; its text is in docs/ADOPTING.md)")
    where, value = run_command(root)
    why = ("without it doit runs with its own run command: no longest-path-first dispatch, "
           "no run lock, doit's exit codes instead of the orchestrator's")
    if value == RUN_COMMAND:
        return problems
    if value is not None:
        problems.append(f"{where} sets doit's run command to '{value}', not '{RUN_COMMAND}' "
                        f"({why})")
    elif (root / "doit.cfg").exists():
        problems.append(f"doit.cfg does not register the orchestrator's run command ({why}); "
                        f"add to it:\n{_indent(DOIT_CFG_LINES)}")
    elif (root / "pyproject.toml").exists():
        problems.append(f"pyproject.toml does not register the orchestrator's run command "
                        f"({why}); add to it (just the run line if the table is there):\n"
                        f"{_indent(PYPROJECT_LINES)}")
    else:
        problems.append(f"no doit.cfg or pyproject.toml registers the orchestrator's run "
                        f"command ({why}); write a doit.cfg holding:\n{_indent(DOIT_CFG_LINES)}")
    return problems


def _indent(lines: str) -> str:
    return "\n".join("    " + line for line in lines.splitlines())


def run_command(root: Path) -> tuple[str, str | None]:
    """(file, value) of doit's `run` command plugin as doit reads it: pyproject.toml's
    [tool.doit.plugins.command], then doit.cfg's [COMMAND] over it."""
    where, value = "", None
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        command = data.get("tool", {}).get("doit", {}).get("plugins", {}).get("command", {})
        if isinstance(command, dict) and "run" in command:
            where, value = "pyproject.toml", str(command["run"])
    cfg = root / "doit.cfg"
    if cfg.is_file():
        parser = configparser.ConfigParser(allow_no_value=True, delimiters=("=",),
                                           interpolation=None)
        parser.optionxform = str
        try:
            parser.read(cfg, encoding="utf-8")
        except configparser.Error:
            pass
        if parser.has_option("COMMAND", "run"):
            where, value = "doit.cfg", parser.get("COMMAND", "run")
    return where, value


def _relative(value: str, option: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise InitError(f"{option} '{value}' must be a path inside the folder")
    return path.as_posix()
