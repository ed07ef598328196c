"""A verdict a student can act on: what broke, in which line of *their* file, and the
exact command that checks the fix.

Each test is a student's step on minicalc (conftest.py) and what they must see: the
line of the module source they wrote (never the generated file) on every surface that
names a place; the exception's own words (never a bare `AssertionError: `); a rerun
command that works from any folder in any course; one set of counts, skipped tests
with their reasons; root causes first; and the small things (did you mean, forget,
why, junit=, the estimate, the graph page).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PYPROJECT, REPO, DoitRun, source_text

# 02_add with a bug on a known line of its source: add(2, 3) raises there
BUGGY_ADD = ("from minicalc.numbers import number\n\n\n"
             "def add(a, b):\n"
             "    total = number(a) + number(b)\n"
             "    if total > 4:\n"
             "        raise ValueError('total too large:\\n  a deliberate bug')\n"
             "    return total\n")
BUG_LINE_TEXT = "        raise ValueError('total too large:\\n  a deliberate bug')"


def doit(project, *args: str, env: dict | None = None, cwd: Path | None = None) -> DoitRun:
    """doit as the project runs it, with extra environment variables."""
    return DoitRun(subprocess.run([sys.executable, "-m", "doit", *args], cwd=cwd or project.root,
                                  env={**project.env(), **(env or {})}, capture_output=True,
                                  text=True, timeout=300))


def break_add(project) -> str:
    """Put the bug into 02_add's source; 'modules/02_add/add_dev.py:N', N its line."""
    text = source_text("ops.add", BUGGY_ADD)
    project.write(project.source("02_add"), text)
    return f"{project.source('02_add')}:{text.splitlines().index(BUG_LINE_TEXT) + 1}"


def failure_lines(run: DoitRun) -> list[str]:
    return [line for line in run.stdout.splitlines() if line.startswith("    tests/")]


def reruns(run: DoitRun) -> list[str]:
    return re.findall(r"^      rerun: (.*)$", run.stdout, re.M)


# --- 1. a source map, and every surface names the source line ----------------------------
@pytest.mark.parametrize("root", [REPO, None], ids=["tinytorch", "minicalc"])
def test_the_source_map_maps_each_generated_line_to_the_line_it_came_from(root, project):
    from orchestrator.core import export, sourcemap
    from orchestrator.core.graph import load
    graph = load(root or project.root)
    for module in graph:
        text = export.render(module, graph)
        cells = export.exported_cells(module, graph)
        old_body = "\n\n\n".join("\n".join(c.lines).strip("\n") for c in cells) + "\n"
        header, body = text.split("\n", export.HEADER_LINES)[:-1], \
            text.split("\n", export.HEADER_LINES)[-1]
        assert body == old_body, module.id        # the body, hence every key, is unchanged
        assert header[-1].startswith("# source-map: ")
        generated = text.splitlines()
        segments = sourcemap.decode(header[-1].removeprefix("# source-map: "))
        mapped = 0
        for segment in segments:
            source = (graph.root / segment.source).read_text(encoding="utf-8").splitlines()
            for k in range(segment.count):
                assert generated[segment.generated - 1 + k] == \
                    source[segment.line - 1 + k], (module.id, segment, k)
                mapped += 1
        # every line but the two blank lines between cells came from a source line
        assert mapped == len(body.splitlines()) - 2 * (len(cells) - 1), module.id


def test_a_file_exported_before_source_maps_keeps_its_key_and_is_exported_again(project):
    from orchestrator.core import export
    from orchestrator.core.graph import load
    graph = load(project.root)
    module = graph["02_add"]
    target = export.export_module(module, graph)
    digest = export.body_digest(target)
    lines = target.read_text(encoding="utf-8").split("\n")
    target.write_text("\n".join(lines[:3] + lines[4:]), encoding="utf-8")   # no map line
    assert export.body_digest(target) == digest                # the same key input
    assert not export.hand_edited(target) and not export.is_current(module, graph)
    export.export_module(module, graph)
    assert export.is_current(module, graph) and export.body_digest(target) == digest


def test_a_bug_in_a_module_source_is_named_at_its_line_on_every_surface(project):
    where = break_add(project)
    summary = project.root / "summary.md"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
              "GITHUB_WORKSPACE": str(project.root)}
    run = doit(project, "test:02_add", "junit=reports/run.xml", env=github)
    assert run.returncode == 1, run.stdout + run.stderr
    (line,) = failure_lines(run)
    assert line == (f"    tests/02_add/test_add_core.py::test_add ({where}): "
                    "ValueError: total too large:"), run.stdout
    assert "minicalc/ops/add.py" not in line
    # the log's traceback names the source line beside the generated one
    log = project.read(".orchestrator/logs/02_add.log")
    assert f"{where}: ValueError" in log, log
    # the GitHub annotation and the step summary
    (annotation,) = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert f"file={where.split(':')[0]},line={where.split(':')[1]}," in annotation
    assert where in summary.read_text(encoding="utf-8")
    # JUnit's file= and line=
    xml = (project.root / "reports" / "run.xml").read_text(encoding="utf-8")
    assert f'file="{where.split(":")[0]}" line="{where.split(":")[1]}"' in xml, xml
    # why, and the graph page's data
    why = project.orchestrator("why", "test:02_add")
    assert where in why.stdout, why.stdout
    page = project.root / "page.html"
    assert project.orchestrator("graph", "--format", "html", "-o", str(page)).returncode == 0
    assert where in page.read_text(encoding="utf-8")


def test_a_bug_under_xdist_is_named_at_its_source_line_too(project):
    where = break_add(project)
    run = doit(project, "test:02_add", "xdist=always")
    assert run.returncode == 1, run.stdout + run.stderr
    (line,) = failure_lines(run)
    assert f"({where}): ValueError: total too large:" in line, run.stdout


# --- 2. the message that matters ---------------------------------------------------------
NUMPY_AND_REWRITE = """

import numpy as np


def test_close():
    np.testing.assert_allclose([mul(2, 3), 1.0], [6.5, 1.0])


def test_rewritten():
    assert mul(2, 2) == 5
"""


def test_a_failure_shows_its_type_and_the_lines_that_matter(project):
    project.append(project.test_file("03_mul"), NUMPY_AND_REWRITE)
    run = project.doit("test:03_mul")
    assert run.returncode == 1, run.stdout + run.stderr
    assert not [line for line in run.stdout.splitlines()
                if line.rstrip().endswith("Error:")], run.stdout
    close = run.stdout.split("::test_close")[1].split("rerun:")[0]
    assert "AssertionError: Not equal to tolerance rtol=1e-07, atol=0" in close, run.stdout
    assert "Max absolute difference" in close and "0.5" in close
    rewritten = run.stdout.split("::test_rewritten")[1].split("rerun:")[0]
    assert "AssertionError: assert 4.0 == 5" in rewritten, run.stdout
    assert "where 4.0 = mul(2, 2)" in rewritten
    report = project.orchestrator("report", "--junit", "j.xml")
    assert report.returncode == 0, report.stderr
    xml = project.read("j.xml")
    assert 'message="AssertionError: Not equal to tolerance rtol=1e-07, atol=0"' in xml, xml


def test_summarize_keeps_the_type_and_bounds_the_message():
    from orchestrator.run import verdict
    numpy = ("AssertionError: \nNot equal to tolerance rtol=1e-07, atol=0\n\n"
             "Mismatched elements: 1 / 3 (33.3%)\nMax absolute difference among violations: 0.5\n"
             " ACTUAL: array([1. , 2. , 3.5])\n DESIRED: array([1., 2., 3.])")
    lines = verdict.summarize(numpy).splitlines()
    assert lines[0] == "AssertionError: Not equal to tolerance rtol=1e-07, atol=0"
    assert "Max absolute difference among violations: 0.5" in lines
    huge = "ValueError: " + "x" * 10_000 + "\n" + "\n".join(f"line {i}" for i in range(100))
    short = verdict.summarize(huge)
    assert len(short.splitlines()) <= verdict.MAX_LINES
    assert len(short) <= verdict.MAX_LINES * (verdict.MAX_CHARS + 1)
    assert verdict.summarize("AssertionError: ") == "AssertionError"


# --- 3. rerun commands that always work ---------------------------------------------------
@pytest.mark.parametrize("course", ["plugin in addopts", "set up by orchestrator init"])
def test_each_rerun_command_works_from_a_subfolder_after_the_fix(project, course):
    if course != "plugin in addopts":      # init writes no pytest configuration at all
        project.write("pyproject.toml", PYPROJECT[PYPROJECT.index("[tool.doit"):])
        assert "pytest" not in project.read("pyproject.toml")
    source = project.read(project.source("02_add"))
    project.write(project.source("02_add"), source.replace("number(a) + number(b)",
                                                           "number(a) - number(b)"))
    project.append(project.test_file("02_add"),
                   "\n\ndef test_param_ids_need_quotes():\n    assert add(1, 1) == 2.0\n")
    run = project.doit("test:02_add")
    assert run.returncode == 1, run.stdout + run.stderr
    commands = reruns(run)
    assert len(commands) == 2, run.stdout
    subfolder = project.root / "modules" / "02_add"
    before = subprocess.run(["bash", "-c", commands[0]], cwd=subfolder, env=project.env(),
                            capture_output=True, text=True)
    assert before.returncode == 1, before.stdout + before.stderr     # the same test fails
    project.write(project.source("02_add"), source)                  # the student's fix
    for command in commands:
        after = subprocess.run(["bash", "-c", command], cwd=subfolder, env=project.env(),
                               capture_output=True, text=True)
        assert after.returncode == 0, command + "\n" + after.stdout + after.stderr
        assert re.search(r"\b1 passed\b", after.stdout), after.stdout


def test_the_rerun_command_quotes_and_finds_the_project_from_anywhere(tmp_path):
    from orchestrator.run import verdict
    root = tmp_path / "my course"
    inside = verdict.rerun_command(root, ["tests/01_a/test_a.py::test[x y]"], ["-k", "a b"],
                                   python=root / ".venv" / "bin" / "python")
    assert inside == (f"cd '{root}' && .venv/bin/python -m pytest "
                      "-p orchestrator.run.pytest_plugin "
                      "'tests/01_a/test_a.py::test[x y]' -k 'a b'")
    outside = verdict.rerun_command(root, ["tests/t.py::t"], [], python=Path("/usr/bin/python3"))
    assert outside == (f"cd '{root}' && /usr/bin/python3 -m pytest -p "
                       "orchestrator.run.pytest_plugin tests/t.py::t")


def test_orchestrator_rerun_runs_the_failing_tests_of_a_module(project):
    project.append(project.test_file("03_mul"), "\n\ndef test_broken():\n    assert 2 * 2 == 5\n")
    assert project.doit("test:03_mul").returncode == 1
    rerun = subprocess.run([sys.executable, "-m", "orchestrator", "rerun", "03"],
                           cwd=project.root / "tests", env=project.env(), capture_output=True,
                           text=True)
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert re.search(r"\b1 failed\b", rerun.stdout) and "passed" not in rerun.stdout, rerun.stdout


# --- 4. one set of counts, skipped tests with their reasons -------------------------------
SKIPS = """

import pytest


@pytest.mark.skip(reason="PyTorch not installed")
def test_oracle_a():
    pass


@pytest.mark.skip(reason="PyTorch not installed")
def test_oracle_b():
    pass


def test_gpu():
    pytest.skip("needs a GPU")
"""


def test_counts_are_one_set_everywhere_and_skips_carry_their_reasons(project):
    project.append(project.test_file("01_numbers"), SKIPS)
    junit = project.root.parent / "j.xml"     # outside the tree: it is no input of the next run
    run = project.doit("test:01_numbers", f"junit={junit}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED 01_numbers (4 tests: 1 passed, 3 skipped) in " in run.stdout, run.stdout
    assert "    2 skipped: PyTorch not installed\n    1 skipped: needs a GPU\n" in run.stdout
    cached = project.doit("test:01_numbers")
    assert "(cached) PASSED 01_numbers (4 tests: 1 passed, 3 skipped)\n" \
           "    2 skipped: PyTorch not installed\n" in cached.stdout, cached.stdout
    xml = junit.read_text(encoding="utf-8")
    assert xml.count('<skipped message="PyTorch not installed"') == 2, xml
    assert '<skipped message="needs a GPU"' in xml
    status = project.orchestrator("status").stdout.splitlines()
    assert status[0].split() == ["module", "state", "tests", "passed", "failed", "skipped",
                                 "not-run", "duration", "age"]
    row = next(line.split() for line in status if line.startswith("01_numbers"))
    assert row[1:7] == ["cached", "4", "1", "0", "3", "0"], status
    assert any("2 skipped: PyTorch not installed" in line for line in status), status
    report = project.orchestrator("report").stdout
    assert ("| 01_numbers | (cached) PASSED | 4 tests: 1 passed, 3 skipped "
            "(PyTorch not installed: 2; needs a GPU: 1) |") in report, report
    page = project.root / "page.html"
    project.orchestrator("graph", "--format", "html", "-o", str(page))
    assert "4 tests: 1 passed, 3 skipped" in page.read_text(encoding="utf-8")
    project.append(project.test_file("01_numbers"), "\n\ndef test_broken():\n    assert 0\n")
    failed = project.doit("test:01_numbers")
    assert "FAILED 01_numbers: 1 of 5 failed in " in failed.stdout, failed.stdout
    row = next(line.split() for line in project.orchestrator("status").stdout.splitlines()
               if line.startswith("01_numbers"))
    assert row[1:7] == ["failed", "5", "1", "1", "3", "0"]


# --- 5. small things ------------------------------------------------------------------------
def test_unknown_targets_and_variables_say_what_was_meant(project):
    for typo, meant in (("test:mull", "test:03_mul"), ("test:numbrs", "test:01_numbers"),
                        ("export:powr", "export:04_power")):
        run = project.doit(typo)
        assert run.returncode == 3, run.stdout + run.stderr
        assert run.stderr.strip() == f"ERROR: unknown task '{typo}' (did you mean {meant}?)"
    variable = project.doit("all", "stirct=1")
    assert variable.returncode == 3 and "(did you mean strict?)" in variable.stderr


def test_forget_really_forgets_and_doit_a_forces(warm):
    forgot = warm.orchestrator("forget", "01")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.startswith("forgot test:01_numbers: 1 stored result removed"), \
        forgot.stdout
    run = warm.doit("test:02_add")
    assert run.statuses == {"01_numbers": "PASSED", "02_add": "(cached) PASSED"}, run.stdout
    forced = warm.doit("-a", "test:02_add")
    assert forced.statuses == {"01_numbers": "PASSED", "02_add": "PASSED"}, forced.stdout


def test_doit_forget_drops_the_stored_results_when_registered(warm):
    # the course registers the orchestrator's forget, as `orchestrator init` writes it
    assert 'forget = "orchestrator.campaign.doit_run:Forget"' in warm.read("pyproject.toml")
    forgot = warm.doit("forget", "test:03_mul")
    assert forgot.returncode == 0, forgot.stdout + forgot.stderr
    assert "forgot test:03_mul: 1 stored result removed" in forgot.stdout
    assert warm.doit("all").statuses["03_mul"] == "PASSED"


def test_why_agrees_with_the_latest_result(project):
    """Passed with pytest=-q, failed (a plain run), fixed, (cached) PASSED with -q again:
    `why` speaks of that latest result, not of the failure before it."""
    assert project.doit("test:02_add", "pytest=-q").statuses["02_add"] == "PASSED"
    source = project.read(project.source("02_add"))
    project.write(project.source("02_add"), source.replace("+ number(b)", "- number(b)"))
    assert project.doit("test:02_add").statuses["02_add"] == "FAILED"
    project.write(project.source("02_add"), source)
    assert project.doit("test:02_add", "pytest=-q").statuses["02_add"] == "(cached) PASSED"
    first = project.orchestrator("why", "test:02_add").stdout.splitlines()[0]
    assert first.startswith("test:02_add will reuse its result"), first


def test_junit_creates_its_folder_or_the_run_fails(warm):
    run = warm.doit("all", "junit=reports/deep/junit.xml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (warm.root / "reports" / "deep" / "junit.xml").is_file()
    warm.write("blocker", "a file where a folder should be")
    refused = warm.doit("all", "junit=blocker/junit.xml")
    assert refused.returncode == 3, refused.stdout
    assert "cannot write the JUnit report blocker/junit.xml" in refused.stdout
    assert refused.stdout.splitlines()[-1].startswith("exit code 3")


def test_the_estimate_counts_what_is_left_of_the_selected_targets():
    import io

    from orchestrator.report import progress
    # a -> b -> c, and d alone; a run of all four on one worker, then on two
    durations = {"a": 10.0, "b": 10.0, "c": 10.0, "d": 5.0}
    dependents = {"a": ["b"], "b": ["c"], "c": [], "d": []}
    one = progress.Progress(io.StringIO(), 4, durations, dependents, workers=1)
    assert one.estimate(0.0) == pytest.approx(35.0)          # all the work, one at a time
    two = progress.Progress(io.StringIO(), 4, durations, dependents, workers=2)
    assert two.estimate(0.0) == pytest.approx(30.0)          # the chain a-b-c
    two.running["a"], two.running["d"] = 0.0, 0.0
    assert two.estimate(4.0) == pytest.approx(26.0)
    for done in ("a", "d"):
        two.finished(done)
    two.running["b"] = 10.0
    assert two.estimate(18.0) == pytest.approx(12.0)
    two.finished("b")
    two.running["c"] = 20.0
    assert two.estimate(29.0) == pytest.approx(1.0)          # just before the end: ~1s


def test_root_causes_end_the_summary(warm):
    warm.append(warm.test_file("01_numbers"), "\n\ndef test_broken():\n    assert 0\n")
    run = warm.doit("all")
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[-3].startswith("Executed 1 out of 4 test targets")
    assert lines[-2] == ("1 failing module blocks 3 others: 01_numbers "
                         "(tests/01_numbers/test_numbers_core.py: 1 test)"), run.stdout
    report = warm.orchestrator("report").stdout
    assert "1 failing module blocks 3 others: 01_numbers" in report, report


def test_blocked_nodes_carry_no_stale_figures(warm):
    warm.append(warm.test_file("03_mul"), "\n\ndef test_broken():\n    assert 0\n")
    assert warm.doit("all").statuses["04_power"] == "BLOCKED"
    nodes = {n["id"]: n for n in json.loads(warm.orchestrator(
        "graph", "--format", "json").stdout)["nodes"]}
    assert nodes["04_power"]["status"] == "blocked"
    assert nodes["04_power"]["duration"] is None and nodes["04_power"]["tests"] == {}
    text = warm.orchestrator("graph").stdout
    assert re.search(r"04_power\s+blocked\s+<-", text), text
    row = next(line.split() for line in warm.orchestrator("status").stdout.splitlines()
               if line.startswith("04_power"))
    assert row[1:3] == ["blocked", "-"] and " ".join(row[-2:]) == "(by 03_mul)", row


# --- 6. the graph page, as a browser shows it ---------------------------------------------
@pytest.fixture
def chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run installs it)")
    return browser


def panel(browser: str, page: Path, profile: Path, fragment: str) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={profile}", "--window-size=1400,900", "--dump-dom"]
    dom = subprocess.run([browser, *flags, page.as_uri() + fragment], capture_output=True,
                         text=True, timeout=120).stdout
    return re.search(r'<div id="details"[^>]*>(.*?)</div>', dom, re.S).group(1)


def test_the_graph_panel_shows_message_source_line_rerun_and_blockers(chromium, warm,
                                                                       tmp_path):
    where = break_add(warm)
    assert warm.doit("all").statuses["04_power"] == "BLOCKED"
    page = warm.root / "page.html"
    assert warm.orchestrator("graph", "--format", "html", "-o", str(page)).returncode == 0
    failed = panel(chromium, page, tmp_path / "profile", "#02_add")
    assert "ValueError: total too large:" in failed, failed
    assert where in failed
    assert "rerun" in failed and "-p orchestrator.run.pytest_plugin" in failed
    assert 'href=".orchestrator/logs/02_add.log"' in failed, failed
    assert "file://" not in failed
    blocked = panel(chromium, page, tmp_path / "profile", "#04_power")
    assert re.search(r"blocked by .*02_add", blocked), blocked
    assert "Last result" not in blocked and "passed" not in blocked, blocked
    # `doit graph` writes the page into the state dir: its links are relative to it too
    assert warm.doit("graph").returncode == 0
    state_page = warm.root / ".orchestrator" / "graph" / "graph.html"
    inside = panel(chromium, state_page, tmp_path / "profile", "#02_add")
    assert 'href="../logs/02_add.log"' in inside, inside
