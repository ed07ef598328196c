"""doit beyond its documented API, as orchestrator/campaign/doit_run.py uses it.

Each test names a piece of doit's private API the adapter relies on and checks it has
the shape the adapter needs, so a doit release that changes one fails here, in one
clear test, rather than in a run. pyproject.toml's bound on doit is what these pass on.
"""
from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from doit import cmd_forget, cmd_help, cmd_run, control, doit_cmd, runner
from doit.cmd_base import DodoTaskLoader, DoitCmdBase, ModuleTaskLoader
from doit.doit_cmd import DoitMain
from doit.reporter import ZeroReporter

from orchestrator.campaign import doit_run
from orchestrator.campaign.doit_run import CAMPAIGN, command_line_variables
from orchestrator.report import run_context

REPO = Path(__file__).resolve().parents[2]


def parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


# --- the commands' `_execute`, which doit calls with its options by name ------------------

@pytest.mark.parametrize("ours, theirs", [(doit_run.Run, cmd_run.Run),
                                          (doit_run.Help, cmd_help.Help),
                                          (doit_run.Forget, cmd_forget.Forget)])
def test_each_overridden_execute_takes_what_doits_own_takes(ours, theirs):
    """DoitCmdBase.execute fills `_execute`'s parameters by name from the options; the
    overrides take the same ones and pass them on to doit's own, positionally."""
    assert issubclass(ours, theirs)
    assert parameters(ours._execute) == parameters(theirs._execute)
    assert "inspect.signature(self._execute)" in inspect.getsource(DoitCmdBase.execute)


def test_the_commands_keep_what_the_adapter_reads_and_sets():
    """sel_tasks, sel_default_tasks, outstream, loader, dep_manager, task_list (from
    DoitCmdBase.execute), reporters (cmd_run.Run), control (read by doit's `auto`)."""
    init = inspect.getsource(DoitCmdBase.__init__)
    for name in ("sel_tasks", "sel_default_tasks", "outstream", "loader", "dep_manager"):
        assert f"self.{name} = " in init, name
    execute = inspect.getsource(DoitCmdBase.execute)
    for name in ("sel_tasks", "sel_default_tasks", "task_list"):
        assert f"self.{name} = " in execute, name
    assert "self.reporters = self.get_reporters()" in inspect.getsource(cmd_run.Run.__init__)
    assert "self.control = TaskControl(" in inspect.getsource(cmd_run.Run._execute)
    loader, campaign = DodoTaskLoader(), object()           # campaign_of() asks the loader
    loader.namespace = {"DOIT_CONFIG": {CAMPAIGN: campaign}}  # what setup() reads of dodo.py
    assert loader.load_doit_config()[CAMPAIGN] is campaign
    assert "self.namespace = " in inspect.getsource(DodoTaskLoader.setup)


# --- the dispatcher's ready queue ----------------------------------------------------------

def test_the_dispatcher_uses_ready_only_by_append_popleft_and_truth():
    """prioritized() swaps TaskDispatcher.ready for a PriorityReady after __init__: that
    holds while __init__ only creates the dispatching generator, and while nothing asks
    `ready` more than PriorityReady answers."""
    assert inspect.isgeneratorfunction(control.TaskDispatcher._dispatcher_generator)
    assert parameters(control.TaskDispatcher.__init__) == [
        ("self", inspect.Parameter.empty), ("tasks", inspect.Parameter.empty),
        ("targets", inspect.Parameter.empty), ("selected_tasks", inspect.Parameter.empty)]
    tree = ast.parse(textwrap.dedent(inspect.getsource(control.TaskDispatcher)))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = [n for n in ast.walk(tree) if (isinstance(n, ast.Attribute) and n.attr == "ready")
            or (isinstance(n, ast.Name) and n.id == "ready")]
    assert uses
    odd = []
    for use in uses:
        parent = parents[use]
        if isinstance(parent, ast.Assign) and use in parent.targets:
            ok = ast.unparse(parent.value) == "deque()"                 # in __init__
        elif isinstance(parent, ast.Attribute):
            ok = parent.attr in ("append", "popleft") and isinstance(parents[parent], ast.Call)
        elif isinstance(parent, (ast.If, ast.While)):
            ok = parent.test is use                                      # truth
        elif isinstance(parent, ast.Call):
            ok = ast.unparse(parent.func) == "self._get_next_node"      # handed on as is
        else:
            ok = False
        if not ok:
            odd.append(f"line {use.lineno}: {ast.unparse(parent)}")
    assert not odd, "TaskDispatcher uses `ready` beyond PriorityReady: " + "; ".join(odd)
    init = inspect.getsource(control.TaskDispatcher.__init__)
    assert "self.ready = deque()" in init
    assert "self.generator = self._dispatcher_generator(" in init


def test_the_dispatcher_keeps_the_tasks_and_the_selection_the_run_command_reads():
    """run_context.considered walks the dispatcher's `tasks` from its `selected_tasks` by
    task_dep: what doit's runner hands a reporter's initialize."""
    init = inspect.getsource(control.TaskDispatcher.__init__)
    assert "self.tasks = tasks" in init and "self.selected_tasks = selected_tasks" in init
    assert "self.reporter.initialize(task_dispatcher.tasks," in \
        inspect.getsource(runner.Runner.run_all)


def test_the_runners_take_what_the_run_command_passes():
    """Run._run builds [dep_manager, reporter, continue_, always, stream] (+ num_process)
    positionally, as doit's _execute does, and calls run_all(dispatcher)."""
    base = ["self", "dep_manager", "reporter", "continue_", "always_execute", "stream"]
    assert [name for name, _ in parameters(runner.Runner.__init__)] == base
    assert [name for name, _ in parameters(runner.MThreadRunner.__init__)] == \
        base + ["num_process"]
    assert [name for name, _ in parameters(runner.Runner.run_all)] == ["self", "task_dispatcher"]
    assert [name for name, _ in parameters(doit_run.Stream.__init__)] == \
        ["self", "verbosity", "force_global"]
    assert [name for name, _ in parameters(control.TaskControl.__init__)] == \
        ["self", "task_list", "auto_delayed_regex"]


def test_command_line_variables_are_the_ones_doit_took(monkeypatch):
    monkeypatch.setattr(doit_cmd, "_CMDLINE_VARS", None)      # doit not running
    assert command_line_variables() == {}
    rest = DoitMain(config_filenames=()).process_args(
        ["-n", "2", "all", "strict=1", "pytest=-x -k a=b"])
    assert rest == ["-n", "2", "all"]
    assert command_line_variables() == {"strict": "1", "pytest": "-x -k a=b"}
    assert doit_cmd.get_var("strict") == "1"


def test_doit_sets_the_variables_before_it_loads_dodo_py(tmp_path):
    (tmp_path / "dodo.py").write_text(textwrap.dedent("""\
        from orchestrator.campaign.doit_run import command_line_variables
        print("variables:", command_line_variables())

        def task_nothing():
            return {"actions": None}
        """), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "doit", "list", "stirct=1"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("variables: {'stirct': '1'}\n"), run.stdout


# --- the run command, in doit ---------------------------------------------------------------

class FakeCampaign:
    """What the run command asks of a campaign (tasks.Campaign), recorded."""

    def __init__(self, priorities):
        self.priorities, self.calls = priorities, []

    def resolve_task_names(self, names):
        self.calls.append(("resolve", list(names)))
        return ["all" if name == "everything" else name for name in names]

    def begin_run(self):
        self.calls.append("begin")

    def end_run(self):
        self.calls.append("end")

    def priority(self, task_name):
        self.calls.append(("priority", task_name))
        return (self.priorities.get(task_name, 0.0),)

    def consider(self, task_names):
        self.calls.append(("consider", sorted(task_names)))


class RecordingReporter(ZeroReporter):
    made: list[RecordingReporter] = []

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.options, self.executed = options, []
        RecordingReporter.made.append(self)

    def execute_task(self, task):
        self.executed.append(task.name)

    def exit_code(self):
        return 7          # the reporter's decision, not doit's 0


def run_in_doit(tmp_path, monkeypatch, config: dict, *args: str) -> int:
    """doit's own main, our run command registered, over an in-memory dodo namespace."""
    monkeypatch.chdir(tmp_path)
    RecordingReporter.made.clear()
    namespace = {
        "DOIT_CONFIG": {"reporter": RecordingReporter, "dep_file": ":memory:",
                        "backend": "sqlite3", **config},
        **{f"task_{name}": (lambda: {"actions": [lambda: True]})
           for name in ("low", "high", "mid")},
        "task_all": lambda: {"actions": None, "task_dep": ["low", "high", "mid"]},
    }
    main = DoitMain(ModuleTaskLoader(namespace), config_filenames=(),
                    extra_config={"COMMAND": {"run": "orchestrator.campaign.doit_run:Run"}})
    return main.run(list(args))


def test_the_run_command_gets_the_campaign_from_doit_config_and_dispatches_by_it(
        tmp_path, monkeypatch):
    campaign = FakeCampaign({"high": 9.0, "mid": 5.0, "low": 1.0})
    assert run_in_doit(tmp_path, monkeypatch, {CAMPAIGN: campaign}, "everything") == 7
    [reporter] = RecordingReporter.made
    assert reporter.options[CAMPAIGN] is campaign            # handed to the reporter
    assert reporter.executed == ["high", "mid", "low", "all"]   # one worker: priority order
    assert campaign.calls[:2] == [("resolve", ["everything"]), "begin"]
    # told, before the first dispatch, every task the run considers
    considering = [c for c in campaign.calls if c[0] in ("consider", "priority")]
    assert considering[0] == ("consider", ["all", "high", "low", "mid"])
    assert campaign.calls[-1] == "end"
    assert {c[1] for c in campaign.calls if c[0] == "priority"} >= {"low", "high", "mid"}

    threads = FakeCampaign({"high": 9.0})
    assert run_in_doit(tmp_path, monkeypatch, {CAMPAIGN: threads}, "-n", "2", "-P", "thread",
                       "all") == 7
    assert sorted(RecordingReporter.made[0].executed) == ["all", "high", "low", "mid"]
    assert threads.calls[-1] == "end"


def test_without_a_campaign_the_run_command_is_doits_run(tmp_path, monkeypatch):
    assert run_in_doit(tmp_path, monkeypatch, {}, "all") == 7
    [reporter] = RecordingReporter.made
    assert reporter.options[CAMPAIGN] is None
    assert reporter.executed == ["low", "high", "mid", "all"]   # doit's first-come order



def test_a_run_considers_the_selected_tasks_and_what_they_depend_on(tmp_path, monkeypatch):
    campaign = FakeCampaign({})
    assert run_in_doit(tmp_path, monkeypatch, {CAMPAIGN: campaign}, "high", "mid") == 7
    assert ("consider", ["high", "mid"]) in campaign.calls
    tasks = {name: SimpleNamespace(task_dep=deps) for name, deps in
             {"all": ["test:b", "test:a"], "test:a": ["export:a"], "test:b": ["test:a"],
              "export:a": [], "test:c": []}.items()}
    assert run_context.considered(tasks, ["test:b"]) == {"test:b", "test:a", "export:a"}
    assert run_context.considered(tasks, ["all", "gone"]) == set(tasks) - {"test:c"}
