"""What a course's imports say: the absolute imports of each module's exported code and
tests, and the package they put before the modules' export paths (the package name).

An import is read from the code, never run: a cell or test file that does not parse is
skipped (export and pytest report it).
"""
from __future__ import annotations

import ast
import configparser
import re
from collections import Counter
from pathlib import Path, PurePosixPath

from orchestrator.core import export
from orchestrator.course.init_plan import Found, Import, InitError, Plan
from orchestrator.course.layering import imports_in


def names_one_of(name: str, paths: set[str]) -> bool:
    """`pkg.core.tensor.Tensor` names `core.tensor`, whatever the package is called."""
    rest = name.partition(".")[2]
    return any(rest == p or rest.startswith(p + ".") for p in paths)


def name_package(plan: Plan, package: str | None) -> None:
    """The package the modules export into: --package, else the prefix that the imports of
    the sources and tests put before other modules' `default_exp` paths, else nbdev's
    settings.ini `lib_name`, else the folder's name."""
    for module in plan.modules:
        module.imports = list(imports_of_source(plan.root, module)) + \
            list(imports_of_tests(plan.root, module))
    if package:
        plan.package, plan.package_from = package, "--package"
        if not package.isidentifier():
            raise InitError(f"the package name '{package}' (--package) is not a Python name; "
                            "pass --package NAME")
    else:
        plan.package, plan.package_from = _guess_package(plan)
    parents = {m.source.parent.parent for m in plan.modules}
    if len(parents) == 1 and parents != {PurePosixPath(".")}:
        plan.modules_dir = parents.pop().as_posix()


def _guess_package(plan: Plan) -> tuple[str, str]:
    """(a Python name, why): a guess that is not one falls through to the next guess."""
    votes: Counter = Counter()
    example: dict[str, str] = {}
    paths = {m.default_exp for m in plan.modules}
    for imp in [i for m in plan.modules for i in m.imports]:
        top = imp.name.partition(".")[0]         # `top.ops.add`: a vote for `top`
        if names_one_of(imp.name, paths) and top.isidentifier():
            votes[top] += 1
            example.setdefault(top, f"{imp.where} imports {imp.name}")
    if votes:
        best, count = votes.most_common(1)[0]
        return best, f"named by {count} imports of the sources and tests, e.g. {example[best]}"
    settings = plan.root / "settings.ini"        # nbdev's project settings
    if settings.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(settings, encoding="utf-8")
            name = parser.get("DEFAULT", "lib_name", fallback="").replace("-", "_")
        except configparser.Error:
            name = ""
        if name.isidentifier():
            return name, "lib_name in settings.ini"
    guess = re.sub(r"\W+", "_", plan.root.name).strip("_").lower() or "course"
    if not guess.isidentifier():
        guess = f"course_{guess}"
    return guess, "the folder's name: no import names it (pass --package to choose)"


def imports_of_source(root: Path, module: Found):
    """Every absolute import in the exported cells."""
    text = (root / module.source).read_text(encoding="utf-8")
    for cell in export.split_cells(text):
        if not export.EXPORTING & cell.directives.keys():
            continue
        try:
            tree = ast.parse("\n".join(cell.lines))
        except SyntaxError:
            continue              # export names it; the deps of the rest still count
        for line, name in imports_in(tree):
            yield Import(name, f"{module.source}:{cell.line + line - 1}", test=False)


def imports_of_tests(root: Path, module: Found):
    if module.tests is None:       # not paired (pair_tests pairs every module first)
        return
    for name, where in imports_under(root, root / module.tests):
        yield Import(name, where, test=True)


def imports_under(root: Path, folder: Path):
    """(dotted name, 'file:line') of every absolute import in the .py files under `folder`
    (a file that does not parse is pytest's to report)."""
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for line, name in imports_in(tree):
            yield name, f"{path.relative_to(root).as_posix()}:{line}"


