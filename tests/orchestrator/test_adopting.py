"""docs/ADOPTING.md, run: every shell block in order, every file it shows written or
compared, every output it shows checked against the real one.

The doc's conventions (so that it reads as plain Markdown):
- "`PATH`:" on the line before a fenced block: write the block to PATH;
- "`PATH`, as init wrote it:" before a block: the file must hold exactly that;
- "`PATH/`, ... `tests/orchestrator/course_fixture.py` ...:" before a ```text block: a
  course built by course_fixture.py at PATH, beside the folder the walk started in;
  every path the block shows must be in it;
- a ```bash block: commands, run by bash -e in the folder the previous block ended in;
  they must exit 0, or N when the line before the block ends in "(exit code N):";
- a ```text block: output of the last commands; each of its lines must be printed
  (in any order: independent modules finish in either order), with durations and
  column widths left out of the comparison.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.course import init as init_mod

from . import course_fixture
from .conftest import REPO, Project

DOC = REPO / "docs" / "ADOPTING.md"
FENCE = re.compile(r"^```(\w*)\s*$")
WRITE = re.compile(r"^`([^`]+)`:$")
WROTE = re.compile(r"^`([^`]+)`, as init wrote it:$")
COURSE = re.compile(r"^`([^`]+)/`,.*`tests/orchestrator/course_fixture\.py`.*:$")
EXIT = re.compile(r"\(exit code (\d+)\):$")
PATHLIKE = re.compile(r"^[\w.-]+(/[\w.-]*)+$|^[\w-]+\.(toml|ini|py|md)$")
# blocks that are neither commands, files nor outputs, and what they must equal
SHOWN = {init_mod.DOIT_CFG_LINES + "\n": "the lines init adds to a doit.cfg"}


@dataclass
class Block:
    kind: str        # "bash", "text", "write", "wrote", "course", "shown"
    text: str
    path: str = ""
    line: int = 0
    exit: int = 0    # a bash block's expected exit code


def blocks(doc: str) -> list[Block]:
    found, lines, i = [], doc.splitlines(), 0
    before = ""
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            if lines[i].strip():
                before = lines[i]
            i += 1
            continue
        start = i
        end = next(j for j in range(i + 1, len(lines)) if lines[j] == "```")
        text = "\n".join(lines[i + 1:end]) + "\n"
        lang, i = fence.group(1), end + 1
        if WRITE.match(before):
            found.append(Block("write", text, WRITE.match(before).group(1), start + 1))
        elif WROTE.match(before):
            found.append(Block("wrote", text, WROTE.match(before).group(1), start + 1))
        elif COURSE.match(before):
            found.append(Block("course", text, COURSE.match(before).group(1), start + 1))
        elif lang == "bash":
            code = EXIT.search(before)
            found.append(Block(lang, text, line=start + 1,
                               exit=int(code.group(1)) if code else 0))
        elif lang == "text":
            found.append(Block(lang, text, line=start + 1))
        else:
            found.append(Block("shown", text, line=start + 1))
        before = ""
    return found


def normal(line: str) -> str:
    line = re.sub(r"\b\d+(\.\d+)?s\b", "<time>", line)
    return " ".join(line.split())


def test_the_doc_has_what_the_test_needs():
    kinds = Counter(b.kind for b in blocks(DOC.read_text(encoding="utf-8")))
    assert kinds["bash"] >= 4 and kinds["text"] >= 4 and kinds["write"] == 6 and \
        kinds["wrote"] == 3 and kinds["course"] == 1


@pytest.mark.skipif(sys.platform == "win32", reason="the walk's commands are bash")
def test_adopting_walk(tmp_path):
    bin_dir = Path(sys.executable).parent
    for tool in ("doit", "orchestrator"):
        assert (bin_dir / tool).exists(), f"{tool} is not installed beside {sys.executable}"
    env = Project(tmp_path).env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    cwd, output = tmp_path, None
    where = tmp_path / ".cwd"
    for block in blocks(DOC.read_text(encoding="utf-8")):
        at = f"docs/ADOPTING.md:{block.line}"
        if block.kind == "write":
            path = cwd / block.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
        elif block.kind == "wrote":
            assert (cwd / block.path).read_text(encoding="utf-8") == block.text, at
        elif block.kind == "course":
            course = course_fixture.build(tmp_path / block.path)
            shown = [t for t in block.text.split() if PATHLIKE.match(t)]
            missing = [t for t in shown if not (course / t).exists()]
            assert shown and not missing, f"{at}: not in the course: {missing}"
        elif block.kind == "shown":
            assert block.text in SHOWN, f"{at}: a block the test does not check"
        elif block.kind == "bash":
            run = subprocess.run(["bash", "-eo", "pipefail", "-c",
                                  f"{block.text}\npwd > {where}"],
                                 cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
            output = run.stdout + run.stderr
            assert run.returncode == block.exit, f"{at}: exit {run.returncode}\n{output}"
            cwd = Path(where.read_text().strip())
        else:
            assert output is not None, f"{at}: output shown before any command"
            printed = Counter(normal(line) for line in output.splitlines())
            expected = Counter(normal(line) for line in block.text.splitlines() if line.strip())
            assert not expected - printed, f"{at}: not printed: {list(expected - printed)}\n" \
                                           f"printed:\n{output}"
