"""A course's deps, inferred from its imports: direct edges back to earlier modules, and
the imports no numbering can make deps (findings).

The curriculum order is the modules' numbers. A module's deps are the earlier modules
whose export paths its exported code and its tests import, reduced to direct edges (what
graph.toml asks for). An import of a later module is no dep: it is a `Forward` finding
(the ways out: move the test, or renumber). A loop among the sources' own imports is a
`Cycle` finding, reported by its shortest loop.
"""
from __future__ import annotations

from collections import deque

import networkx as nx

from orchestrator.course.init_plan import Cycle, Forward, Plan


def infer_deps(plan: Plan) -> None:
    """deps: the earlier modules whose export paths a module's exported code and tests
    import, reduced to direct edges. The order is the numbers': an import of a later module
    is a `Forward` finding, and a loop among the sources' own imports a `Cycle`."""
    owners = {plan.export(m): m.id for m in plan.modules}
    order = {m.id: i for i, m in enumerate(plan.modules)}
    by_id = {m.id: m for m in plan.modules}
    dag, needs = nx.DiGraph(), nx.DiGraph()    # dep -> module; importer -> exporter (code)
    dag.add_nodes_from(order)
    forward: dict[tuple[str, str], Forward] = {}
    for module in plan.modules:
        for imp in module.imports:
            path = next((p for p in owners if imp.name == p or imp.name.startswith(p + ".")),
                        None)
            if path is None or owners[path] == module.id:
                continue
            owner = owners[path]
            why = f"{imp.where} imports {path}"
            if not imp.test and not needs.has_edge(module.id, owner):
                needs.add_edge(module.id, owner, why=why)
            if order[owner] < order[module.id]:
                module.why.setdefault(owner, why)
                dag.add_edge(owner, module.id)
            else:
                forward.setdefault((imp.where, owner), Forward(
                    module.id, imp.where, path, owner, str(by_id[owner].tests), imp.test))
    plan.cycles = cycles(needs, order)
    looped = {(a, b) for c in plan.cycles for a, b in zip(c.loop, c.loop[1:])}
    plan.forward = [f for f in forward.values()
                    if f.test or (f.module, f.exporter) not in looped]
    direct = nx.transitive_reduction(dag)
    for module in plan.modules:
        module.deps = [d for d in order if direct.has_edge(d, module.id)]


def cycles(needs: nx.DiGraph, order: dict[str, int]) -> list[Cycle]:
    """The shortest loop of each group of sources that import each other (a strongly
    connected component), earliest module first."""
    found = []
    for group in nx.strongly_connected_components(needs):
        if len(group) > 1:
            loop = shortest_loop(needs, group, order)
            steps = tuple(needs.edges[a, b]["why"] for a, b in zip(loop, loop[1:]))
            found.append(Cycle(tuple(loop), steps))
    return sorted(found, key=lambda c: order[c.loop[0]])


def shortest_loop(needs: nx.DiGraph, group: set[str], order: dict[str, int]) -> list[str]:
    """[a, ..., a]: the fewest imports that lead from a module of `group` back to itself
    (breadth first from each; ties to the earliest module)."""
    best: list[str] | None = None
    for start in sorted(group, key=order.__getitem__):
        before: dict[str, str | None] = {start: None}
        queue, last = deque([start]), None
        while queue and last is None:
            node = queue.popleft()
            for nxt in sorted(needs.successors(node), key=order.__getitem__):
                if nxt == start:
                    last = node
                    break
                if nxt in group and nxt not in before:
                    before[nxt] = node
                    queue.append(nxt)
        if last is None:
            continue
        path: list[str] = []
        while last is not None:          # back to `start`, whose predecessor is None
            path.append(last)
            last = before[last]
        loop = path[::-1] + [start]
        if best is None or len(loop) < len(best):
            best = loop
    if best is None:       # a strongly connected group of two or more always has a loop
        raise ValueError(f"no import loop in {sorted(group)}")
    return best


