"""What is in a course and how its modules depend on each other: `orchestrator init`'s survey.

It reads the folder and writes nothing: a pipeline of plain steps, each a function of the
previous step's result:

    survey: find_candidates -> choose_sources -> pair_tests -> name_package -> infer_deps

Where the sources and their tests are is init_folders.py; the package name and the
imports it is read from, init_imports.py; the deps those imports give, and the findings
(imports of later modules, loops), init_deps.py. Nothing here stops init but a course
it cannot read at all. The result is a `Plan` (init_plan.py), which init.py renders and
writes.
"""
from __future__ import annotations

from pathlib import Path

from orchestrator.course.init_deps import infer_deps
from orchestrator.course.init_folders import (
    choose_sources,
    find_candidates,
    pair_tests,
    relative_path,
)
from orchestrator.course.init_imports import name_package
from orchestrator.course.init_plan import Choice, InitError, Plan

__all__ = ["Choice", "InitError", "Plan", "survey"]      # what init.py takes from here


def survey(root: Path, sources: str | None = None, tests_dir: str = "tests",
           package: str | None = None) -> Plan:
    """What init would write, found without writing anything."""
    root = Path(root).resolve()
    tests = relative_path(tests_dir, "--tests")
    candidates = find_candidates(root, sources)
    chosen, others, why = choose_sources(root, candidates, tests, given=sources is not None)
    empty = [s for c in candidates if not c.modules for s in c.left_out]   # named, not taken
    plan = Plan(root=root, modules=chosen.modules, notes=empty + chosen.left_out,
                tests_dir=tests, sources=chosen, others=others, chosen_by=why)
    pair_tests(plan)
    name_package(plan, package)
    infer_deps(plan)
    return plan
