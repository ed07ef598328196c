"""The module graph as text, Mermaid, DOT, JSON or one self-contained HTML page, coloured by status.

Every renderer takes the same View: nodes with their state and last result, and
the edges to draw (declared deps, or the classroom chain with --strict). A blocked
module shows no figures of an older run, only what blocks it. The HTML page gets its
drawing from layout.py and adds what a reader asks next: each failure's message, the
source line to look at and the command that checks the fix (verdict.py), the counts
and skip reasons (tally.py), what blocked a module, its log (linked relative to the
page).
"""
from __future__ import annotations

import html
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from orchestrator.cache.tally import Tally
from orchestrator.core.graph import ModuleGraph
from orchestrator.report.status import State, TargetState, blockers
from orchestrator.run import verdict
from orchestrator.views import layout

MAX_FAILURES_ON_PAGE = 20

SCHEMA_VERSION = 1
# Light enough that black text on each reads at WCAG AA (4.5:1) or better; the
# status is also written in every node, so nothing depends on telling hues apart.
COLORS = {State.PASSED: "#43a047", State.CACHED: "#a5d6a7", State.FAILED: "#e53935",
          State.BLOCKED: "#ffa726", State.NEVER_RUN: "#bdbdbd", State.STALE: "#fff176"}
SYMBOLS = {State.PASSED: "✓", State.CACHED: "≡", State.FAILED: "✗", State.BLOCKED: "⊘",
           State.NEVER_RUN: "·", State.STALE: "~"}
assert set(COLORS) == set(SYMBOLS) == set(State)


def contrast(a: str, b: str) -> float:
    """The WCAG 2 contrast ratio of two #rgb or #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(color: str) -> float:
    hexa = color.lstrip("#")
    hexa = "".join(c * 2 for c in hexa) if len(hexa) == 3 else hexa
    rgb = [int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


TEXT = {state: max(("#000", "#fff"), key=lambda t: contrast(fill, t))
        for state, fill in COLORS.items()}


@dataclass
class View:
    graph: ModuleGraph
    states: dict[str, TargetState]
    edges: list[tuple[str, str]]
    focus: str | None = None

    @property
    def layers(self) -> list[list[str]]:
        dag = nx.DiGraph(self.edges)
        dag.add_nodes_from(self.graph.modules)
        order = {m: self.graph[m].index for m in self.graph.modules}
        return [sorted(layer, key=order.__getitem__) for layer in nx.topological_generations(dag)]

    def highlighted(self) -> set[str]:
        if not self.focus:
            return set()
        return {self.focus, *self.graph.closure(self.focus), *self.graph.dependents(self.focus)}


def make_view(graph: ModuleGraph, states: dict[str, TargetState], strict: bool = False,
              focus: str | None = None) -> View:
    ids = list(graph.modules)
    edges = list(zip(ids, ids[1:])) if strict else \
        [(dep, m.id) for m in graph for dep in m.deps]
    return View(graph, states, edges, focus)


def node_data(view: View, mid: str) -> dict:
    module, state = view.graph[mid], view.states[mid]
    r = None if state.state is State.BLOCKED else state.result   # never an older run's figures
    return {
        "id": mid, "title": module.title, "export": module.export, "deps": list(module.deps),
        "dependents": [d for d in view.graph.dependents(mid) if mid in view.graph[d].deps],
        "status": state.state.value, "duration": r.duration if r else None,
        "tests": r.counts if r else {}, "reason": r.reason if r and not r.passed else "",
        "failing": [f["nodeid"] for f in r.failures] if r else [],
        "categories": {"requires": list(module.requires),
                       "not_applicable": list(module.not_applicable)},
        "changes": [name for name, _ in state.changes],
    }


def to_json(view: View) -> str:
    layers = {mid: i for i, layer in enumerate(view.layers) for mid in layer}
    nodes = [{**node_data(view, mid), "layer": layers[mid]} for mid in view.graph.modules]
    return json.dumps({"schema": SCHEMA_VERSION, "package": view.graph.package,
                       "nodes": nodes,
                       "edges": [{"from": a, "to": b} for a, b in view.edges]}, indent=2)


def to_text(view: View) -> str:
    lines, hot = [], view.highlighted()
    for i, layer in enumerate(view.layers):
        for j, mid in enumerate(layer):
            state = view.states[mid]
            r = None if state.state is State.BLOCKED else state.result
            took = f" {r.duration:.1f}s" if r else ""
            deps = [a for a, b in view.edges if b == mid]
            mark = "*" if mid in hot else " "
            head = f"layer {i:<2}" if j == 0 else " " * 8
            lines.append(f"{head} {mark}{SYMBOLS[state.state]} {mid:<20} {state.state:<9}{took:>7}"
                         + (f"   <- {', '.join(deps)}" if deps else ""))
    legend = "  ".join(f"{SYMBOLS[s]} {s}" for s in State)
    return "\n".join(lines + ["", legend] + (["* focus closure and dependents"] if hot else []))


def to_mermaid(view: View) -> str:
    lines = ["flowchart LR",
             "    %% fill and last line of each module: its test status (legend at the end)"]
    for mid in view.graph.modules:
        state = view.states[mid].state
        label = f"{mid}<br/>{_mermaid_text(view.graph[mid].title)}<br/>{SYMBOLS[state]} {state}"
        lines.append(f'    m{mid}["{label}"]')
    for a, b in view.edges:
        lines.append(f"    m{a} --> m{b}")
    lines += ['    subgraph legend["Legend: test status"]', "        direction LR"]
    lines += [f'        legend_{_css(s)}["{SYMBOLS[s]} {s}"]' for s in State]
    lines.append("    end")
    for state, color in COLORS.items():
        lines.append(f"    classDef {_css(state)} fill:{color},stroke:#333,color:{TEXT[state]}")
    for mid in view.graph.modules:
        lines.append(f"    class m{mid} {_css(view.states[mid].state)}")
    for state in State:
        lines.append(f"    class legend_{_css(state)} {_css(state)}")
    for mid in sorted(view.highlighted()):
        lines.append(f"    style m{mid} stroke-width:4px,stroke:#1565c0")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Inside a quoted Mermaid label: entity codes for what would end or open markup."""
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_dot(view: View) -> str:
    hot = view.highlighted()
    lines = ["digraph curriculum {", "    rankdir=LR;",
             '    node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for mid in view.graph.modules:
        state = view.states[mid].state
        extra = ', penwidth=3, color="#1565c0"' if mid in hot else ""
        lines.append(f'    "{mid}" [label="{mid}\\n{view.graph[mid].title}\\n{state}", '
                     f'fillcolor="{COLORS[state]}", fontcolor="{TEXT[state]}", '
                     f'tooltip="{state}"{extra}];')
    for a, b in view.edges:
        lines.append(f'    "{a}" -> "{b}";')
    return "\n".join(lines + ["}"]) + "\n"


def blocked_by(view: View, mid: str) -> list[str]:
    """Why `mid` is blocked: the nearest failed modules upstream (status.blockers)."""
    return blockers(view.graph, view.states, mid)


def verdicts(view: View, mid: str) -> dict:
    """What the page's panel says of a module's last result beyond the JSON document: its
    counts and skip reasons, each failure (message, place, rerun command), its log."""
    state = view.states[mid]
    result = None if state.state is State.BLOCKED else state.result
    if result is None:
        return {"tally": "", "skipped": [], "failures": [], "more_failures": 0, "log": ""}
    tally = Tally.of(result)
    args = verdict.pytest_args_of(result)
    found = verdict.failures(result)
    return {"tally": tally.phrase(), "skipped": tally.skip_lines(),
            "failures": [{"nodeid": f.nodeid, "message": f.message, "where": f.where,
                          "trail": f.trail,
                          "rerun": verdict.rerun_command(view.graph.root, [f.nodeid], args)}
                         for f in found[:MAX_FAILURES_ON_PAGE]],
            "more_failures": max(0, len(found) - MAX_FAILURES_ON_PAGE),
            "log": result.log}


def href(target: Path, page_dir: Path) -> str:
    """A link from a page in `page_dir` to `target`: relative, so the page works wherever
    the project is, and from a CI artifact holding both."""
    return urllib.parse.quote(Path(os.path.relpath(target, page_dir)).as_posix())


def to_html(view: View, page_dir: Path | None = None) -> str:
    """One page, no network: the JSON document plus a precomputed layout (layout.py).
    Links (logs) are relative to the page: to `page_dir` when the caller knows where the
    page goes; otherwise the page works it out when opened (graph.html: relative to its
    own folder when that lies in the project, else to the project's root)."""
    template = (Path(__file__).parent / "graph.html").read_text(encoding="utf-8")
    data = json.loads(to_json(view))
    drawing = layout.layered(view.layers, view.edges)
    for node in data["nodes"]:
        mid = node["id"]
        node["x"], node["y"] = drawing.nodes[mid]
        node["blocked_by"] = blocked_by(view, mid) \
            if view.states[mid].state is State.BLOCKED else []
        node.update(verdicts(view, mid))
        node["log_href"] = href(view.graph.root / node["log"], Path(page_dir)) \
            if node["log"] and page_dir is not None else ""
    data["root_uri"] = view.graph.root.as_uri() + "/"
    for edge, (_, _, path) in zip(data["edges"], drawing.edges):
        edge["path"] = path
    data.update(colors=COLORS, text=TEXT, symbols=SYMBOLS, focus=view.focus,
                highlight=sorted(view.highlighted()),
                size={"width": drawing.width, "height": drawing.height,
                      "node": [layout.NODE_W, layout.NODE_H]})
    payload = json.dumps(data).replace("</", "<\\/")  # never close the script tag early
    return (template.replace("__TITLE__", html.escape(f"{view.graph.package} module graph"))
            .replace("__DATA__", payload))


def _css(state: State) -> str:
    return state.value.replace(" ", "_")


RENDERERS = {"text": to_text, "mermaid": to_mermaid, "dot": to_dot, "json": to_json,
             "html": to_html}
