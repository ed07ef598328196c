"""A GitHub Actions matrix: one job per independent branch of the (affected) graph.

A branch is a sink of the selected subgraph with everything it builds on. Each
job runs `doit test:SINK ...`; what the branches share (the core modules) is run
once per job unless a shared result cache (remote_cache) already holds it. The
union of the jobs' targets is exactly the selected set.
"""
from __future__ import annotations

import json

from orchestrator.core.graph import ModuleGraph


def branches(graph: ModuleGraph, selected: list[str]) -> list[dict]:
    chosen = set(selected)
    sinks = [m for m in selected
             if not any(d in chosen for d in graph.dependents(m))]
    jobs = []
    for sink in sinks:
        targets = [m for m in graph.closure(sink) + [sink] if m in chosen]
        jobs.append({"name": sink, "targets": " ".join(f"test:{m}" for m in targets),
                     "modules": targets})
    return jobs


def matrix_json(graph: ModuleGraph, selected: list[str]) -> str:
    return json.dumps({"include": branches(graph, selected)})
