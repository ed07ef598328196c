"""`orchestrator init`: graph.toml and dodo.py for a folder that already has module sources.

The command: init_survey.py finds the modules, their tests and their deps (a `Plan`);
this file renders the plan as a commented graph.toml, writes it with dodo.py (and
doit.cfg), and reports what it found:

    init: refuse_existing -> survey -> write (render) -> report

Nothing that exists is overwritten: an existing graph.toml or dodo.py stops init
before it writes anything. `missing_setup` (also run by `orchestrator check`) says
what `doit all` still needs in a folder.
"""
from __future__ import annotations

import configparser
import tomllib
from pathlib import Path, PurePosixPath

from . import export
from .graph import GRAPH_FILE, GraphError, load
from .init_survey import InitError, Plan, survey

RUN_COMMAND = "orchestrator.doit_run:Run"
HELP_COMMAND = "orchestrator.doit_run:Help"
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


# --- the command ---------------------------------------------------------------------------

def init(root: Path, sources: str | None = None, tests_dir: str = "tests",
         package: str | None = None) -> list[str]:
    """Survey `root`, write graph.toml, dodo.py (and doit.cfg); the report, line by line."""
    root = Path(root)
    if not root.is_dir():
        raise InitError(f"{root}: no such folder")
    refuse_existing(root)
    plan = survey(root, sources, tests_dir, package)
    return write(plan) + report(plan)


def refuse_existing(root: Path) -> None:
    for name in (GRAPH_FILE, "dodo.py"):
        if (root / name).exists():
            raise InitError(f"{root / name} already exists; init never overwrites it "
                            "(move it away to start again)")


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
