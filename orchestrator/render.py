"""The module graph as text, Mermaid, DOT, JSON or one self-contained HTML page, coloured by status.

Every renderer takes the same View: nodes with their state and last result, and
the edges to draw (declared deps, or the classroom chain with --strict).
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from .graph import ModuleGraph
from .status import STATES, TargetState

SCHEMA_VERSION = 1
COLORS = {"passed": "#2e7d32", "cached": "#81c784", "failed": "#c62828",
          "blocked": "#ef6c00", "never run": "#9e9e9e", "stale": "#fbc02d"}
SYMBOLS = {"passed": "✓", "cached": "≡", "failed": "✗", "blocked": "⊘",
           "never run": "·", "stale": "~"}
assert set(COLORS) == set(SYMBOLS) == set(STATES)


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
        return [sorted(layer, key=order.get) for layer in nx.topological_generations(dag)]

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
    r = state.result
    return {
        "id": mid, "title": module.title, "export": module.export, "deps": list(module.deps),
        "dependents": [d for d in view.graph.dependents(mid) if mid in view.graph[d].deps],
        "status": state.state, "duration": r.duration if r else None,
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
            r = state.result
            took = f" {r.duration:.1f}s" if r else ""
            deps = [a for a, b in view.edges if b == mid]
            mark = "*" if mid in hot else " "
            head = f"layer {i:<2}" if j == 0 else " " * 8
            lines.append(f"{head} {mark}{SYMBOLS[state.state]} {mid:<20} {state.state:<9}{took:>7}"
                         + (f"   <- {', '.join(deps)}" if deps else ""))
    legend = "  ".join(f"{SYMBOLS[s]} {s}" for s in STATES)
    return "\n".join(lines + ["", legend] + (["* focus closure and dependents"] if hot else []))


def to_mermaid(view: View) -> str:
    lines = ["flowchart LR"]
    for mid in view.graph.modules:
        label = f"{mid}<br/>{view.graph[mid].title}"
        lines.append(f'    m{mid}["{label}"]')
    for a, b in view.edges:
        lines.append(f"    m{a} --> m{b}")
    for state, color in COLORS.items():
        lines.append(f"    classDef {_css(state)} fill:{color},stroke:#333,color:#000")
    for mid in view.graph.modules:
        lines.append(f"    class m{mid} {_css(view.states[mid].state)}")
    for mid in sorted(view.highlighted()):
        lines.append(f"    style m{mid} stroke-width:4px,stroke:#1565c0")
    return "\n".join(lines) + "\n"


def to_dot(view: View) -> str:
    hot = view.highlighted()
    lines = ["digraph curriculum {", "    rankdir=LR;",
             '    node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for mid in view.graph.modules:
        state = view.states[mid].state
        extra = ', penwidth=3, color="#1565c0"' if mid in hot else ""
        lines.append(f'    "{mid}" [label="{mid}\\n{view.graph[mid].title}\\n{state}", '
                     f'fillcolor="{COLORS[state]}", tooltip="{state}"{extra}];')
    for a, b in view.edges:
        lines.append(f'    "{a}" -> "{b}";')
    return "\n".join(lines + ["}"]) + "\n"


def to_html(view: View) -> str:
    template = (Path(__file__).parent / "graph.html").read_text(encoding="utf-8")
    data = json.loads(to_json(view))
    data["colors"] = COLORS
    data["focus"] = view.focus
    data["highlight"] = sorted(view.highlighted())
    payload = json.dumps(data).replace("</", "<\\/")  # never close the script tag early
    return (template.replace("__TITLE__", html.escape(f"{view.graph.package} module graph"))
            .replace("__DATA__", payload))


def _css(state: str) -> str:
    return state.replace(" ", "_")


RENDERERS = {"text": to_text, "mermaid": to_mermaid, "dot": to_dot, "json": to_json,
             "html": to_html}
