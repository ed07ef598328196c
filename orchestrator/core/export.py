"""modules/NN_name/name_dev.py -> <package>/.../name.py, atomically and with provenance.

A module source is a jupytext percent-format file: cells start with `# %%`.
`#| default_exp core.tensor` names the target; cells whose first lines hold
`#| export` are copied into the generated file. nbdev's spellings are read too
(`#|export`, `# | export` as formatters write it, a trailing `# comment`,
`exports` and `exporti`), so are directives right after jupytext's `# ---` YAML
header in the first cell, Quarto cell options (`#| echo: false`, ignored), CRLF
line endings and a UTF-8 byte order mark. The generated file starts with
a header naming its source, the hashes of the source and of the body (so a hand
edit of the generated file is detected and never silently overwritten) and the
source map: the source line of every exported line (sourcemap.py), so a failure
is reported at the line the student wrote, never in the generated file.

We split cells ourselves rather than through jupytext: it keeps the exact
source line of every cell, which error messages need, and costs no import.
"""
from __future__ import annotations

import hashlib
import py_compile
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core import sourcemap
from orchestrator.core.files import atomic_write
from orchestrator.core.graph import Module, ModuleGraph

CELL = re.compile(r"^# %%")
TEXT_CELL = re.compile(r"^# %%.*\[(markdown|md|raw)\]")   # never holds directives
# `#| name value`, `#|name`, `# | name` (black and ruff put a space after `#`), with an
# optional trailing `# comment`; group 2 is a Quarto option's colon (`#| echo: false`)
DIRECTIVE = re.compile(r"^#\s*\|\s*(\w+)(\s*:)?(.*)$")
TRAILING_COMMENT = re.compile(r"(?:^|\s)#.*$")
EXPORTING = {"export", "exports", "exporti"}   # nbdev: exported (and shown, or internal)
KNOWN_DIRECTIVES = EXPORTING | {"default_exp", "hide"}
YAML_FENCE = "# ---"          # jupytext's header: `# ---` ... `# ---` at the top of the file
HEADER_LINES = 4             # Generated from, source-sha256, body-sha256, source-map
HEADER_FIELDS = ("source-sha256", "body-sha256", sourcemap.FIELD)


class ExportError(Exception):
    """A mistake in a module source or a protected generated file, as one line."""


@dataclass
class Cell:
    line: int          # 1-based line of the cell's first source line
    lines: list[str]
    directives: dict[str, str]
    directive_lines: dict[str, int]
    origin: Path | None = None     # the source file it came from (a module may have several)


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def split_cells(text: str) -> list[Cell]:
    cells: list[tuple[int, list[str], bool]] = []
    current: list[str] = []
    start, code = 1, True
    lines = text.removeprefix("\ufeff").splitlines()    # \n, \r\n or \r
    header = _yaml_header_length(lines)
    for number, line in enumerate(lines, start=1):
        if number <= header:
            start = number + 1          # the header is no source line of the first cell
        elif CELL.match(line):
            cells.append((start, current, code))
            current, start, code = [], number + 1, not TEXT_CELL.match(line)
        else:
            current.append(line)
    cells.append((start, current, code))
    return [_cell(start, lines, code) for start, lines, code in cells
            if any(line.strip() for line in lines)]


def _yaml_header_length(lines: list[str]) -> int:
    """How many lines jupytext's YAML header takes at the top of the file (0 if none)."""
    if not lines or lines[0].rstrip() != YAML_FENCE:
        return 0
    for i in range(1, len(lines)):
        if lines[i].rstrip() == YAML_FENCE:
            return i + 1
        if not lines[i].startswith("#"):
            return 0                    # not a header: a comment line, then code
    return 0


def _cell(start: int, lines: list[str], code: bool = True) -> Cell:
    directives, directive_lines, body_at = {}, {}, 0
    for i, line in enumerate(lines):
        match = DIRECTIVE.match(line) if code else None    # `# | a | b |`: a markdown table
        if match:
            name, option, rest = match.groups()
            if not option:              # Quarto's `#| key: value` options are for rendering
                directives[name] = TRAILING_COMMENT.sub("", rest).strip()
                directive_lines[name] = start + i
            body_at = i + 1
        elif line.strip():
            break
    return Cell(line=start + body_at, lines=lines[body_at:], directives=directives,
                directive_lines=directive_lines)


def render(module: Module, graph: ModuleGraph) -> str:
    """The generated file's full text for `module`, or ExportError."""
    raw = {path: (graph.root / path).read_bytes() for path in module.sources}
    exported = exported_cells(module, graph, {p: b.decode("utf-8") for p, b in raw.items()})
    body, segments = assemble(exported, module)
    # the hash of the bytes, as is_current compares it (the text has no \r of CRLF)
    return header(module, sha256(b"".join(raw.values())), sha256(body), segments) + body


def assemble(cells: list[Cell], module: Module) -> tuple[str, list[sourcemap.Segment]]:
    """The generated body (the cells' code, two blank lines apart, without their leading
    and trailing blank lines) and where each of its lines came from."""
    texts, segments, at = [], [], HEADER_LINES + 1
    for cell in cells:
        text = "\n".join(cell.lines).strip("\n")
        if text:
            skipped = next(i for i, line in enumerate(cell.lines) if line != "")
            origin = (cell.origin or module.source).as_posix()
            segments.append(sourcemap.Segment(at, origin, cell.line + skipped,
                                              text.count("\n") + 1))
        texts.append(text)
        at += text.count("\n") + 1 + 2
    return "\n\n\n".join(texts) + "\n", segments


def exported_cells(module: Module, graph: ModuleGraph,
                   texts: dict[Path, str] | None = None) -> list[Cell]:
    """The cells that go into the generated file, checked; or ExportError. The module's
    sources are read in order (`texts` may give some of them instead, e.g. as they were
    at a git revision)."""
    texts = texts or {}
    cells = []
    for path in module.sources:
        text = texts[path] if path in texts else (graph.root / path).read_text(encoding="utf-8")
        for cell in split_cells(text):
            cell.origin = path
            cells.append(cell)
    target = module.export.removeprefix(graph.package + ".")
    named = ", ".join(p.as_posix() for p in module.sources)
    default_exp = None
    for cell in cells:
        for name in cell.directives:
            if name not in KNOWN_DIRECTIVES:
                raise ExportError(f"{cell.origin}:{cell.directive_lines[name]}: unknown "
                                  f"directive '#| {name}' (known: "
                                  f"{', '.join(sorted(KNOWN_DIRECTIVES))})")
            if name in EXPORTING and cell.directives[name] not in ("", target):
                # nbdev's `#| export other` sends a cell to another module: here a source
                # exports to one module only, so refuse rather than put it in the wrong one
                raise ExportError(f"{cell.origin}:{cell.directive_lines[name]}: '#| {name} "
                                  f"{cell.directives[name]}' exports to another module; "
                                  f"this source exports only to '{target}'")
        default_exp = cell.directives.get("default_exp", default_exp)
    if default_exp is None:
        raise ExportError(f"{named}: no '#| default_exp {target}' cell")
    if default_exp != target:
        raise ExportError(f"{named}: '#| default_exp {default_exp}' does not match "
                          f"graph.toml export {module.export} (expected '{target}')")
    exported = [c for c in cells if EXPORTING & c.directives.keys()]
    if not exported:
        raise ExportError(f"{named}: no cell is tagged '#| export'; nothing to export")
    _check_syntax(module, exported)
    return exported


def _check_syntax(module: Module, cells: list[Cell]) -> None:
    for cell in cells:
        try:
            compile("\n".join(cell.lines), str(cell.origin or module.source), "exec")
        except SyntaxError as e:
            line = cell.line + (e.lineno or 1) - 1
            raise ExportError(f"{cell.origin or module.source}:{line}: syntax error: "
                              f"{e.msg}") from None


def header(module: Module, source_sha: str, body_sha: str,
           segments: list[sourcemap.Segment]) -> str:
    """HEADER_LINES lines: provenance, the two hashes, the source map (one line)."""
    sources = ", ".join(p.as_posix() for p in module.sources)
    return (f"{sourcemap.HEAD}{sources} by `orchestrator export`: do not edit.\n"
            f"# source-sha256: {source_sha}\n"
            f"# body-sha256: {body_sha}\n"
            f"# {sourcemap.FIELD}: {sourcemap.encode(segments)}\n")


def read_generated(path: Path) -> tuple[dict[str, str], str] | None:
    """(header fields, body) of a generated file, or None if it has no valid header. The
    header is the provenance line and the HEADER_FIELDS lines that follow it, so a file
    written before the source map existed (3 lines) still yields its body."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not text.startswith(sourcemap.HEAD):
        return None
    lines = text.split("\n", HEADER_LINES)
    fields: dict[str, str] = {}
    for count, line in enumerate(lines[1:], start=1):
        name, colon, value = line[2:].partition(": ")
        if not (line.startswith("# ") and colon and name in HEADER_FIELDS) or \
                name in fields or count == len(lines) - 1:
            return fields, "\n".join(lines[count:])
        fields[name] = value
    return None


def body_digest(path: Path) -> str:
    """What a generated file contributes to cache keys: the sha256 of its body only (the
    header carries the source hash, and a markdown edit of the source must not re-run
    anyone's tests); a file without a valid header counts whole."""
    parsed = read_generated(path)
    if parsed is None:
        return sha256(path.read_bytes())
    return sha256(parsed[1])


def hand_edited(path: Path) -> bool:
    """True if `path` exists and is not an untouched generated file."""
    if not path.exists():
        return False
    parsed = read_generated(path)
    return parsed is None or parsed[0].get("body-sha256") != sha256(parsed[1])


def is_current(module: Module, graph: ModuleGraph) -> bool:
    """The generated file exists, is untouched, was made from the current source and has a
    source map (a file exported before maps existed is exported again: same body, so no
    key changes)."""
    parsed = read_generated(module.export_file(graph.root))
    if parsed is None:
        return False
    fields, body = parsed
    source = b"".join((graph.root / path).read_bytes() for path in module.sources)
    return fields.get("source-sha256") == sha256(source) and \
        fields.get("body-sha256") == sha256(body) and sourcemap.FIELD in fields


def export_module(module: Module, graph: ModuleGraph, force: bool = False) -> Path:
    """Write the module's generated file; nothing is written if the export would be wrong
    (a missing `api` name) or would clobber a file someone else owns."""
    target = module.export_file(graph.root)
    text = render(module, graph)
    check_api(module, text)
    if not force and hand_edited(target):
        rel = target.relative_to(graph.root)
        other = other_tool(target)
        if other:
            raise ExportError(
                f"{rel} was generated by another tool ({other!r}); to let `orchestrator "
                f"export` own it from now on, keep its code in {module.source} and run "
                f"`orchestrator export {module.id} --force` (or delete {rel})")
        raise ExportError(
            f"{rel} was edited by hand (its body no longer matches "
            f"its header hash); move the change into {module.source}, or overwrite it with "
            f"`orchestrator export {module.id} --force`")
    ensure_packages(target.parent, graph.root / graph.package)
    atomic_write(target, text)
    write_bytecode(target)
    return target


def write_bytecode(path: Path) -> None:
    """Compile a generated file into its __pycache__, once, as a checked-hash .pyc: Python
    then hashes the source on every import and uses the .pyc only while they agree, so it
    can never run stale code. Without it, under PYTHONDONTWRITEBYTECODE every test run
    compiled again each export its tests imported: on a course of a hundred small modules
    ~10 ms of each module's run, growing with the course. The package is generated, its
    bytecode too; a file that cannot be compiled is left to the import to report."""
    try:
        py_compile.compile(str(path), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    except (py_compile.PyCompileError, OSError, ValueError):
        pass


def check_api(module: Module, text: str) -> None:
    """Every name graph.toml's `api` lists must be defined at the top of the export."""
    import ast
    defined = set()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    missing = [name for name in module.api if name not in defined]
    if missing:
        raise ExportError(f"{module.source}: the export of {module.id} does not define "
                          f"{', '.join(repr(m) for m in missing)} (listed in its `api` in "
                          "graph.toml)")


OTHER_TOOLS = re.compile(r"^#\s*(AUTOGENERATED!.*|.*\b(auto-?generated|generated by)\b.*)$",
                         re.IGNORECASE)


def other_tool(path: Path) -> str:
    """The header line of a file another tool generated (nbdev: '# AUTOGENERATED! DO NOT
    EDIT! ...'), or ''."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace").splitlines()[:3]
    except OSError:
        return ""
    for line in head:
        if OTHER_TOOLS.match(line.strip()) and not line.startswith("# Generated from "):
            return line.strip()
    return ""


PACKAGE_INIT = '"""Generated package: see graph.toml for its modules."""\n'


def is_package_stub(path: Path) -> bool:
    """An `__init__.py` that ensure_packages wrote (not one the course wrote itself)."""
    try:
        return path.name == "__init__.py" and path.read_text(encoding="utf-8") == PACKAGE_INIT
    except (OSError, UnicodeDecodeError):
        return False


def ensure_packages(directory: Path, package_root: Path) -> None:
    """Create the `__init__.py` of every package from the package root down to `directory`.

    They import nothing, so importing one module never loads the others."""
    directory.mkdir(parents=True, exist_ok=True)
    current = directory
    while True:
        init = current / "__init__.py"
        if not init.exists():
            atomic_write(init, PACKAGE_INIT)
        if current == package_root or package_root not in current.parents:
            break
        current = current.parent
