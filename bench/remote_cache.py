"""Benchmark the remote cache: a fully cached `doit all` served by a loopback nginx,
against the local no-op.

    python bench/remote_cache.py [--repeat 5] [--curriculum shipped|minicalc]

Clone A (a copy of this checkout, or the 4-module minicalc of the tests) runs `doit -n 2
all` once with a writable signed cache on nginx (tests/orchestrator/nginx.py), which
uploads every pass. Then, medians of --repeat runs, taken in turn:

  local_noop_s       clone A, `doit all`, no remote cache configured: the local no-op
  local_hit_s        clone A, `doit all`, remote configured: local hits ask the server nothing
  remote_noop_s      clone B (another folder, exported, its results deleted before each run):
                     every target a remote hit, fetched, verified and stored locally
  fresh_clone_s      clone B with no state dir and no exported package at all (exports too)
and one `name: value` line per figure; remote_noop_ratio = remote_noop_s / local_noop_s
(target <= 2), and remote_noop_ratio_best, the same for the fastest run of each.
"""
from __future__ import annotations

import argparse
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

from bench.orchestrator import copy_checkout  # noqa: E402
from orchestrator.core.state import StateDir  # noqa: E402
from tests.orchestrator.conftest import build  # noqa: E402
from tests.orchestrator.nginx import Nginx, find_nginx  # noqa: E402

KEY = "bench-key-" + "5" * 30


def make_clone(root: Path, curriculum: str) -> Path:
    root.mkdir(parents=True)
    if curriculum == "minicalc":
        build(root)
    else:
        copy_checkout(root)
    return root


class Clone:
    def __init__(self, root: Path, remote: dict[str, str]):
        self.root, self.remote = root, remote
        path = [str(REPO)] if root != REPO else []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
        self.env["PYTHONPATH"] = os.pathsep.join([str(root), *path])

    def doit(self, *args: str, remote: bool = True) -> tuple[float, str]:
        env = {**self.env, **(self.remote if remote else {})}
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root, env=env,
                             capture_output=True, text=True)
        took = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"bench: doit {' '.join(args)} failed in {self.root} ({run.returncode}):\n"
                     f"{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
        return took, run.stdout + run.stderr


def fully_cached(output: str) -> bool:
    return any(line.startswith("Executed 0 out of") for line in output.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--curriculum", choices=("shipped", "minicalc"), default="shipped")
    args = parser.parse_args()
    if find_nginx() is None:
        sys.exit("bench: nginx is not installed (apt-get install nginx)")
    with tempfile.TemporaryDirectory(prefix="remote-bench-") as tmp:
        tmp = Path(tmp)
        server = Nginx(tmp / "nginx").start()
        try:
            figures = measure(tmp, server, args)
        finally:
            server.stop()
    for name, value in figures.items():
        print(f"{name}: {value}")


def measure(tmp: Path, server: Nginx, args) -> dict:
    remote = {"ORCHESTRATOR_REMOTE_CACHE": server.url, "ORCHESTRATOR_CACHE_KEY": KEY}
    a = Clone(make_clone(tmp / "a", args.curriculum), remote)
    b = Clone(make_clone(tmp / "b", args.curriculum), remote)
    took, _ = a.doit("-n", "2", "all")
    print(f"clone A, cold, uploading: {took:.1f}s, {len(server.puts())} PUTs", flush=True)
    _, out = b.doit("all")                           # exports B; its stat cache warms
    assert fully_cached(out), out
    puts = len(server.puts())

    walls: dict[str, list[float]] = {"local_noop": [], "local_hit": [], "remote_noop": [],
                                     "fresh_clone": []}
    for _ in range(args.repeat):
        walls["local_noop"].append(a.doit("all", remote=False)[0])
        asked = len(server.requests())
        walls["local_hit"].append(a.doit("all")[0])
        assert len(server.requests()) == asked, "a local hit asked the server"
        shutil.rmtree(StateDir(b.root).all_results)
        took, out = b.doit("all")
        assert fully_cached(out), out
        walls["remote_noop"].append(took)
    gets = len(server.requests()) - asked
    for _ in range(max(1, args.repeat // 2)):
        shutil.rmtree(StateDir(b.root).path)
        package = b.root / ("minicalc" if args.curriculum == "minicalc" else "tinytorch")
        shutil.rmtree(package, ignore_errors=True)
        took, out = b.doit("all")
        assert fully_cached(out), out
        walls["fresh_clone"].append(took)
    assert len(server.puts()) == puts, "a fully cached run uploaded something"

    median = {name: statistics.median(w) for name, w in walls.items()}
    for name, w in walls.items():
        print(f"{name:<12} median {median[name]:.3f}s  runs {' '.join(f'{x:.3f}' for x in w)}")
    print(f"requests per remote no-op: {gets}")
    return {"local_noop_s": round(median["local_noop"], 3),
            "local_hit_s": round(median["local_hit"], 3),
            "remote_noop_s": round(median["remote_noop"], 3),
            "fresh_clone_s": round(median["fresh_clone"], 3),
            "remote_noop_ratio": round(median["remote_noop"] / median["local_noop"], 3),
            # the fastest of each: less moved by other load on the machine than medians
            "remote_noop_ratio_best": round(min(walls["remote_noop"]) / min(walls["local_noop"]),
                                            3)}


if __name__ == "__main__":
    main()
