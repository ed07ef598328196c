"""What `orchestrator init`'s survey finds: the `Plan` and its parts, plain data.

A `Plan` holds the modules `Found` in curriculum order (each with its source, its test
folder and how it was paired, the imports read from it and the deps they give), the
`Candidate` folders of sources and why one was taken (`Choice`), and the findings:
imports of later modules (`Forward`) and loops among the sources' imports (`Cycle`).
init_survey.py makes it; init.py renders and writes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath


class InitError(Exception):
    """init cannot go on (a file exists, nothing found, a bad argument): one line."""


class Choice(Enum):
    """Why init took the module sources it took."""
    GIVEN = "--sources"
    ONLY = "the only folder of module sources"
    EVIDENCE = "the tests import its exports, the package was generated from it"


class Pairing(Enum):
    """How a module source found its test folder."""
    SAME_ID = "same number and name"
    SAME_NAME = "same name"          # renumbered in one place and not the other
    SAME_NUMBER = "same number"
    CREATED = "none found: created empty"


@dataclass(frozen=True)
class Import:
    name: str          # the dotted name imported
    where: str         # "file:line"
    test: bool         # in a test file (else in the module's exported code)


@dataclass
class Found:
    """One module source found on disk."""
    id: str                        # "02_add"
    name: str                      # "add"
    source: PurePosixPath          # relative to the root
    default_exp: str               # "ops.add" (inside the package: see name_package)
    tests: PurePosixPath | None = None
    pairing: Pairing | None = None
    imports: list[Import] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)   # dep -> the first import naming it

    @property
    def number(self) -> int:
        return int(self.id.split("_", 1)[0])


@dataclass
class Candidate:
    """The module sources one glob names, and how well they match the course."""
    glob: str                      # as given, or the default ("src/NN_*")
    modules: list[Found]
    left_out: list[str]            # "left out PATH: why"
    test_imports: int = 0          # imports in the tests that name one of its exports
    generated: int = 0             # package files whose header names one of its folders

    @property
    def score(self) -> int:
        return self.test_imports + self.generated

    def evidence(self) -> str:
        files = "1 package file was" if self.generated == 1 else \
            f"{self.generated} package files were"
        return (f"{len(self.modules)} modules: the tests import {self.test_imports} of "
                f"their exports, {files} generated from them")


@dataclass(frozen=True)
class Forward:
    """An import of a later module: no dep (deps point back), so it is a finding."""
    module: str        # the importer
    where: str         # "file:line"
    path: str          # the export path imported ("tinyml.core.training")
    exporter: str      # the module that exports it, later in the curriculum
    exporter_tests: str
    test: bool

    def __str__(self) -> str:
        way = (f"move the test to {self.exporter_tests}" if self.test else
               f"move that code to {self.exporter} or later")
        return (f"{self.where} imports {self.path}, which {self.exporter} exports, later "
                f"than {self.module}: {way}, or renumber {self.exporter} before {self.module}")


@dataclass(frozen=True)
class Cycle:
    """Sources that import each other: no numbering puts each after what it imports."""
    loop: tuple[str, ...]          # ("01_a", "07_b", "01_a"): each imports the next
    steps: tuple[str, ...]         # "file:line imports name", one per edge of the loop

    @property
    def name(self) -> str:
        return " -> ".join(self.loop)

    def __str__(self) -> str:
        return (f"import cycle: {self.name} ({'; '.join(self.steps)}): no numbering puts each "
                "module after what it imports; move the code one needs into the other, or "
                "import it inside the function that uses it")


@dataclass
class Plan:
    root: Path
    modules: list[Found]           # in curriculum order
    sources: Candidate             # the sources taken
    package: str = ""
    package_from: str = ""         # how the package name was decided, for the report
    modules_dir: str = "modules"
    tests_dir: str = "tests"
    notes: list[str] = field(default_factory=list)
    create_dirs: list[PurePosixPath] = field(default_factory=list)   # empty test folders
    others: list[Candidate] = field(default_factory=list)   # sources found, not taken
    chosen_by: Choice = Choice.ONLY   # why `sources` was taken
    forward: list[Forward] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)

    def export(self, module: Found) -> str:
        return f"{self.package}.{module.default_exp}"

