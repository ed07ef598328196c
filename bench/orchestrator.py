"""Benchmark the orchestrator against what a user would do instead, side by side in one run.

    python bench/orchestrator.py [--repeat N] [--json bench/results/orchestrator.json]

Runs on a copy of this checkout (tracked and untracked files, not ignored ones),
each cold case from a clean state dir and no generated package, the cold cases in
turn within each repeat. Prints a table, writes JSON, and ends with one
`name: value` line per figure:

  cold_ratio           doit -n 2 all  /  plain `pytest <every module's tests>` (one process)
  noop_s, noop_ratio   `doit all` with nothing changed (whole command), and / plain pytest
  incremental_ratio    after an edit to a leaf module's exported code: doit all / its own pytest
  parallel_efficiency  cold wall / max(critical path, total work / workers), from recorded durations
  xdist_policy         cold wall with the shipped xdist policy / the better of never and always
  launcher_ratio       cold wall with the warm launcher (shipped) / with a new process per module
  observe_overhead     plain pytest over every module's tests observed as the runner observes
                       them (audit hook, imports, distributions, subprocesses) / unobserved
Absolute times on 2 noisy cores mean little: read the ratios (medians of --repeat runs).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script: the imports below (noqa: E402) need it

from orchestrator.cache.store import Store  # noqa: E402
from orchestrator.core.graph import load  # noqa: E402
from orchestrator.core.state import StateDir  # noqa: E402

WORKERS = 2


def copy_checkout(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


class Bench:
    def __init__(self, root: Path, repeat: int):
        self.root, self.repeat = root, repeat
        self.graph = load(root)
        self.env = {**os.environ, "PYTHONPATH": str(root)}

    def clean(self) -> None:
        shutil.rmtree(StateDir(self.root).path, ignore_errors=True)
        shutil.rmtree(self.root / self.graph.package, ignore_errors=True)

    def timed(self, *command: str, check: bool = True, env: dict | None = None) -> float:
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", *command], cwd=self.root,
                             env={**self.env, **(env or {})}, capture_output=True, text=True)
        took = time.perf_counter() - start
        if check and run.returncode != 0:
            sys.exit(f"bench: `{' '.join(command)}` failed ({run.returncode}):\n"
                     f"{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
        return took

    def plain_pytest(self, *dirs: str, observed: bool = False) -> float:
        dirs = dirs or tuple(m.tests.as_posix() for m in self.graph)
        env = None
        if observed:      # what runner.run_module adds to a pytest process's environment
            from orchestrator.run.observe import environment
            out = StateDir(self.root).observed("bench")
            env = {**environment(out, self.root), "PYTHONPATH": os.pathsep.join(
                [environment(out, self.root)["PYTHONPATH"], str(self.root)])}
        return self.timed("pytest", "-q", "-p", "no:cacheprovider", *dirs, env=env)

    def cold_cases(self, cases: dict[str, tuple[str, ...] | str | None]) -> dict[str, float]:
        """Median cold wall of each case, the cases taken in turn within each repeat so
        that a slow minute of the machine falls on all of them alike. A case is doit's
        extra arguments, or None for plain pytest ("observed": observed as the runner
        observes). The last case of a round leaves its state behind (recorded durations,
        a warm cache)."""
        walls: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(self.repeat):
            for name, extra in cases.items():
                self.clean()
                if extra is None or isinstance(extra, str):
                    walls[name].append(self.plain_pytest(observed=extra == "observed"))
                else:
                    walls[name].append(self.timed("doit", "-n", str(WORKERS), "all", *extra))
        return {name: statistics.median(w) for name, w in walls.items()}

    def leaf(self):
        leaves = [m for m in self.graph if not self.graph.dependents(m.id)]
        return leaves[-1]

    def incremental(self) -> tuple[float, float, str]:
        leaf = self.leaf()
        source = self.root / leaf.source
        original = source.read_text(encoding="utf-8")
        walls, owns = [], []
        try:
            for i in range(self.repeat):
                source.write_text(edit_export_cell(original, i), encoding="utf-8")
                walls.append(self.timed("doit", "-n", str(WORKERS), "all"))
                owns.append(self.plain_pytest(leaf.tests.as_posix()))
        finally:
            source.write_text(original, encoding="utf-8")
            self.timed("doit", "-n", str(WORKERS), "all")
        return statistics.median(walls), statistics.median(owns), leaf.id

    def recorded(self) -> dict[str, float]:
        """Each module's duration as the last cold run recorded it."""
        store, found = Store(self.root), {}
        for m in self.graph:
            result = store.latest(m.id)
            if result is None:
                sys.exit(f"bench: no recorded result of {m.id} after a cold run")
            found[m.id] = result.duration
        return found

    def xdist_chosen(self, durations: dict[str, float]) -> int:
        """How many modules the shipped xdist policy would run with workers when every
        target runs again with this benchmark's worker count: the run played out from
        the recorded durations (schedule.simulate), each module asked as it starts,
        alone or not, with its recorded time in one process and its longest test
        (runner.serial_time)."""
        from orchestrator.campaign.schedule import simulate
        from orchestrator.run.runner import serial_time, xdist_workers
        cores, store = os.cpu_count() or 1, Store(self.root)
        chosen = 0
        for module_id, alone in simulate(self.graph, durations, WORKERS).items():
            took, longest = serial_time(store.latest(module_id))
            chosen += xdist_workers(took, WORKERS, cores, alone=alone, longest=longest) > 1
        return chosen

    def lower_bound(self, durations: dict[str, float]) -> tuple[float, float, float]:
        """(critical path, total work, bound) from the recorded durations."""
        finish: dict[str, float] = {}
        for m in self.graph:   # curriculum order is a topological order
            deps = self.graph.test_deps(m.id)
            finish[m.id] = durations[m.id] + max((finish[d] for d in deps), default=0.0)
        critical, total = max(finish.values()), sum(durations.values())
        return critical, total, max(critical, total / WORKERS)


def edit_export_cell(text: str, i: int) -> str:
    """Append a harmless statement to the last exported cell: the generated body changes."""
    marker = "#| export\n"
    at = text.rindex(marker)
    end = text.find("\n# %%", at)
    end = len(text) if end == -1 else end
    return text[:end].rstrip("\n") + f"\n_bench_edit = {i}\n" + text[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path,
                        default=REPO / "bench" / "results" / "orchestrator.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        bench = Bench(copy_checkout(Path(tmp)), args.repeat)
        figures, rows = measure(bench)
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"figures": figures, "rows": rows}, indent=2) + "\n")
    for name, value in figures.items():
        print(f"{name}: {value}")


def measure(bench: Bench) -> tuple[dict, list]:
    walls = bench.cold_cases({"plain": None, "observed": "observed",
                              "cold_launcher": ("launcher=cold",),
                              "never": ("xdist=never",), "always": ("xdist=always",),
                              "shipped": ()})       # last: its durations and cache stay
    plain, cold, cold_launcher = walls["plain"], walls["shipped"], walls["cold_launcher"]
    never, always, policy = walls["never"], walls["always"], walls["shipped"]
    recorded = bench.recorded()
    critical, total, bound = bench.lower_bound(recorded)
    with_xdist = bench.xdist_chosen(recorded)
    noop = statistics.median(bench.timed("doit", "all") for _ in range(max(5, bench.repeat)))
    inc_wall, inc_own, leaf = bench.incremental()
    figures = {
        "cold_ratio": round(cold / plain, 3),
        "noop_s": round(noop, 3),
        "noop_ratio": round(noop / plain, 4),
        "incremental_ratio": round(inc_wall / inc_own, 3),
        "parallel_efficiency": round(cold / bound, 3),
        "xdist_policy": round(policy / min(never, always), 3),
        "launcher_ratio": round(cold / cold_launcher, 3),
        "observe_overhead": round(walls["observed"] / plain, 3),
    }
    rows = [
        ["plain pytest, all module tests, one process (cold)", f"{plain:.2f}s"],
        [f"doit -n {WORKERS} all (cold)", f"{cold:.2f}s"],
        ["doit all, nothing changed", f"{noop:.3f}s"],
        [f"edit {leaf}: doit all / its own pytest", f"{inc_wall:.2f}s / {inc_own:.2f}s"],
        ["critical path / total work (recorded)", f"{critical:.2f}s / {total:.2f}s"],
        ["plain pytest observed / unobserved", f"{walls['observed']:.2f}s / {plain:.2f}s"],
        ["cold: warm launcher (shipped) / new process per module",
         f"{cold:.2f}s / {cold_launcher:.2f}s"],
        ["cold: xdist never / always / shipped policy",
         f"{never:.2f}s / {always:.2f}s / {policy:.2f}s"],
        ["modules the shipped policy now gives xdist workers",
         f"{with_xdist} of {len(bench.graph.modules)}"],
    ]
    return figures, rows


def print_table(rows: list) -> None:
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
