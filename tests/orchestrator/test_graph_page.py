"""The graph views people look at: the HTML page (layout, fit, panel, contrast) and Mermaid.

The page tests open the shipped 20-module curriculum in headless Chromium at 1400x900
with made-up states (one failed module blocking most of the rest), so they need no run.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.core.graph import load
from orchestrator.report.status import State
from orchestrator.views import layout
from orchestrator.views.render import (
    COLORS,
    TEXT,
    blocked_by,
    make_view,
    to_html,
    to_mermaid,
)

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = (1400, 900)

STATUS = {"01_tensor": "passed", "02_activations": "passed", "03_layers": "failed",
          "08_dataloader": "cached", "10_tokenization": "stale", "20_capstone": "never run"}


def states(graph, status):
    """What render reads of a TargetState and its Result, for made-up statuses."""
    def state(mid, s):
        result = None
        if s in ("passed", "cached", "stale", "failed"):
            failed = s == "failed"
            result = SimpleNamespace(
                passed=not failed, reason="1 of 5 tests failed" if failed else "",
                counts={"passed": 4, "failed": 1} if failed else {"passed": 5}, duration=1.25,
                failures=[{"nodeid": f"tests/{mid}/test_x.py::test_y", "message": "boom",
                           "path": f"modules/{mid}/x_dev.py", "line": 7}]
                if failed else [], log=f".orchestrator/logs/{mid}.log", tests={},
                inputs={"pytest:args": '["-x"]'}, narrowed=False, collected=None)
        return SimpleNamespace(module=mid, state=State(s), result=result, changes=[])
    return {mid: state(mid, status.get(mid, "blocked")) for mid in graph.modules}


@pytest.fixture(scope="module")
def curriculum():
    graph = load(REPO)
    return make_view(graph, states(graph, STATUS))


# -- colours, blocked-by, layout: no browser -----------------------------------------

def wcag_contrast(a: str, b: str) -> float:
    def luminance(color):
        hexa = color.lstrip("#")
        hexa = "".join(c * 2 for c in hexa) if len(hexa) == 3 else hexa
        channels = [int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    lighter, darker = sorted((luminance(a), luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_wcag_formula_on_known_pairs():
    assert wcag_contrast("#000", "#fff") == pytest.approx(21)
    assert wcag_contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("state", State)
def test_status_text_meets_wcag_aa(state):
    assert wcag_contrast(COLORS[state], TEXT[state]) >= 4.5


def test_blocked_by_names_the_nearest_failed_modules(curriculum):
    assert blocked_by(curriculum, "04_losses") == ["03_layers"]
    assert blocked_by(curriculum, "07_training") == ["03_layers"]     # through 04 and 06
    graph = curriculum.graph
    two = make_view(graph, states(graph, {**STATUS, "08_dataloader": "failed"}))
    assert blocked_by(two, "15_quantization") == ["03_layers", "08_dataloader"]
    assert blocked_by(two, "16_compression") == ["03_layers", "08_dataloader"]
    # nothing failed upstream any more (fixed since): no cause to name
    assert blocked_by(make_view(graph, states(graph, {})), "05_autograd") == []


def boxes_of(drawing):
    w, h = layout.NODE_W / 2, layout.NODE_H / 2
    return {m: (x - w, y - h, x + w, y + h) for m, (x, y) in drawing.nodes.items()}


def path_samples(d: str, steps: int = 24):
    """Points along an SVG path of M, L, Q and C commands (what layout.py writes)."""
    tokens = re.findall(r"[MLQC]|-?\d+(?:\.\d+)?", d)
    at, out, i = None, [], 0
    while i < len(tokens):
        cmd, arity = tokens[i], {"M": 1, "L": 1, "Q": 2, "C": 3}[tokens[i]]
        p = [at] + [(float(tokens[i + k]), float(tokens[i + k + 1]))
                    for k in range(1, 2 * arity, 2)]
        i += 1 + 2 * arity
        if cmd in "ML":
            p = [at or p[1], p[1]]
        for s in range(steps + 1):   # a Bezier curve of any degree, by de Casteljau
            q, t = p, s / steps
            while len(q) > 1:
                q = [((1 - t) * a[0] + t * b[0], (1 - t) * a[1] + t * b[1])
                     for a, b in zip(q, q[1:])]
            out.append(q[0])
        at = p[-1]
    return out


def synthetic():
    """A chain of 12 long enough to wrap, with long edges that wrap with it."""
    chain = [f"n{i}" for i in range(12)]
    layers = [[m] for m in chain]
    layers[3].append("side")
    edges = list(zip(chain, chain[1:])) + [("n0", "n11"), ("n1", "n7"), ("n2", "side"),
                                           ("side", "n9")]
    return layers, edges


@pytest.mark.parametrize("which", ["declared", "strict", "synthetic"])
def test_layout_edges_never_pass_under_a_module(curriculum, which):
    if which == "synthetic":
        layers, edges = synthetic()
    else:
        view = make_view(curriculum.graph, curriculum.states, strict=which == "strict")
        layers, edges = view.layers, view.edges
    drawing = layout.layered(layers, edges)
    boxes = boxes_of(drawing)
    assert len(drawing.edges) == len(edges)
    for a, b, d in drawing.edges:
        samples = path_samples(d)
        assert samples[0][1] == pytest.approx(boxes[a][3]) and \
            samples[-1][1] == pytest.approx(boxes[b][1])     # from a's bottom to b's top
        for x, y in samples:
            inside = [m for m, (left, top, right, bottom) in boxes.items()
                      if left + 0.5 < x < right - 0.5 and top + 0.5 < y < bottom - 0.5]
            assert not inside, f"edge {a} -> {b} passes under {inside} at ({x:.0f}, {y:.0f})"
            assert 0 <= x <= drawing.width and 0 <= y <= drawing.height


def test_a_long_chain_wraps_into_columns(curriculum):
    view = make_view(curriculum.graph, curriculum.states, strict=True)
    drawing = layout.layered(view.layers, view.edges)
    columns = sorted({x for x, _ in drawing.nodes.values()})
    assert len(columns) == 3 and drawing.width < 1.5 * drawing.height
    assert [drawing.nodes[m][1] for m in ("01_tensor", "08_dataloader", "15_quantization")] \
        == [drawing.nodes["01_tensor"][1]] * 3          # each column starts at the top
    assert min(layout.SCREEN[0] / drawing.width, layout.SCREEN[1] / drawing.height) >= 1


def test_layout_is_layered_deterministic_and_uncrowded(curriculum):
    drawing = layout.layered(curriculum.layers, curriculum.edges)
    assert drawing == layout.layered(curriculum.layers, curriculum.edges)
    for rank, layer in enumerate(curriculum.layers):
        xs = sorted(drawing.nodes[m][0] for m in layer)
        assert {drawing.nodes[m][1] for m in layer} == \
            {layout.MARGIN + layout.NODE_H / 2 + rank * (layout.NODE_H + layout.RANK_GAP)}
        assert all(b - a >= layout.NODE_W + layout.GAP - 0.1 for a, b in zip(xs, xs[1:]))
    for left, top, right, bottom in boxes_of(drawing).values():
        assert 0 <= left and right <= drawing.width and 0 <= top and bottom <= drawing.height


# -- Mermaid ---------------------------------------------------------------------

MERMAID_LINE = re.compile(
    r"flowchart LR|%%.*|m\w+\[\"[^\"]+\"\]|m\w+ --> m\w+|subgraph legend\[\"[^\"]+\"\]"
    r"|direction LR|legend_\w+\[\"[^\"]+\"\]|end|classDef \w+ fill:#\w+,stroke:#\w+,color:#\w+"
    r"|class (m|legend_)\w+ \w+|style m\w+ [\w:#,-]+")


def test_mermaid_has_status_text_and_a_legend(curriculum):
    text = to_mermaid(curriculum)
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart LR"
    assert all(MERMAID_LINE.fullmatch(line) for line in lines), \
        [line for line in lines if not MERMAID_LINE.fullmatch(line)]
    assert 'm03_layers["03_layers<br/>Layers<br/>✗ failed"]' in lines
    assert 'm20_capstone["20_capstone<br/>TinyGPT capstone<br/>· never run"]' in lines
    legend = lines[lines.index('subgraph legend["Legend: test status"]'):lines.index("end") + 1]
    assert [line.split('["')[1].rstrip('"]') for line in legend if line.startswith("legend_")] == \
        ["✓ passed", "≡ cached", "✗ failed", "⊘ blocked", "· never run", "~ stale"]
    for state in State:
        css = state.replace(" ", "_")
        assert f"class legend_{css} {css}" in lines
        assert f"classDef {css} fill:{COLORS[state]},stroke:#333,color:{TEXT[state]}" in lines
    defined = {line.split("[")[0] for line in lines if re.match(r"(m|legend_)\w+\[", line)}
    used = {w for line in lines if line.startswith(("class ", "style ")) for w in [line.split()[1]]}
    used |= {w for line in lines if "-->" in line for w in line.split(" --> ")}
    assert used <= defined
    assert sum("-->" in line for line in lines) == len(curriculum.edges)   # the legend adds none


# -- the HTML page in headless Chromium ----------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run installs it)")
    return browser


def browse(browser, page: Path, profile: Path, *args: str, size=VIEWPORT) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True,
                          timeout=120).stdout


def dump(browser, page: Path, tmp_path, size=VIEWPORT, fragment: str = "") -> str:
    return browse(browser, page, tmp_path / "profile", "--dump-dom", page.as_uri() + fragment,
                  size=size)


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def nodes_of(dom: str) -> dict[str, dict]:
    """Each module's <g>: its attributes, and the fills of its box and text."""
    found = {}
    for g in re.finditer(r'<g class="node[^"]*"(.*?)</g>', dom, re.S):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', g.group(1).split(">")[0]))
        fills = re.findall(r'<(rect|text)[^>]*?fill="(#\w+)"', g.group(1))
        found[attrs["data-id"]] = {**attrs, "rect": [f for t, f in fills if t == "rect"],
                                   "text": [f for t, f in fills if t == "text"]}
    return found


def body_attr(dom: str, name: str) -> str:
    return re.search(rf'<body[^>]*\b{name}="([^"]*)"', dom).group(1)


def details(dom: str) -> str:
    return re.search(r'<div id="details"[^>]*>(.*?)</div>', dom, re.S).group(1)


@pytest.fixture(scope="module")
def page(curriculum, tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "graph.html"
    path.write_text(to_html(curriculum), encoding="utf-8")
    return path


def test_whole_curriculum_fits_1400x900(chromium, page, tmp_path):
    dom = dump(chromium, page, tmp_path)
    width, height = floats(body_attr(dom, "data-viewport"))
    if (width, height) != VIEWPORT:   # headless keeps part of the window for itself
        dom = dump(chromium, page, tmp_path,
                   size=(2 * VIEWPORT[0] - int(width), 2 * VIEWPORT[1] - int(height)))
    assert floats(body_attr(dom, "data-viewport")) == VIEWPORT
    area = floats(body_attr(dom, "data-area"))        # the graph, beside the panel
    assert area[0] == 0 and area[1] == 0 and area[2] >= 1000 and area[3] == VIEWPORT[1]
    nodes = nodes_of(dom)
    assert len(nodes) == 20
    for mid, node in nodes.items():
        left, top, right, bottom = floats(node["data-box"])
        assert area[0] <= left < right <= area[2] and area[1] <= top < bottom <= area[3], mid
        assert right - left >= 0.7 * layout.NODE_W, f"{mid}: fit to unreadably small"
    assert float(body_attr(dom, "data-scale")) >= 0.7


def test_page_colours_statuses_and_reads_at_aa(chromium, page, tmp_path):
    nodes = nodes_of(dump(chromium, page, tmp_path))
    assert {m: n["data-status"] for m, n in nodes.items() if m in STATUS} == STATUS
    for mid, node in nodes.items():
        status = node["data-status"]
        assert node["rect"] == [COLORS[status]]
        assert node["text"] == [TEXT[status]] * 2
        assert wcag_contrast(node["rect"][0], node["text"][0]) >= 4.5
        assert node["tabindex"] == "0" and node["role"] == "button"     # Tab reaches it
        assert node["aria-label"].startswith(f"{mid}: ")


def test_panel_names_the_cause_and_the_log(chromium, page, tmp_path):
    blocked = details(dump(chromium, page, tmp_path, fragment="#07_training"))
    assert re.search(r'<span class="cause">blocked by <button class="ref" '
                     r'data-ref="03_layers">03_layers</button>: its tests did not run', blocked)
    # a blocked module shows no figures of an older run
    assert "Last result" not in blocked and "<dt>Log</dt>" not in blocked
    failed = details(dump(chromium, page, tmp_path, fragment="#03_layers"))
    # the log, relative to the page (written at the project root here)
    assert ('<a href=".orchestrator/logs/03_layers.log"><code>.orchestrator/logs/03_layers.log'
            '</code></a>') in failed
    shown = failed.replace("<wbr>", "")
    assert "tests/03_layers/test_x.py::test_y" in shown and "blocked by" not in failed
    assert "at modules/03_layers/x_dev.py:7" in shown and "boom" in shown
    assert ("-m pytest -p orchestrator.run.pytest_plugin tests/03_layers/test_x.py::test_y -x"
            in shown)


def test_enter_on_a_focused_module_opens_its_panel(chromium, page, tmp_path):
    keyboard = page.with_name("keyboard.html")
    keyboard.write_text(page.read_text(encoding="utf-8").replace("</body>", """<script>{
      const node = document.querySelector('.node[data-id="15_quantization"]');
      node.focus();
      node.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", bubbles: true}));
      document.body.dataset.active = document.activeElement.dataset.id;
    }</script></body>"""), encoding="utf-8")
    dom = dump(chromium, keyboard, tmp_path)
    assert body_attr(dom, "data-active") == "15_quantization"
    assert "<h2>15_quantization: Quantization</h2>" in details(dom)
    assert 'data-ref="03_layers"' in details(dom)
    assert 'class="node selected" data-id="15_quantization"' in dom


def test_buttons_wheel_and_drag_zoom_and_pan(chromium, page, tmp_path):
    steps = page.with_name("steps.html")
    steps.write_text(page.read_text(encoding="utf-8").replace("</body>", """<script>{
      const area = document.getElementById("svg"), seen = [];
      const note = () => seen.push(document.body.dataset.scale + "@" +
        document.querySelector('.node[data-id="01_tensor"]').dataset.box.split(",")[0]);
      note();
      document.getElementById("zoom-in").click(); note();
      area.dispatchEvent(new WheelEvent("wheel", {deltaY: 300, clientX: 500, clientY: 400,
                                                 cancelable: true})); note();
      const at = (type, x, y) => area.dispatchEvent(new PointerEvent(type,
        {pointerId: 1, button: 0, buttons: 1, clientX: x, clientY: y, bubbles: true}));
      at("pointerdown", 300, 300); at("pointermove", 340, 320); at("pointermove", 360, 330);
      at("pointerup", 360, 330); note();
      document.getElementById("fit").click(); note();
      document.body.dataset.steps = seen.join(" ");
    }</script></body>"""), encoding="utf-8")
    steps_seen = body_attr(dump(chromium, steps, tmp_path), "data-steps").split()
    (fit, k0), (zoomed, k1), (wheeled, k2), (panned, k3), (refit, k4) = \
        [tuple(float(v) for v in s.split("@")) for s in steps_seen]
    assert zoomed == pytest.approx(fit * 1.25, abs=0.002)
    assert wheeled < zoomed                       # wheel down: zoom out
    assert panned == wheeled and k3 - k2 == pytest.approx(60, abs=0.2)   # dragged 60px right
    assert (refit, k4) == (fit, k0)


def test_screenshot_at_1400x900(chromium, page, tmp_path):
    shot = tmp_path / "graph.png"
    browse(chromium, page, tmp_path / "profile", f"--screenshot={shot}", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(shot.read_bytes()[16:20], "big") == VIEWPORT[0]
    assert int.from_bytes(shot.read_bytes()[20:24], "big") == VIEWPORT[1]
    assert shot.stat().st_size > 50_000    # 20 coloured boxes and their edges, not a blank page


# -- end to end: minicalc after a run in which 03_mul failed -------------------------

@pytest.fixture
def ran(project):
    project.append(project.test_file("03_mul"), "\n\ndef test_broken():\n    assert 2 * 2 == 5\n")
    assert project.doit("all").returncode != 0
    return project


def test_graph_html_renders_in_headless_chromium(chromium, ran, tmp_path):
    page = tmp_path / "graph.html"
    run = ran.orchestrator("graph", "--format", "html", "-o", str(page))
    assert run.returncode == 0, run.stderr
    nodes = nodes_of(dump(chromium, page, tmp_path))
    assert {m: n["data-status"] for m, n in nodes.items()} == {
        "01_numbers": "passed", "02_add": "passed", "03_mul": "failed", "04_power": "blocked"}
    assert {m: n["rect"] for m, n in nodes.items()} == \
        {m: [COLORS[n["data-status"]]] for m, n in nodes.items()}
    power = details(dump(chromium, page, tmp_path, fragment="#04_power"))
    assert 'data-ref="03_mul"' in power.split("<dt>Log</dt>")[0]     # blocked by 03_mul
    mul = details(dump(chromium, page, tmp_path, fragment="#03_mul"))
    log = re.search(r"<dt>Log</dt><dd><a href=\"([^\"]+)\"><code>([^<]+)</code>", mul)
    assert log and log.group(2).endswith(".log") and "03_mul" in log.group(2)
    assert (ran.root / log.group(2)).is_file()
