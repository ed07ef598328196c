"""Module 18's techniques side by side at realistic sizes, every number measured.

    python bench/acceleration.py [--repeats 9] [--quick] [--blas-threads 1]

Each technique runs its naive and fast variants on the same seeded float32 inputs
(compare() first checks that they agree), times them with module 14's
measure_latency (median of --repeats samples, taken in interleaved rounds) and
prints a table. Ends with `name: value` lines: speed-ups are baseline median /
variant median (> 1 is faster; < 1 is slower, reported as measured); memory ratios
are traced peak bytes (unfused / fused).

BLAS runs on one thread by default (--blas-threads 0 keeps the library's default):
on a shared machine a multi-threaded BLAS waiting for a busy core can make one
128x128 matmul a thousand times slower, which would measure the neighbours, not
the technique. The setting is printed with the results.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# (title with {size} fields, compare_* function of tinytorch.acceleration, full sizes,
#  --quick sizes, [(summary name, variant, baseline)]); a summary value is
#  medians[baseline] / medians[variant].
CASES = [
    ("matmul {n}x{n} @ {n}x{n}: Python loops vs numpy", "compare_matmul",
     dict(n=128), dict(n=48),
     [("vectorized_matmul_speedup", "numpy @", "loops"),
      ("row_loop_matmul_speedup", "row loop", "loops")]),
    ("ReLU on {size:,} values: Python loop vs numpy", "compare_relu",
     dict(size=1_000_000), dict(size=100_000),
     [("vectorized_relu_speedup", "numpy", "loops")]),
    ("conv2d, digits CNN layer: batch {batch}, {in_channels}->{out_channels} channels, "
     "{size}x{size}, 3x3, padding 1", "compare_conv2d",
     dict(batch=32, in_channels=1, out_channels=8, size=8),
     dict(batch=8, in_channels=1, out_channels=8, size=8),
     [("vectorized_conv2d_speedup", "sliding windows", "loops"),
      ("tinytorch_conv2d_speedup", "tinytorch Conv2d", "loops")]),
    ("conv2d, CIFAR-sized layer: batch {batch}, {in_channels}->{out_channels} channels, "
     "{size}x{size}, 3x3, padding 1", "compare_conv2d",
     dict(batch=8, in_channels=3, out_channels=16, size=32),
     dict(batch=1, in_channels=3, out_channels=16, size=32),
     [("vectorized_conv2d_cifar_speedup", "sliding windows", "loops"),
      ("tinytorch_conv2d_cifar_speedup", "tinytorch Conv2d", "loops")]),
    ("tiled matmul {n}x{n}, tile {tile}: scalar loops in blocks vs numpy blocks vs @",
     "compare_tiling", dict(n=128, tile=32, loops=True), dict(n=48, tile=16, loops=True),
     [("tiled_numpy_vs_tiled_loops_speedup", "tiled numpy", "tiled loops")]),
    ("tiled matmul {n}x{n}, tile {tile}: numpy blocks vs @ (BLAS already tiles)",
     "compare_tiling", dict(n=1024, tile=128), dict(n=256, tile=64),
     [("tiled_numpy_vs_blas_speedup", "tiled numpy", "numpy @"),
      ("blas_vs_tiled_numpy_speedup", "numpy @", "tiled numpy")]),
    ("fused linear + ReLU: batch {batch}, {in_features} -> {out_features}", "compare_fusion",
     dict(batch=256, in_features=1024, out_features=1024),
     dict(batch=64, in_features=256, out_features=256),
     [("fused_linear_relu_speedup", "fused", "unfused"),
      ("fused_linear_relu_reused_buffer_speedup", "fused, reused buffer", "unfused")]),
    ("row sums of a {rows} x {cols} array, one row at a time: F vs C order",
     "compare_layout", dict(rows=1000, cols=10_000), dict(rows=200, cols=2000),
     [("c_order_row_sums_speedup", "C order", "F order"),
      ("ascontiguousarray_then_row_sums_speedup", "F -> ascontiguousarray", "F order")]),
]


def summarize(result, pairs):
    """The summary (name, value) lines of one case."""
    lines = [(name, result.medians[baseline] / result.medians[variant])
             for name, variant, baseline in pairs]
    if result.peak_bytes:
        peaks = result.peak_bytes
        lines += [("fused_peak_memory_ratio", peaks["unfused"] / peaks["fused"]),
                  ("fused_reused_buffer_peak_memory_ratio",
                   peaks["unfused"] / peaks["fused, reused buffer"])]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads (0: the library's default)")
    args = parser.parse_args()
    if args.blas_threads > 0:                       # must happen before numpy is imported
        for variable in BLAS_THREAD_VARIABLES:
            os.environ[variable] = str(args.blas_threads)
    sys.path.insert(0, str(REPO))
    np = importlib.import_module("numpy")
    acceleration = importlib.import_module("tinytorch.acceleration")

    start = time.perf_counter()
    threads = args.blas_threads or "library default"
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, BLAS threads: {threads}, "
          f"median of {args.repeats} samples{' (quick sizes)' if args.quick else ''}\n")
    summary = []
    for title, function, full, quick, pairs in CASES:
        sizes = quick if args.quick else full
        result = getattr(acceleration, function)(**sizes, warmup=1, repeats=args.repeats)
        print(f"## {title.format(**sizes)}\n{result.table()}\n")
        summary += summarize(result, pairs)
    for name, value in summary:
        print(f"{name}: {value:.2f}")
    print(f"acceleration_bench_seconds: {time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()
