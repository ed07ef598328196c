"""The cost of a module: a generated course of many small modules, run by the orchestrator
and by plain pytest side by side in one run.

    python bench/small_modules.py [--modules 20 100] [--repeat 3]

Each module exports one function that calls two of the eight before it (a diamond-rich
graph with independent branches) and
has 10 trivial tests; graph.toml is written by `orchestrator init`, as a teacher would.
For each course size, alternating within each repeat so a slow minute falls on all alike:
  cold      `doit -n 2 all` from a clean state dir and no generated package
  plain     `python -m pytest tests` (one process, exporting first through the plugin)
  noop      `doit all` with nothing changed
Ends with `name: value` lines per size N:
  cold_ratio_N             cold / plain
  noop_s_N                 the no-op's wall time
  per_module_overhead_s_N  (cold - plain) x workers / modules: what each module costs
                           beyond its tests, in worker-seconds
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script: the imports below (noqa: E402) need it

# the throwaway courses of the test suite take the same pytest and doit settings
from orchestrator.core.state import StateDir  # noqa: E402
from tests.orchestrator.conftest import PYPROJECT  # noqa: E402

WORKERS = 2
TESTS_PER_MODULE = 10


def module_id(k: int, width: int) -> str:
    return f"{k:0{width}d}_m{k}"


def source(k: int, calls: list[int]) -> str:
    imports = "".join(f"from minicourse.m{c} import f{c}\n" for c in calls)
    body = " + ".join(f"f{c}(x)" for c in calls) or "x"
    # cached: two calls each would take exponential time down a hundred modules
    return ("# %% [markdown]\n# A small module.\n\n"
            f"# %%\n#| default_exp m{k}\n\n"
            f"# %%\n#| export\nimport functools\n\n{imports}\n\n"
            f"@functools.cache\ndef f{k}(x):\n    return {body}\n")


def tests(k: int) -> str:
    lines = [f"from minicourse.m{k} import f{k}\n"]
    for t in range(TESTS_PER_MODULE):
        lines.append(f"\n\ndef test_f{k}_{t}():\n    assert f{k}({t}) == f{k}({t})\n")
    return "".join(lines)


def generate(root: Path, modules: int, seed: int = 7) -> Path:
    """A course of `modules` modules; each calls two of the eight before it (diamonds, and
    independent branches for the workers to share)."""
    rng = random.Random(seed)
    width = len(str(modules))
    for k in range(1, modules + 1):
        earlier = list(range(max(1, k - 8), k))
        calls = sorted(rng.sample(earlier, min(2, len(earlier))))
        mid = module_id(k, width)
        (root / "modules" / mid).mkdir(parents=True)
        (root / "modules" / mid / f"m{k}_dev.py").write_text(source(k, calls))
        (root / "tests" / mid).mkdir(parents=True)
        (root / "tests" / mid / f"test_m{k}_core.py").write_text(tests(k))
    (root / "pyproject.toml").write_text(PYPROJECT)
    run(root, "orchestrator.cli.main", "init", ".")
    return root


def run(root: Path, *command: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *command], cwd=root, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: `{' '.join(command)}` failed ({done.returncode}):\n"
                 f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return took


def clean(root: Path) -> None:
    shutil.rmtree(StateDir(root).path, ignore_errors=True)
    shutil.rmtree(root / "minicourse", ignore_errors=True)


def measure(root: Path, repeat: int) -> dict[str, float]:
    walls: dict[str, list[float]] = {"cold": [], "plain": [], "noop": []}
    for _ in range(repeat):
        clean(root)
        walls["plain"].append(run(root, "pytest", "-q", "-p", "no:cacheprovider", "tests"))
        clean(root)
        walls["cold"].append(run(root, "doit", "-n", str(WORKERS), "all"))
        walls["noop"].append(run(root, "doit", "all"))
    return {name: statistics.median(w) for name, w in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures = {}
    for n in args.modules:
        with tempfile.TemporaryDirectory(prefix=f"small-{n}-") as tmp:
            walls = measure(generate(Path(tmp), n), args.repeat)
        print(f"{n} modules: cold {walls['cold']:.2f}s, plain pytest {walls['plain']:.2f}s, "
              f"no-op {walls['noop']:.2f}s", flush=True)
        figures[f"cold_ratio_{n}"] = round(walls["cold"] / walls["plain"], 2)
        figures[f"noop_s_{n}"] = round(walls["noop"], 3)
        figures[f"per_module_overhead_s_{n}"] = round(
            (walls["cold"] - walls["plain"]) * WORKERS / n, 3)
    for name, value in figures.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
