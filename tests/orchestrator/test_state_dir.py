"""The state dir's layout has one owner, orchestrator/core/state.py: what StateDir names is
the layout its docstring documents (and users' scripts rely on), and no other module of
the orchestrator spells those names."""
from __future__ import annotations

from pathlib import Path

from orchestrator.core import state
from orchestrator.core.digests import cache_for
from orchestrator.core.lock import RunLock
from orchestrator.core.state import STATE_DIR, StateDir

LAYOUT = {"results/NN_name", "results/NN_name/<key>.json", "logs/NN_name.log",
          "reports/NN_name.json", "reports/NN_name.observed", "tmp/NN_name",
          "statcache.json", "last_run.json", "flaky.json", "corrupt", "graph", "outputs.json",
          "lock"}


def named(s: StateDir) -> set[Path]:
    m = "NN_name"
    return {s.results(m), s.result(m, "<key>"), s.log(m), s.report(m), s.observed(m), s.tmp(m),
            s.statcache, s.last_run, s.flaky, s.corrupt, s.graph, s.outputs, s.lock}


def test_state_dir_names_the_documented_layout(tmp_path):
    s = StateDir(tmp_path)
    assert s.path == tmp_path / STATE_DIR
    assert s.all_results == s.results("NN_name").parent
    layout = {p.relative_to(s.path).as_posix() for p in named(s)}
    assert layout == LAYOUT
    for rel in layout:
        assert rel in (state.__doc__ or ""), f"{rel} is not in state.py's documented layout"


def test_any_folder_can_be_a_state_dir(tmp_path):
    folder = tmp_path / "elsewhere"
    assert StateDir.at(folder).path == folder
    assert StateDir.at(folder).lock == folder / "lock"
    assert RunLock(folder).path == StateDir.at(folder).lock
    assert cache_for(StateDir(tmp_path)).path == StateDir(tmp_path).statcache


def test_no_other_module_spells_the_state_files_names():
    package = Path(state.__file__).resolve().parents[1]
    names = [f'"{rel}"' for rel in LAYOUT if rel.endswith(".json") and "/" not in rel]
    spelled = [f"{path.relative_to(package.parent).as_posix()}: {name}"
               for path in sorted(package.rglob("*.py")) if path != Path(state.__file__).resolve()
               for name in names if name in path.read_text(encoding="utf-8")]
    assert spelled == []
