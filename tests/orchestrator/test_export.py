"""Export: percent-format cells -> generated module, atomic, with provenance and clobber
protection."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core import export
from orchestrator.core.export import ExportError, export_module, is_current, split_cells
from orchestrator.core.graph import load


def test_split_cells_keeps_directives_and_source_lines():
    text = "# %%\n#| default_exp a.b\n\n# %%\n#| export\nx = 1\n\ny = 2\n# %%\nprint(x)\n"
    cells = split_cells(text)
    assert [c.directives for c in cells] == [{"default_exp": "a.b"}, {"export": ""}, {}]
    assert cells[1].line == 6 and cells[1].lines[:3] == ["x = 1", "", "y = 2"]
    assert cells[2].line == 10


def test_export_writes_header_and_only_export_cells(project):
    graph = load(project.root)
    target = export_module(graph["02_add"], graph)
    assert target == project.root / "minicalc" / "ops" / "add.py"
    text = target.read_text()
    lines = text.splitlines()
    assert lines[0] == ("# Generated from modules/02_add/add_dev.py by `orchestrator export`: "
                        "do not edit.")
    source_sha = export.sha256((project.root / project.source("02_add")).read_bytes())
    assert lines[1] == f"# source-sha256: {source_sha}"
    body = text.split("\n", export.HEADER_LINES)[export.HEADER_LINES]
    assert lines[2] == f"# body-sha256: {export.sha256(body)}"
    # the source map: the body's first line is line 5, exported from the source's line 9
    assert lines[3] == '# source-map: {"modules/02_add/add_dev.py":[[5,9,5]]}'
    assert lines[4] == project.read(project.source("02_add")).splitlines()[8]
    assert "def add(a, b):" in body
    assert "print('demo')" not in body and "A module of minicalc" not in body
    assert is_current(graph["02_add"], graph)


def test_package_init_files_are_created_and_import_nothing(project):
    graph = load(project.root)
    export_module(graph["02_add"], graph)
    for init in ("minicalc/__init__.py", "minicalc/ops/__init__.py"):
        text = project.read(init)
        assert "import" not in text


def test_generated_module_imports_only_its_closure(project):
    graph = load(project.root)
    for module in graph:
        export_module(module, graph)
    code = ("import sys, minicalc.ops.mul; "
            "print(sorted(m for m in sys.modules if m.startswith('minicalc')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "['minicalc', 'minicalc.numbers', 'minicalc.ops', 'minicalc.ops.mul']"


def test_default_exp_must_match_graph(project):
    project.write(project.source("03_mul"),
                  project.read(project.source("03_mul")).replace("ops.mul", "ops.times"))
    graph = load(project.root)
    with pytest.raises(ExportError, match=r"^modules/03_mul/mul_dev.py: '#\| default_exp "
                                          r"ops.times' does not match graph.toml export "
                                          r"minicalc.ops.mul \(expected 'ops.mul'\)$"):
        export_module(graph["03_mul"], graph)


def test_missing_default_exp_and_missing_export_cells(project):
    graph = load(project.root)
    project.write(project.source("01_numbers"), "# %%\n#| export\nx = 1\n")
    with pytest.raises(ExportError, match="no '#| default_exp numbers' cell"):
        export_module(graph["01_numbers"], graph)
    project.write(project.source("01_numbers"), "# %%\n#| default_exp numbers\n# %%\nx = 1\n")
    with pytest.raises(ExportError, match="no cell is tagged '#| export'; nothing to export"):
        export_module(graph["01_numbers"], graph)


def test_syntax_error_names_the_source_line(project):
    graph = load(project.root)
    source = project.source("01_numbers")
    project.write(source, "# %%\n#| default_exp numbers\n\n# %%\n#| export\nx = 1\n"
                          "def broken(:\n    pass\n")
    with pytest.raises(ExportError, match=r"^modules/01_numbers/numbers_dev.py:7: syntax error"):
        export_module(graph["01_numbers"], graph)
    assert not (project.root / "minicalc" / "numbers.py").exists()


def test_unknown_directive_is_an_error(project):
    graph = load(project.root)
    project.write(project.source("01_numbers"),
                  "# %%\n#| default_exp numbers\n# %%\n#| exprot\nx = 1\n")
    with pytest.raises(ExportError, match=r"numbers_dev.py:4: unknown directive '#\| exprot'"):
        export_module(graph["01_numbers"], graph)


def test_hand_edited_file_is_never_overwritten_without_force(project):
    graph = load(project.root)
    target = export_module(graph["01_numbers"], graph)
    target.write_text(target.read_text() + "PATCHED = True\n")
    assert not is_current(graph["01_numbers"], graph)
    with pytest.raises(ExportError, match=r"minicalc/numbers.py was edited by hand .* "
                                          r"`orchestrator export 01_numbers --force`"):
        export_module(graph["01_numbers"], graph)
    assert target.read_text().endswith("PATCHED = True\n")
    export_module(graph["01_numbers"], graph, force=True)
    assert "PATCHED" not in target.read_text() and is_current(graph["01_numbers"], graph)


def test_a_file_without_our_header_is_protected_too(project):
    graph = load(project.root)
    target = project.write("minicalc/numbers.py", "# written by someone\n")
    with pytest.raises(ExportError, match="edited by hand"):
        export_module(graph["01_numbers"], graph)
    assert target.read_text() == "# written by someone\n"


def test_failed_write_leaves_the_old_file_and_no_temp_files(project, monkeypatch):
    graph = load(project.root)
    target = export_module(graph["01_numbers"], graph)
    before = target.read_text()
    project.write(project.source("01_numbers"),
                  project.read(project.source("01_numbers")).replace("float(x)", "int(x)"))

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        export_module(graph["01_numbers"], graph)
    assert target.read_text() == before
    assert sorted(p.name for p in target.parent.iterdir()) == \
        ["__init__.py", "__pycache__", "numbers.py"]
    assert [p.name for p in (target.parent / "__pycache__").iterdir()] == \
        [f"numbers.{sys.implementation.cache_tag}.pyc"]        # the first export's


def test_cli_export_and_force(project):
    run = project.orchestrator("export", "1")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "exported 01_numbers -> minicalc/numbers.py"
    project.append("minicalc/numbers.py", "x = 1\n")
    run = project.orchestrator("export", "01_numbers")
    assert run.returncode == 3
    assert run.stderr.strip().startswith("error: minicalc/numbers.py was edited by hand")
    assert project.orchestrator("export", "01_numbers", "--force").returncode == 0
    run = project.orchestrator("export", "99_nothing")
    assert run.returncode == 3
    assert run.stderr.strip() == "error: graph.toml: unknown module '99_nothing'"


# Directive spellings and file formats met in the wild (nbdev, jupytext, formatters, Windows)

def test_nbdev_spellings_of_directives(project):
    graph = without_api(project)
    project.write(project.source("01_numbers"),
                  "# %%\n#|default_exp numbers  # where this module goes\n\n"
                  "# %%\n#|export\na = 1\n\n"
                  "# %%\n# | export\nb = 2\n\n"                     # as black and ruff write it
                  "# %%\n#| export # the public API\nc = 3\n\n"
                  "# %%\n#| exports\nd = 4\n\n"                     # nbdev: exported and shown
                  "# %%\n#| exporti\ne = 5\n\n"                     # nbdev: exported, internal
                  "# %%\n#| echo: false\n#| export\nf = 6\n\n"      # a Quarto option: ignored
                  "# %%\n#| hide\nnot_exported = 7\n")
    body = export_module(graph["01_numbers"], graph).read_text().split(
        "\n", export.HEADER_LINES)[export.HEADER_LINES]
    assert body == "a = 1\n\n\nb = 2\n\n\nc = 3\n\n\nd = 4\n\n\ne = 5\n\n\nf = 6\n"


def test_directives_right_after_the_jupytext_header(project):
    graph = load(project.root)
    project.write(project.source("01_numbers"),
                  "# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n"
                  "#       format_name: percent\n#   kernelspec:\n#     name: python3\n# ---\n"
                  "#| default_exp numbers\n\n"
                  "# %%\n#| export\ndef number(x):\n    return float(x)\n")
    cells = split_cells(project.read(project.source("01_numbers")))
    assert cells[0].directives == {"default_exp": "numbers"} and cells[0].line == 10
    target = export_module(graph["01_numbers"], graph)
    assert target.read_text().split("\n", export.HEADER_LINES)[export.HEADER_LINES] == \
        "def number(x):\n    return float(x)\n"
    assert is_current(graph["01_numbers"], graph)


def test_a_leading_comment_block_is_no_header(project):
    text = "# ---\n# not a header\nx = 1\n# %%\n#| export\ny = 2\n"
    cells = split_cells(text)
    assert cells[0].lines == ["# ---", "# not a header", "x = 1"] and cells[0].line == 1


def without_api(project):
    """minicalc's graph with no `api` lists: these sources define other names."""
    project.write("graph.toml", project.read("graph.toml").replace('api = ["number"]\n', ""))
    return load(project.root)


def test_crlf_and_byte_order_mark(project):
    graph = without_api(project)
    source = project.root / project.source("01_numbers")
    text = "\ufeff# %%\r\n#| default_exp numbers\r\n\r\n# %%\r\n#| export\r\nx = 1\r\n\r\ny = 2\r\n"
    source.write_bytes(text.encode("utf-8"))
    target = export_module(graph["01_numbers"], graph)
    written = target.read_bytes()
    assert b"\r" not in written and written.endswith(b"x = 1\n\ny = 2\n")
    assert f"# source-sha256: {export.sha256(source.read_bytes())}" in written.decode()
    assert is_current(graph["01_numbers"], graph)      # so the export task is up to date


def test_a_markdown_table_is_not_a_directive(project):
    graph = without_api(project)
    project.write(project.source("01_numbers"),
                  "# %% [markdown]\n# | op | meaning |\n# |----|---------|\n\n"
                  "# %%\n#| default_exp numbers\n\n# %%\n#| export\nx = 1\n")
    assert export_module(graph["01_numbers"], graph).read_text().endswith("\nx = 1\n")


def test_export_to_another_module_is_refused(project):
    graph = load(project.root)
    project.write(project.source("01_numbers"),
                  "# %%\n#| default_exp numbers\n\n# %%\n#| export numbers\nx = 1\n"
                  "# %%\n#| export ops.add\ny = 2\n")
    with pytest.raises(ExportError, match=r"^modules/01_numbers/numbers_dev.py:8: '#\| export "
                                          r"ops.add' exports to another module; this source "
                                          r"exports only to 'numbers'$"):
        export_module(graph["01_numbers"], graph)


def test_a_missing_api_name_fails_the_export_and_writes_nothing(project):
    from orchestrator.core.export import ExportError, export_module
    from orchestrator.core.graph import load
    project.write("graph.toml", project.read("graph.toml").replace(
        'api = ["number"]', 'api = ["number", "DoesNotExist"]'))
    graph = load(project.root)
    with pytest.raises(ExportError) as e:
        export_module(graph["01_numbers"], graph)
    assert str(e.value) == ("modules/01_numbers/numbers_dev.py: the export of 01_numbers does "
                            "not define 'DoesNotExist' (listed in its `api` in graph.toml)")
    assert not (project.root / "minicalc" / "numbers.py").exists()


def test_a_file_another_tool_generated_is_named_so(project):
    from orchestrator.core.export import ExportError, export_module
    from orchestrator.core.graph import load
    project.write("minicalc/numbers.py", "# AUTOGENERATED! DO NOT EDIT! File to edit: "
                                         "../nbs/01_numbers.ipynb.\n\ndef number(x):\n"
                                         "    return float(x)\n")
    graph = load(project.root)
    with pytest.raises(ExportError) as e:
        export_module(graph["01_numbers"], graph)
    assert str(e.value).startswith("minicalc/numbers.py was generated by another tool "
                                   "('# AUTOGENERATED! DO NOT EDIT! File to edit: ")
    assert "orchestrator export 01_numbers --force" in str(e.value)


def test_several_sources_export_into_one_module_in_order(project):
    project.write("modules/04_power/extra.py", "# %%\n#| export\n\n\ndef square(a):\n"
                                               "    return power(a, 2)\n")
    project.write("graph.toml", project.read("graph.toml").replace(
        '[modules.04_power]\n', '[modules.04_power]\nsources = ["modules/04_power/power_dev.py", '
                                '"modules/04_power/extra.py"]\n'))
    project.append(project.test_file("04_power"),
                   "\n\ndef test_square():\n    from minicalc.power import square\n"
                   "    assert square(3) == 9.0\n")
    graph = load(project.root)
    assert graph["04_power"].sources == (Path("modules/04_power/power_dev.py"),
                                         Path("modules/04_power/extra.py"))
    run = project.doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    text = project.read("minicalc/power.py")
    assert text.startswith("# Generated from modules/04_power/power_dev.py, "
                           "modules/04_power/extra.py by `orchestrator export`")
    assert text.index("def power") < text.index("def square")
    project.append("modules/04_power/extra.py", "\n# %%\n#| export\nCUBE = 3\n")
    again = project.doit("all")
    assert again.executed == {"04_power"}            # an edit to either source re-runs it
    project.append("modules/04_power/extra.py", "\n# %%\nprint('a demo cell')\n")
    assert project.doit("all").executed == set()      # a non-exported cell re-runs nothing


def test_an_export_is_compiled_once_into_a_pyc_checked_against_its_source(project):
    """Each test run imports the exports of its closure: compiled at export time, no run
    compiles them again, even under PYTHONDONTWRITEBYTECODE. The .pyc is hash-based and
    checked, so a later edit of the generated file that keeps its size and mtime (which a
    timestamp .pyc would not notice) is what the import runs."""
    import importlib.util
    graph = load(project.root)
    export_module(graph["01_numbers"], graph)
    target = export_module(graph["02_add"], graph)
    pyc = Path(importlib.util.cache_from_source(str(target)))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b11                 # hash-based, checked on every import (PEP 552)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    probe = ("import minicalc.ops.add as m, sys; "
             "print(m.add(2, 3), type(m.__spec__.loader).__name__)")
    run = subprocess.run([sys.executable, "-c", probe], cwd=project.root, env=env,
                         capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["5.0", "SourceFileLoader"]
    before = os.stat(target)
    text = target.read_text()
    edited = text.replace("number(a) + number(b)", "number(a) * number(b)")
    assert edited != text and len(edited) == len(text)
    target.write_text(edited)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    run = subprocess.run([sys.executable, "-c", probe], cwd=project.root, env=env,
                         capture_output=True, text=True, check=True)
    assert run.stdout.split()[0] == "6.0"
