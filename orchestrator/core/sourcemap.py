"""Where each line of a generated file came from: the module source line a student wrote.

Export records it in one header line of the generated file,

    # source-map: {"modules/09_spatial/spatial_dev.py":[[5,12,30],[37,50,44]]}

each triple being (first generated line, its source line, how many lines), one per
exported cell. It lives in the header, not beside the file or in the body: keys hash
the body alone (export.body_digest), so a markdown edit that only shifts source lines
re-runs nothing, and no new file joins the tree's inputs.

`locate` is the one place a place in a generated file becomes a source place; the
pytest plugin calls it while the run's generated files are the ones that ran, and
stores the answer in the result, so every view (doit's lines, the log, GitHub
annotations, JUnit, the graph page, `why`) shows the same source line.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

FIELD = "source-map"
HEAD = "# Generated from "        # export.header's first line
HEADER_SCAN = 8                   # lines read to find FIELD (the header is 4 lines)


@dataclass(frozen=True)
class Segment:
    """`count` consecutive generated lines from `generated` on are source lines from `line`."""
    generated: int
    source: str          # the module source, relative to the project root (posix)
    line: int
    count: int


@dataclass(frozen=True)
class Location:
    """A place to look: relative to the project root when it is inside it. `generated` is
    'pkg/mod.py:133' when the place was mapped from a generated file, else ''."""
    path: str
    line: int
    generated: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def encode(segments: list[Segment]) -> str:
    """The header value: {source: [[generated, line, count], ...]}, compact, one line."""
    by_source: dict[str, list[list[int]]] = {}
    for s in segments:
        by_source.setdefault(s.source, []).append([s.generated, s.line, s.count])
    return json.dumps(by_source, separators=(",", ":"), ensure_ascii=False)


def decode(value: str) -> list[Segment]:
    """The segments of a header value; [] for anything that is not one."""
    try:
        data = json.loads(value)
        return sorted((Segment(g, source, line, count) for source, triples in data.items()
                       for g, line, count in triples), key=lambda s: s.generated)
    except (ValueError, TypeError, AttributeError):
        return []


_MAPS: dict[Path, tuple[tuple[int, int], list[Segment]]] = {}


def segments_of(path: Path) -> list[Segment]:
    """The source map in a generated file's header ([] for any other file), read once per
    version of the file."""
    try:
        st = path.stat()
    except OSError:
        return []
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _MAPS.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found: list[Segment] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = [f.readline() for _ in range(HEADER_SCAN)]
    except OSError:
        head = []
    if head and head[0].startswith(HEAD):
        prefix = f"# {FIELD}: "
        found = next((decode(line[len(prefix):].strip()) for line in head
                      if line.startswith(prefix)), [])
    _MAPS[path] = (stamp, found)
    return found


def locate(root: Path, path: str | os.PathLike, line: int) -> Location:
    """The one mapping: a place in a generated file -> the source line it was exported
    from; any other place as it is. A relative `path` is relative to the current folder
    (pytest's, the project root), and the answer is relative to `root` when inside it."""
    absolute = Path(path) if Path(path).is_absolute() else Path.cwd() / path
    rel = _relative(absolute, root)
    for s in segments_of(absolute):
        if s.generated <= line < s.generated + s.count:
            return Location(s.source, s.line + line - s.generated, f"{rel}:{line}")
    return Location(rel, line)


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(os.path.normpath(path)).relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        try:
            return Path(os.path.normpath(path)).relative_to(root).as_posix()
        except ValueError:
            return str(path)


# Places in traceback text: pytest's `path:line: message` and Python's
# `File "path", line N, in name` (native tracebacks).
PYTEST_PLACE = re.compile(r"^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+):(?P<rest>.*)$", re.M)
NATIVE_PLACE = re.compile(r'^(?P<indent>\s*)File "(?P<path>[^"]+\.py)", line (?P<line>\d+)'
                          r'(?P<rest>.*)$', re.M)


def rewrite_text(text: str, root: Path) -> str:
    """Traceback text with each place in a generated file replaced by its source place,
    the generated one kept beside it: `modules/09_spatial/spatial_dev.py:66: ValueError
    (generated tinytorch/core/spatial.py:133)`."""
    def pytest_place(m: re.Match) -> str:
        where = locate(root, m.group("path"), int(m.group("line")))
        if not where.generated:
            return m.group(0)
        return f"{where}:{m.group('rest')} (generated {where.generated})"

    def native_place(m: re.Match) -> str:
        where = locate(root, m.group("path"), int(m.group("line")))
        if not where.generated:
            return m.group(0)
        return (f'{m.group("indent")}File "{where.path}", line {where.line}{m.group("rest")} '
                f"(generated {where.generated})")
    return NATIVE_PLACE.sub(native_place, PYTEST_PLACE.sub(pytest_place, text))
