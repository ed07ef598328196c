"""`orchestrator init`: graph.toml and dodo.py for a folder that already has module sources.

The command: init_survey.py finds the modules, their tests and their deps (a `Plan`);
this file renders the plan as a commented graph.toml, writes it with dodo.py, registers
doit's run command in the course's own configuration, takes over the generated files it
safely can, and reports what it chose and why:

    init: refuse_existing -> survey -> write (render, register_run_command)
          -> take_over -> report

Nothing the course wrote is overwritten: an existing graph.toml or dodo.py stops init
before it writes anything; a doit.cfg gets lines added, the rest kept; pyproject.toml is
never edited; a generated file of another tool is taken over only when git holds it
unchanged. `missing_setup` (also run by `orchestrator check`) says what `doit all` still
needs in a folder.
"""
from __future__ import annotations

import configparser
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath

from orchestrator.core import export
from orchestrator.core.files import atomic_write
from orchestrator.core.graph import GRAPH_FILE, GraphError, load
from orchestrator.course.init_survey import Choice, InitError, Plan, survey
from orchestrator.course.layering import eager_package_imports

RUN_COMMAND = "orchestrator.campaign.doit_run:Run"
HELP_COMMAND = "orchestrator.campaign.doit_run:Help"
FORGET_COMMAND = "orchestrator.campaign.doit_run:Forget"
# doit reads the [COMMAND] section of doit.cfg (INI) like [tool.doit.plugins.command] of
# pyproject.toml (doit_cmd.DoitConfig); ConfigParser knows no trailing comments.
DOIT_CFG = f"""\
# doit's `run` command, replaced by the orchestrator's: the longest remaining path runs
# first, one run holds the checkout at a time, and the exit code says what happened.
# Its `help` also lists the variables of `doit test:NN name=value`; its `forget` drops the
# stored results of the targets it names, so their next run runs their tests.
[COMMAND]
run = {RUN_COMMAND}
help = {HELP_COMMAND}
forget = {FORGET_COMMAND}
"""
PYPROJECT_LINES = (f'[tool.doit.plugins.command]\nrun = "{RUN_COMMAND}"\n'
                   f'help = "{HELP_COMMAND}"\nforget = "{FORGET_COMMAND}"')
DOIT_CFG_LINES = (f"[COMMAND]\nrun = {RUN_COMMAND}\nhelp = {HELP_COMMAND}\n"
                  f"forget = {FORGET_COMMAND}")

# The same text as the project's own dodo.py (test_init checks that they are equal).
DODO = '''\
"""doit tasks for this curriculum; everything comes from graph.toml.

    doit                    same as `doit all`
    doit test:NN_name       export and test NN after the tests of what it builds on
    doit list --all         every task
The logic lives in orchestrator/campaign/tasks.py.
"""
from pathlib import Path

from orchestrator.campaign.tasks import Campaign

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


# --- the command ---------------------------------------------------------------------------

def init(root: Path, sources: str | None = None, tests_dir: str = "tests",
         package: str | None = None) -> list[str]:
    """Survey `root`, write graph.toml, dodo.py (and what doit needs in doit.cfg), take over
    the generated files it safely can; the report, line by line. It stops (InitError) only
    when it cannot start: no folder, no module source, or a graph.toml or dodo.py there."""
    root = Path(root)
    if not root.is_dir():
        raise InitError(f"{root}: no such folder")
    refuse_existing(root)
    plan = survey(root, sources, tests_dir, package)
    wrote = write(plan)
    return [wrote] + report(plan, take_over(plan))


def refuse_existing(root: Path) -> None:
    for name in (GRAPH_FILE, "dodo.py"):
        if (root / name).exists():
            raise InitError(f"{root / name} already exists; init never overwrites it "
                            "(move it away to start again)")


def render(plan: Plan) -> str:
    """The commented graph.toml: every module in number order, each dep with the import
    behind it, and each import that is no dep (a later module's, a loop's) as a comment."""
    settings = [(f'package = "{plan.package}"',
                 "the package the modules export into (generated: git-ignore it)"),
                (f'modules_dir = "{plan.modules_dir}"',
                 f"{plan.modules_dir}/NN_name/name_dev.py, unless `source` says otherwise"),
                (f'tests_dir = "{plan.tests_dir}"',
                 f"{plan.tests_dir}/NN_name/, unless `tests` says otherwise")]
    width = max(len(setting) for setting, _ in settings) + 2
    out = [
        "# The curriculum, as `orchestrator init` found it. The order of the [modules.*]",
        "# tables is the curriculum order; `deps` are the earlier modules each one builds on",
        "# directly (what its exported code and its tests import; the comment above each",
        "# says which import). An import of a later module is no dep: a comment says where,",
        "# and `orchestrator check` lists it with the ways out. Every key is in the README's",
        "# \"graph.toml reference\"; `orchestrator check` re-checks the imports.",
        "",
        "[project]",
        *(f"{setting.ljust(width)}# {comment}" for setting, comment in settings),
        *_other_sources(plan),
        "",
        "# A testing plan (optional): categories the modules' tests must cover, each a",
        "# file name or a pytest marker; a module lists them in `requires`.",
        "# [categories]",
        '# core = "test_{name}_core.py"',
        '# edge_cases = "marker"',
    ]
    order = {m.id: i for i, m in enumerate(plan.modules)}
    for i, module in enumerate(plan.modules):
        out += ["", f"[modules.{module.id}]", f'export = "{plan.export(module)}"']
        for dep in module.deps:
            out.append(f"# {dep}: {module.why[dep]}")
        out.append("deps = [" + ", ".join(f'"{d}"' for d in module.deps) + "]")
        out += [f"# import cycle: {c.name}: not a dep ({step})" for c in plan.cycles
                for a, b, step in zip(c.loop, c.loop[1:], c.steps)
                if a == module.id and order[b] > order[a]]     # the edges that point forward
        out += [f"# not a dep: {f.where} imports {f.path} ({f.exporter} comes later)"
                for f in plan.forward if f.module == module.id]
        default_source = PurePosixPath(plan.modules_dir, module.id, f"{module.name}_dev.py")
        if module.source != default_source:
            out.append(f'source = "{module.source}"')
        if module.tests != PurePosixPath(plan.tests_dir, module.id):
            out.append(f'tests = "{module.tests}"')
        if i == 0:
            out.append('# size = "small"   # the timeout of its tests: small 60 s, '
                       "medium 300 s, large 900 s")
    return "\n".join(out) + "\n"


def _other_sources(plan: Plan) -> list[str]:
    """Comments for the source folders init did not take: every file under the root is an
    input of every module, so an edit there re-runs them all until it is ignored."""
    lines = []
    for other in plan.others:
        folder = PurePosixPath(other.glob).parts[0]
        lines += [f"# {other.glob} holds other module sources, not these (see init's report).",
                  f"# If no test reads them: ignore = [\"{folder}/**\"]"]
    return lines


def write(plan: Plan) -> str:
    """Write graph.toml and dodo.py, each only if absent, and register doit's run command
    (register_run_command); the line that says what was written."""
    for folder in plan.create_dirs:
        (plan.root / folder).mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in ((GRAPH_FILE, render(plan)), ("dodo.py", DODO)):
        _create(plan.root / name, text)
        written.append(name)
    registered = register_run_command(plan.root)
    if registered is RunCommand.WROTE:
        written.append("doit.cfg")
    line = f"wrote {', '.join(written)}"
    return line + ("; added doit's run command to doit.cfg"
                   if registered is RunCommand.ADDED else "")


def _create(path: Path, text: str) -> None:
    try:
        with open(path, "x", encoding="utf-8") as f:    # never overwrite
            f.write(text)
    except FileExistsError:
        raise InitError(f"{path} appeared while init ran; init never overwrites it") from None


class RunCommand(Enum):
    """What register_run_command did."""
    WROTE = "wrote doit.cfg"
    ADDED = "added the run command to the course's doit.cfg"
    NOTHING = "nothing: registered already, or set to another command on purpose"


def register_run_command(root: Path) -> RunCommand:
    """doit's `run` command as the orchestrator's, in the course's own configuration: a new
    doit.cfg (doit reads it after pyproject.toml, which stays as it is), or the lines added
    to the [COMMAND] section of a doit.cfg the course has, the rest of it kept. A `run`
    set to another command is the course's choice: left alone (missing_setup names it)."""
    if run_command(root)[1] is not None:
        return RunCommand.NOTHING
    cfg = root / "doit.cfg"
    if not cfg.exists():
        _create(cfg, DOIT_CFG)
        return RunCommand.WROTE
    atomic_write(cfg, with_run_command(cfg.read_text(encoding="utf-8")))
    return RunCommand.ADDED


class _CaseKept(configparser.ConfigParser):
    """A ConfigParser that keeps option names as written (by default it lowercases them)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def with_run_command(text: str) -> str:
    """A doit.cfg's text with `run` (and `help`, unless set) in its [COMMAND] section."""
    parser = _CaseKept(allow_no_value=True, delimiters=("=",), interpolation=None,
                       strict=False)
    try:
        parser.read_string(text)
        has_help = parser.has_option("COMMAND", "help")
        has_forget = parser.has_option("COMMAND", "forget")
    except configparser.Error:
        has_help = has_forget = False
    lines = [f"run = {RUN_COMMAND}"] + ([] if has_help else [f"help = {HELP_COMMAND}"]) + \
        ([] if has_forget else [f"forget = {FORGET_COMMAND}"])
    section = re.search(r"^\[COMMAND\][ \t]*\n?", text, re.MULTILINE)
    if section is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + "\n" + DOIT_CFG
    at = section.end()
    head = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
    return head + "\n".join(lines) + "\n" + text[at:]


# --- generated files of another tool -------------------------------------------------------

@dataclass
class TakeOver:
    """What init did with the files at the export targets that export did not write."""
    taken: list[Path] = field(default_factory=list)      # exported over, with --force's effect
    tools: list[str] = field(default_factory=list)       # the header lines that named a tool
    lines: list[str] = field(default_factory=list)       # one per file left as it is


def take_over(plan: Plan) -> TakeOver:
    """A file at an export target that another tool generated (nbdev's `# AUTOGENERATED!`)
    blocks its module's export. Taking it over is safe when git holds it unchanged:
    `git checkout` brings it back, so init exports over it. Otherwise (not committed, or
    changed since) it may hold work: it stays, and the report says how to take it over.
    A file written by hand at a target stays too (export names it)."""
    done = TakeOver()
    try:
        graph = load(plan.root)
    except GraphError:
        return done                  # report() says the graph does not load
    blocked = [m for m in graph if export.hand_edited(m.export_file(graph.root))]
    tools = {m.id: export.other_tool(m.export_file(graph.root)) for m in blocked}
    rels = {m.id: m.export_file(graph.root).relative_to(graph.root).as_posix() for m in blocked}
    safe, tracked = committed_unchanged(graph.root, [rels[m.id] for m in blocked if tools[m.id]])
    for module in blocked:
        rel, tool = rels[module.id], tools[module.id]
        if not tool:
            done.lines.append(f"{rel} exists and was not written by `orchestrator export`: "
                              f"export refuses to overwrite it; delete it if {module.source} "
                              "is the truth")
        elif rel not in safe:
            why = "has changes not committed in git" if rel in tracked else \
                "is not committed in git"
            done.lines.append(f"left {rel} as it is: another tool generated it and it {why}, "
                              "so taking it over could lose work; export refuses it until "
                              f"`orchestrator export {module.id} --force` (or you delete it)")
        else:
            try:
                export.export_module(module, graph, force=True)
            except export.ExportError as e:
                done.lines.append(f"left {rel} as it is: its export fails ({e})")
                continue
            done.taken.append(Path(rel))
            done.tools.append(tool)
    return done


def committed_unchanged(root: Path, rels: list[str]) -> tuple[set[str], set[str]]:
    """(the files of `rels` git holds exactly as committed, the files git tracks); both
    empty without git, or outside a repository."""
    if not rels:
        return set(), set()
    try:
        tracked = _git(root, "ls-files", "-z", "--", *rels)
        changed = _git(root, "diff", "--name-only", "--relative", "-z", "HEAD", "--", *rels)
    except (OSError, subprocess.SubprocessError):      # no git, no repository, no HEAD
        return set(), set()
    return tracked - changed, tracked


def _git(root: Path, *args: str) -> set[str]:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True,
                         timeout=60).stdout
    return {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}


# --- the report ----------------------------------------------------------------------------

def report(plan: Plan, taken: TakeOver) -> list[str]:
    """What init chose and why, for every guess (sources, package, pairings, each dep with
    its import), then the findings (imports that are no dep, loops, generated files, the
    package's eager imports) and what doit still needs."""
    rows = [(m.id, str(m.source), str(m.tests), ", ".join(m.deps) or "-")
            for m in plan.modules]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [_sources_line(plan), f"package: {plan.package} ({plan.package_from})",
             f"found {len(plan.modules)} modules:"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  deps: " + r[3]
              for r in rows]
    lines += plan.notes
    edges = [f"  {m.id} <- {d}: {m.why[d]}" for m in plan.modules for d in m.deps]
    if edges:
        lines += ["deps, each with the import behind it:"] + edges
    lines += _findings(plan)
    lines += _taken_lines(plan, taken)
    try:
        lines += _eager_lines(load(plan.root))
    except GraphError as e:       # a case init does not foresee: say so, keep the file
        lines.append(f"the graph.toml written does not load ({e}): edit it, or tell us")
    lines += missing_setup(plan.root)
    lines.append("next: doit all")
    return lines


def _sources_line(plan: Plan) -> str:
    """Which sources init took, and the evidence against the others."""
    chosen = plan.sources
    if plan.chosen_by is Choice.GIVEN:
        return f"sources: {chosen.glob} ({len(chosen.modules)} modules, --sources)"
    if not plan.others:
        return f"sources: {chosen.glob} ({len(chosen.modules)} modules)"
    others = "; ".join(f"not {o.glob} ({o.evidence()})" for o in plan.others)
    return (f"sources: {chosen.glob} ({chosen.evidence()}); {others}: pass --sources "
            f"'{plan.others[0].glob}' to take those instead")


def _findings(plan: Plan) -> list[str]:
    """The imports that are no dep: of a later module, and loops."""
    lines = []
    if plan.forward:
        n = len(plan.forward)
        lines.append(f"{n} import{'s' if n > 1 else ''} of a later module, not deps (the order "
                     "is the numbers'; each raises ImportError in its module's runs, which see "
                     "only what the module builds on; `orchestrator check` lists them):")
        lines += [f"  {f}" for f in plan.forward]
    lines += [f"{c} (graph.toml keeps the deps that point back, and comments the rest)"
              for c in plan.cycles]
    return lines


def _taken_lines(plan: Plan, taken: TakeOver) -> list[str]:
    """What take_over decided, and how to decide the other way."""
    lines = []
    if taken.taken:
        n = len(taken.taken)
        labels = sorted({t.split(" File to edit")[0] + (" ..." if " File to edit" in t else "")
                         for t in taken.tools})
        files = " ".join(p.as_posix() for p in taken.taken)
        lines.append(
            f"took over {n} file{'s' if n > 1 else ''} another tool generated "
            f"({', '.join(repr(label) for label in labels)}), each committed in git and unchanged: "
            "`orchestrator export` writes them from the sources now, and nothing is lost "
            f"(`git diff -- {plan.package.replace('.', '/')}` shows the change; to keep the "
            f"other tool's files instead, `git checkout -- {files}`, and each export will "
            "refuse its file and name it)")
    return lines + taken.lines


def _eager_lines(graph) -> list[str]:
    """One line per package __init__.py that imports the package's modules (layering.py)."""
    found: dict[str, list] = {}
    for violation in eager_package_imports(graph):
        found.setdefault(violation.path, []).append(violation)
    return [f"{path} imports {len(found[path])} of the package's modules (line "
            f"{found[path][0].line} first): a module's runs see only what it builds on, so "
            "importing the package fails the runs of every module that does not build on "
            "all of them; keep in it only what imports nothing of the package (e.g. "
            "__version__)" for path in found]


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
        parser = _CaseKept(allow_no_value=True, delimiters=("=",), interpolation=None)
        try:
            parser.read(cfg, encoding="utf-8")
        except configparser.Error:
            pass
        if parser.has_option("COMMAND", "run"):
            where, value = "doit.cfg", parser.get("COMMAND", "run")
    return where, value
