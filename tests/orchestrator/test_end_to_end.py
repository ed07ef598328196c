"""doit on the throwaway minicalc curriculum: pass, cached, fail, blocked, and exactly-affected
re-runs."""
from __future__ import annotations

import json
import re

ALL = {"01_numbers", "02_add", "03_mul", "04_power"}



def test_cold_run_passes_everything_in_dependency_order(project):
    run = project.doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.statuses == {m: "PASSED" for m in ALL}
    order = [m for m in run.statuses]
    assert order.index("01_numbers") < order.index("02_add") < order.index("04_power")
    assert order.index("03_mul") < order.index("04_power")
    assert run.summary == \
        "Executed 4 out of 4 test targets: 4 passed, 0 failed, 0 blocked, 0 cached"
    assert run.stdout.splitlines()[-1] == "exit code 0: every requested target passed"
    assert re.search(r"^PASSED 02_add \(1 tests\) in \d+\.\ds$", run.stdout, re.M)
    [path] = project.state.results("02_add").glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "passed" and result["counts"] == {"passed": 1}


def test_second_run_is_cached_and_starts_no_pytest(warm):
    logs = warm.state.log("01_numbers").parent          # every module's log
    stamps = {p.name: p.stat().st_mtime_ns for p in logs.iterdir()}
    run = warm.doit("all")
    assert run.returncode == 0
    assert run.statuses == {m: "(cached) PASSED" for m in ALL}
    assert run.summary == \
        "Executed 0 out of 4 test targets: 0 passed, 0 failed, 0 blocked, 4 cached"
    assert {p.name: p.stat().st_mtime_ns for p in logs.iterdir()} == stamps


def test_one_target_runs_only_its_closure(project):
    run = project.doit("test:02_add")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.statuses == {"01_numbers": "PASSED", "02_add": "PASSED"}
    assert run.summary.startswith("Executed 2 out of 2 test targets")


def test_failure_blocks_dependents_only(warm):
    warm.append(warm.test_file("02_add"),
                "\n\ndef test_broken():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n")
    run = warm.doit("-n", "2", "all")
    assert run.returncode != 0
    assert run.statuses == {"01_numbers": "(cached) PASSED", "03_mul": "(cached) PASSED",
                             "02_add": "FAILED", "04_power": "BLOCKED"}
    assert "FAILED 02_add: 1 of 2 failed" in run.stdout
    assert ("tests/02_add/test_add_core.py::test_broken (tests/02_add/test_add_core.py:9): "
            "AssertionError: arithmetic is broken" in run.stdout), run.stdout
    assert "BLOCKED 04_power (by 02_add)" in run.stdout
    assert run.summary == \
        "Executed 1 out of 4 test targets: 0 passed, 1 failed, 1 blocked, 2 cached"
    assert run.returncode == 1
    assert run.stdout.splitlines()[-1] == \
        "exit code 1: a target failed, or was blocked by a failure"
    again = warm.doit("all")  # a failed run is never cached
    assert again.statuses["02_add"] == "FAILED"


def test_failure_at_the_root_blocks_everything_but_independent_branches_run(project):
    project.append(project.test_file("01_numbers"), "\n\ndef test_broken():\n    assert False\n")
    project.append(project.test_file("02_add"), "\n\ndef test_broken():\n    assert False\n")
    run = project.doit("-n", "2", "all")
    assert run.statuses == {"01_numbers": "FAILED", "02_add": "BLOCKED",
                             "03_mul": "BLOCKED", "04_power": "BLOCKED"}
    assert "BLOCKED 04_power (by 01_numbers)" in run.stdout
    assert run.returncode != 0


def test_independent_branch_still_runs_after_a_failure(project):
    project.append(project.test_file("02_add"), "\n\ndef test_broken():\n    assert False\n")
    run = project.doit("all")
    assert run.statuses == {"01_numbers": "PASSED", "02_add": "FAILED", "03_mul": "PASSED",
                             "04_power": "BLOCKED"}


def test_source_edit_reruns_the_module_and_its_dependents(warm):
    warm.write(warm.source("03_mul"),
               warm.read(warm.source("03_mul")).replace("return number(a) * number(b)",
                                                        "return number(b) * number(a)"))
    run = warm.doit("all")
    assert run.returncode == 0
    assert run.executed == {"03_mul", "04_power"}


def test_test_edit_reruns_only_that_module(warm):
    warm.append(warm.test_file("01_numbers"), "\n\ndef test_more():\n    assert 1 == 1.0\n")
    assert warm.doit("all").executed == {"01_numbers"}


def test_non_exported_cell_edit_reruns_nothing(warm):
    warm.append(warm.source("01_numbers"), "print('another demo line')\n")
    run = warm.doit("all")
    assert run.executed == set()
    assert run.statuses == {m: "(cached) PASSED" for m in ALL}


def test_graph_entry_edit_reruns_that_module(warm):
    warm.write("graph.toml", warm.read("graph.toml").replace('title = "Addition"',
                                                             'title = "Adding"'))
    assert warm.doit("all").executed == {"02_add"}


def test_conftest_above_tests_reruns_everything(warm):
    warm.write("tests/conftest.py", "# shared fixtures\n")
    assert warm.doit("all").executed == ALL


def test_pytest_args_are_part_of_the_key(warm):
    assert warm.doit("all", "pytest=-x").executed == ALL
    assert warm.doit("all", "pytest=-x").executed == set()


def test_hand_edited_export_fails_the_export_and_blocks(warm):
    warm.append("minicalc/numbers.py", "PATCH = 1\n")
    warm.append(warm.source("01_numbers"), "# touch\n")
    run = warm.doit("all")
    assert run.returncode != 0
    assert "FAILED export:01_numbers: minicalc/numbers.py was edited by hand" in run.stdout
    assert "BLOCKED 01_numbers (by export:01_numbers)" in run.stdout


def test_empty_tests_dir_is_a_failure(project):
    (project.root / project.test_file("03_mul")).unlink()
    run = project.doit("test:03_mul")
    assert run.returncode == 1
    assert run.stdout.splitlines()[-1] == \
        "exit code 1: a target failed, or was blocked by a failure"
    assert "FAILED 03_mul: no tests collected for 03_mul" in run.stdout


def test_independent_modules_run_at_the_same_time(project):
    """With -n 2, 02 and 03 (independent) overlap in time: each test says it started,
    then waits for the other's to start too. Run one after the other, the first would
    wait in vain (until the safety net); no time is compared, so a busy machine, which
    only delays either, cannot fail it."""
    probe = ("import pathlib, time\n\n\ndef test_meets_the_other():\n"
             "    pathlib.Path('{here}').touch()\n"
             "    deadline = time.monotonic() + 120\n"
             "    while not pathlib.Path('{other}').exists():\n"
             "        assert time.monotonic() < deadline, 'the other suite never ran meanwhile'\n"
             "        time.sleep(0.02)\n")
    started = {mid: project.root.parent / f"{mid}.started" for mid in ("02_add", "03_mul")}
    for mid, other in (("02_add", "03_mul"), ("03_mul", "02_add")):
        project.write(f"tests/{mid}/test_overlap.py",
                      probe.format(here=started[mid], other=started[other]))
    run = project.doit("-n", "2", "all")
    assert run.returncode == 0, run.stdout
    assert run.statuses == {"01_numbers": "PASSED", "02_add": "PASSED", "03_mul": "PASSED",
                            "04_power": "PASSED"}, "the two independent suites did not overlap"


def test_strict_mode_waits_for_every_earlier_module(project):
    project.append(project.test_file("02_add"), "\n\ndef test_broken():\n    assert False\n")
    run = project.doit("all", "strict=1")
    assert run.statuses["03_mul"] == "BLOCKED"  # 03 does not use 02, but strict order says wait


def test_unknown_task_is_one_clear_line(project):
    run = project.doit("test:99_nothing")
    assert run.returncode == 3
    assert "test:99_nothing" in run.stderr and "Traceback" not in run.stderr


def test_plain_pytest_exports_before_any_conftest_imports_the_package(project):
    """A conftest importing the package at its top sees the current export, not a stale one."""
    project.write("tests/conftest.py", "from minicalc.numbers import number\n\n"
                                       "ONE = number('1')\n")
    run = project.run("-q", "-p", "no:cacheprovider", tool="pytest")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
    project.write(project.source("01_numbers"), project.read(project.source("01_numbers"))
                  .replace("return float(x)", "return float(x) + 1"))
    run = project.run("-q", "-p", "no:cacheprovider", tool="pytest")
    assert "FAILED tests/01_numbers/test_numbers_core.py::test_number" in run.stdout
