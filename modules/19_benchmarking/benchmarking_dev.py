# %% [markdown]
# # Module 19: Benchmarking
#
# Modules 15-18 each claim an improvement: int8 weights are 4x smaller, a pruned
# model keeps its accuracy, a KV cache makes generation faster, vectorized code
# beats Python loops. A claim is worth what its measurement is worth, so this
# module builds the harness that measures them all the same careful way:
#
# 1. **warm up** each candidate (caches filled, lazy setup done), untimed;
# 2. **repeat** the timing many times and keep every sample, because one timing
#    is noise: report the distribution (median, IQR, percentiles), not a number;
# 3. **interleave** the candidates, round-robin (`a, b, c, a, b, c, ...`), so a
#    slow minute of the machine slows every candidate alike instead of the one
#    that happened to run then;
# 4. report each candidate's **speed-up** against a baseline, next to the other
#    things that were traded for it (accuracy, bytes), **measured** on the very
#    callables that were timed;
# 5. write the results down as JSON (for programs) and Markdown (for people).
#
# Module 14 timed one function (`measure_latency`); here we compare many. The
# clock is a parameter: the tests drive the harness with a fake clock whose time
# they script, and check every statistic exactly.

# %%
#| default_exp benchmarking

# %%
#| export
"""Benchmarking: run_benchmark (warm-up, repeats, statistics), compare (variants run
round-robin, speed-ups against a baseline, measured metrics), BenchmarkSuite (several
comparisons, one report); results as JSON, Markdown and plain text."""
import functools
import gc
import json
import numbers
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinytorch.core.tensor import check_int
from tinytorch.profiling import LatencyResult, format_seconds

# %% [markdown]
# ## One result: the samples and their statistics
#
# A `BenchmarkResult` is module 14's `LatencyResult` (the raw samples, seconds per
# call, and the statistics computed from them: median, mean, stdev, min, max,
# p90, p99) plus a name and the number of warm-up calls. It adds the quartiles:
# `p25` and `p75` bracket the middle half of the samples, and their distance, the
# **interquartile range** (IQR), says how noisy the measurement was without being
# moved by one outlier the way the standard deviation is.
#
# The result stores nothing but the samples, one float per repeat: every
# statistic is computed from them when asked, so nothing can disagree.
# `to_dict` also writes the statistics, for whoever reads the JSON;
# `from_dict` ignores them and recomputes.

# %%
#| export
@dataclass(frozen=True)
class BenchmarkResult(LatencyResult):
    """The timings of one callable: seconds per call, one sample per repeat."""
    name: str = "fn"
    warmup: int = 0      # untimed calls made before the first sample

    @property
    def repeats(self):
        return len(self.samples)

    @property
    def p25(self):
        return self.percentile(25)

    @property
    def p75(self):
        return self.percentile(75)

    @property
    def iqr(self):
        """p75 - p25: the spread of the middle half of the samples."""
        return self.p75 - self.p25

    def stats(self):
        return {"median": self.median, "mean": self.mean, "stdev": self.stdev,
                "min": self.min, "max": self.max, "p25": self.p25, "p75": self.p75,
                "iqr": self.iqr, "p90": self.p90, "p99": self.p99}

    def to_dict(self):
        return {"name": self.name, "warmup": self.warmup, "number": self.number,
                "repeats": self.repeats, "samples": list(self.samples), "stats": self.stats()}

    @classmethod
    def from_dict(cls, data):
        return cls(samples=tuple(float(s) for s in data["samples"]), number=int(data["number"]),
                   name=str(data["name"]), warmup=int(data["warmup"]))

    def __str__(self):
        return f"{self.name}: {LatencyResult.__str__(self)}"

# %% [markdown]
# ## Timing one sample
#
# A sample times `number` back-to-back calls and divides by `number`: a call that
# takes 100 ns is far below what one pair of clock reads can resolve, a thousand
# of them are not. Three details keep the sample honest:
#
# - the clock is read exactly twice per sample, right around the calls, so the
#   harness's own bookkeeping is never charged to the callable;
# - each call's return value is dropped at once: the harness keeps no outputs, so
#   benchmarking a function that returns a large array does not fill memory;
# - the garbage collector is paused during the sample (as `timeit` does): a
#   collection triggered by earlier garbage would be charged to whoever runs when
#   it happens. It runs between samples, untimed, so memory stays bounded.

# %%
#| export
class BenchmarkError(RuntimeError):
    """A benchmarked callable (or its setup or metrics) failed; the message names it."""


def _time_calls(call, number, clock):
    """Seconds per call of `number` back-to-back calls of call()."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for _ in range(number):
            call()
        elapsed = clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    if elapsed < 0:
        raise ValueError(f"the clock went backwards by {-elapsed} s; use a monotonic clock "
                         f"such as time.perf_counter")
    return elapsed / number

# %% [markdown]
# ## Rounds, round-robin
#
# Every round runs each variant once, in the order given: first `warmup` untimed
# rounds, then `repeats` timed ones. So the calls go `a b c a b c ...`, and
# whatever the machine does during the run (another process, the CPU clocking
# down as it heats) lands on every variant about equally.
#
# `setup()`, if given, runs untimed before every warm-up call and every sample:
# the place to reset state (an empty cache, a fresh copy) so that each sample
# starts from the same state.
#
# When a variant fails, the error names it: in a table of ten variants, "variant
# 'int8' raised ValueError: ..." is the message you need.

# %%
#| export
def _run_rounds(calls, warmup, repeats, number, setup, clock):
    """{name: zero-argument callable} -> {name: [seconds per call, one per repeat]}."""
    samples = {name: [] for name in calls}
    for round_index in range(warmup + repeats):
        for name, call in calls.items():
            try:
                if setup is not None:
                    setup()
                if round_index < warmup:
                    call()
                else:
                    samples[name].append(_time_calls(call, number, clock))
            except Exception as error:
                raise BenchmarkError(f"variant {name!r} raised {type(error).__name__}: "
                                     f"{error}") from error
    return samples

# %% [markdown]
# ## Variants
#
# A variant is a callable, or a pair `(callable, args)` that is called as
# `callable(*args)`: `{"loops": (matmul_loops, (a, b)), "numpy": (np.matmul, (a, b))}`
# runs both on the same inputs. Names must be strings: they become table rows and
# JSON keys.

# %%
#| export
def _as_call(name, variant):
    """A zero-argument callable from `fn` or `(fn, args)`."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"variant names must be non-empty strings, got {name!r}")
    fn, args = variant, ()
    if isinstance(variant, tuple):
        if len(variant) != 2 or not isinstance(variant[1], (tuple, list)):
            raise TypeError(f"variant {name!r}: expected a callable or (callable, args) with "
                            f"args a tuple, got {variant!r}")
        fn, args = variant
    if not callable(fn):
        raise TypeError(f"variant {name!r} is not callable: got {type(fn).__name__}")
    return functools.partial(fn, *args) if args else fn


# %% [markdown]
# ## Metrics: what was traded for the speed
#
# A faster model that is less accurate, or a smaller one that is slower, is a
# trade-off, and the table should show both sides. `metrics(name, output)` is
# called once per variant after the timing, with the output of one more
# (untimed) call of that variant, and returns numbers: `{"accuracy": 0.97,
# "bytes": 12_345}`. So the accuracy in the table is the accuracy of the very
# callable that was timed, and the sizes come from the objects themselves. The
# output is dropped right after.

# %%
#| export
def _metric_value(name, key, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"metrics for variant {name!r}: {key!r} must be a number, "
                        f"got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _measure_metrics(name, call, metrics):
    try:
        values = metrics(name, call())
    except Exception as error:
        raise BenchmarkError(f"metrics for variant {name!r} raised {type(error).__name__}: "
                             f"{error}") from error
    if not isinstance(values, dict):
        raise TypeError(f"metrics for variant {name!r} must return a dict of numbers, "
                        f"got {type(values).__name__}")
    return {str(key): _metric_value(name, key, value) for key, value in values.items()}

# %% [markdown]
# ## Reports: JSON in, JSON out
#
# Every report (`Comparison`, `BenchmarkSuite`) turns into a dict of plain
# numbers, strings and lists (`to_dict`) and back (`from_dict`); the JSON
# helpers are the same for all of them, so they live in one place. JSON writes a
# float with the shortest text that reads back as the same float, so a report
# saved and loaded is equal to the original, sample for sample.

# %%
#| export
class JsonReport:
    """to_json / from_json / save_json / load_json for any class with to_dict / from_dict."""

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def save_json(self, path):
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load_json(cls, path):
        return cls.from_json(Path(path).read_text())

# %% [markdown]
# ## Tables
#
# The same cells make the Markdown table (for a README or a pull request) and the
# plain-text table (for a terminal): one header row, then one row per variant;
# numbers are right-aligned in both.

# %%
#| export
def format_metric(value):
    """12345 -> '12,345'; 0.97493 -> '0.9749'."""
    return f"{value:,}" if isinstance(value, numbers.Integral) else f"{value:.4g}"


def markdown_table(header, rows, numeric):
    align = ["---:" if right else ":---" for right in numeric]
    lines = [header, align] + rows
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def text_table(header, rows, numeric):
    widths = [max(len(line[i]) for line in [header] + rows) for i in range(len(header))]

    def render(line):
        return "  ".join(cell.rjust(w) if right else cell.ljust(w)
                         for cell, w, right in zip(line, widths, numeric)).rstrip()
    return "\n".join([render(header), "  ".join("-" * w for w in widths)]
                     + [render(line) for line in rows])

# %% [markdown]
# ## A comparison
#
# A `Comparison` holds one result per variant (in the order run), the name of the
# baseline and the measured metrics. The **speed-up** of a variant is
# `baseline median / its median`: 4.0 means four times faster than the baseline,
# 0.5 twice as slow. Medians, not means: one sample slowed by the OS should not
# move the verdict.

# %%
#| export
@dataclass
class Comparison(JsonReport):
    """Results of variants run round-robin, with speed-ups against the baseline."""
    title: str
    baseline: str
    results: dict                                  # name -> BenchmarkResult, in run order
    metrics: dict = field(default_factory=dict)    # name -> {metric: number}

    def __post_init__(self):
        self.metrics = {name: dict(values) for name, values in self.metrics.items() if values}
        if self.baseline not in self.results:
            raise ValueError(f"baseline {self.baseline!r} is not one of the variants "
                             f"{list(self.results)}")

    def speedup(self, name):
        """Median of the baseline / median of name (> 1: faster than the baseline)."""
        median = self.results[name].median
        if median <= 0:
            raise ValueError(f"variant {name!r} has a median of {median} s per call: "
                             f"time more calls per sample (number=)")
        return self.results[self.baseline].median / median

    @property
    def speedups(self):
        return {name: self.speedup(name) for name in self.results}

    @property
    def fastest(self):
        return min(self.results, key=lambda name: self.results[name].median)

    def metric_names(self):
        """Every metric name, in the order first seen."""
        return list(dict.fromkeys(key for values in self.metrics.values() for key in values))

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self):
        variants = []
        for name, result in self.results.items():
            variants.append({**result.to_dict(), "speedup": self.speedup(name),
                             "metrics": dict(self.metrics.get(name, {}))})
        return {"title": self.title, "baseline": self.baseline, "variants": variants}

    @classmethod
    def from_dict(cls, data):
        results = {v["name"]: BenchmarkResult.from_dict(v) for v in data["variants"]}
        metrics = {v["name"]: dict(v["metrics"]) for v in data["variants"] if v["metrics"]}
        return cls(title=data["title"], baseline=data["baseline"], results=results,
                   metrics=metrics)

    # -- tables ----------------------------------------------------------------------
    def _cells(self):
        header = ["variant", "median", "mean", "stdev", "IQR", "min",
                  f"speed-up vs {self.baseline}"] + self.metric_names()
        rows = []
        for name, r in self.results.items():
            values = self.metrics.get(name, {})
            rows.append([name] + [format_seconds(s) for s in (r.median, r.mean, r.stdev,
                                                              r.iqr, r.min)]
                        + [f"{self.speedup(name):.2f}x"]
                        + [format_metric(values[k]) if k in values else ""
                           for k in self.metric_names()])
        return header, rows, [False] + [True] * (len(header) - 1)

    def settings(self):
        """One line: how the numbers were measured (from the baseline's result)."""
        base = self.results[self.baseline]
        return (f"{base.repeats} samples of {base.number} call(s) per variant after "
                f"{base.warmup} warm-up call(s), variants run round-robin; "
                f"speed-up = median of {self.baseline} / median")

    def to_markdown(self, level=3):
        return (f"{'#' * level} {self.title}\n\n{markdown_table(*self._cells())}\n\n"
                f"{self.settings()}\n")

    def to_text(self):
        return f"{self.title}\n{text_table(*self._cells())}\n{self.settings()}"

    __str__ = to_text

# %% [markdown]
# ## Running: `Benchmark`, `run_benchmark`, `compare`
#
# `Benchmark` holds the settings (warm-up calls, repeats, calls per sample, the
# clock), checked once, and runs with them: `run(fn)` times one callable,
# `compare(variants)` several, round-robin. `run_benchmark` and `compare` are the
# same as one-off functions.
#
# `compare` refuses a variant whose median is 0 s: the clock could not see it, so
# a speed-up would be meaningless. Timing more calls per sample (`number=`) fixes
# that.

# %%
#| export
@dataclass(frozen=True)
class Benchmark:
    """Settings for timing: `warmup` untimed calls, then `repeats` samples of `number` calls."""
    warmup: int = 3
    repeats: int = 20
    number: int = 1
    clock: object = time.perf_counter

    def __post_init__(self):
        check_int("Benchmark", "warmup", self.warmup, minimum=0)
        check_int("Benchmark", "repeats", self.repeats)
        check_int("Benchmark", "number", self.number)
        if not callable(self.clock):
            raise TypeError(f"clock must be callable (like time.perf_counter), "
                            f"got {type(self.clock).__name__}")

    def _results(self, calls, setup):
        if setup is not None and not callable(setup):
            raise TypeError(f"setup must be callable or None, got {type(setup).__name__}")
        samples = _run_rounds(calls, self.warmup, self.repeats, self.number, setup, self.clock)
        return {name: BenchmarkResult(samples=tuple(s), number=self.number, name=name,
                                      warmup=self.warmup) for name, s in samples.items()}

    def run(self, fn, name=None, setup=None):
        """Time fn() (or (fn, args)): a BenchmarkResult."""
        if name is None:
            name = getattr(fn[0] if isinstance(fn, tuple) and fn else fn, "__name__", "fn")
        return self._results({name: _as_call(name, fn)}, setup)[name]

    def compare(self, variants, baseline=None, setup=None, metrics=None, title="comparison"):
        """Time every variant round-robin: a Comparison against baseline (default: the first)."""
        if not isinstance(variants, dict) or not variants:
            raise ValueError("compare needs a non-empty dict {name: callable or "
                             "(callable, args)}")
        calls = {name: _as_call(name, variant) for name, variant in variants.items()}
        baseline = next(iter(calls)) if baseline is None else baseline
        if baseline not in calls:
            raise ValueError(f"baseline {baseline!r} is not one of the variants {list(calls)}")
        if metrics is not None and not callable(metrics):
            raise TypeError(f"metrics must be callable(name, output) -> dict, "
                            f"got {type(metrics).__name__}")
        results = self._results(calls, setup)
        for name, result in results.items():
            if result.median <= 0:
                raise BenchmarkError(f"variant {name!r} took {result.median} s per call at "
                                     f"this clock's resolution: time more calls per sample "
                                     f"(number=)")
        measured = {} if metrics is None else {
            name: _measure_metrics(name, call, metrics) for name, call in calls.items()}
        return Comparison(title=str(title), baseline=baseline, results=results,
                          metrics=measured)


def run_benchmark(fn, warmup=3, repeats=20, number=1, setup=None, clock=time.perf_counter,
                  name=None):
    """Time fn(): `warmup` untimed calls, then `repeats` samples of `number` calls each."""
    return Benchmark(warmup, repeats, number, clock).run(fn, name=name, setup=setup)


def compare(variants, baseline=None, warmup=3, repeats=20, number=1, setup=None,
            metrics=None, clock=time.perf_counter, title="comparison"):
    """Time {name: callable or (callable, args)} round-robin, with speed-ups vs baseline."""
    return Benchmark(warmup, repeats, number, clock).compare(
        variants, baseline=baseline, setup=setup, metrics=metrics, title=title)

# %% [markdown]
# ## A suite: several comparisons, one report
#
# A `BenchmarkSuite` collects comparisons (run through it, or added) and writes
# them as one JSON file and one Markdown file. It records the **environment** the
# numbers were measured in (Python, numpy, the platform, the CPU count, and how
# many threads BLAS may use): a speed-up measured on a laptop is not a speed-up on
# a server, and a report that does not say where it was measured cannot be
# checked. The threads matter more than one would guess: on a busy machine BLAS's
# worker threads wait for a free core, and a small matrix product can become a
# hundred times slower than the same product on one thread (`OPENBLAS_NUM_THREADS=1`).
# A benchmark run next to other work measures that too.

# %%
#| export
def environment():
    """Where the numbers were measured."""
    return {"python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset")}


@dataclass
class BenchmarkSuite(JsonReport):
    """Comparisons collected under one title, reported together."""
    title: str
    comparisons: list = field(default_factory=list)
    environment: dict = field(default_factory=environment)

    def add(self, comparison):
        if not isinstance(comparison, Comparison):
            raise TypeError(f"BenchmarkSuite.add expects a Comparison, "
                            f"got {type(comparison).__name__}")
        if any(c.title == comparison.title for c in self.comparisons):
            raise ValueError(f"the suite already has a comparison titled {comparison.title!r}")
        self.comparisons.append(comparison)
        return comparison

    def compare(self, title, variants, **options):
        """Run compare(variants, title=title, **options) and add the result."""
        if any(c.title == title for c in self.comparisons):
            raise ValueError(f"the suite already has a comparison titled {title!r}")
        return self.add(compare(variants, title=title, **options))

    def __getitem__(self, title):
        for comparison in self.comparisons:
            if comparison.title == title:
                return comparison
        raise KeyError(f"no comparison titled {title!r}; have "
                       f"{[c.title for c in self.comparisons]}")

    def to_dict(self):
        return {"title": self.title, "environment": dict(self.environment),
                "comparisons": [c.to_dict() for c in self.comparisons]}

    @classmethod
    def from_dict(cls, data):
        return cls(title=data["title"], environment=dict(data["environment"]),
                   comparisons=[Comparison.from_dict(c) for c in data["comparisons"]])

    def _environment_line(self):
        return ", ".join(f"{key} {value}" for key, value in self.environment.items())

    def to_markdown(self):
        parts = [f"# {self.title}\n", f"Measured on: {self._environment_line()}\n"]
        parts += [c.to_markdown(level=2) for c in self.comparisons]
        return "\n".join(parts)

    def to_text(self):
        parts = [self.title, f"Measured on: {self._environment_line()}"]
        parts += [c.to_text() for c in self.comparisons]
        return "\n\n".join(parts)

    __str__ = to_text

    def save(self, directory, stem="benchmark"):
        """Write <stem>.json and <stem>.md into directory; returns both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path = self.save_json(directory / f"{stem}.json")
        markdown_path = directory / f"{stem}.md"
        markdown_path.write_text(self.to_markdown())
        return json_path, markdown_path

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported. A Python loop
# against numpy on the same sum, interleaved, with the answer of each as a metric.

# %%
import math

values = np.random.default_rng(0).random(10_000)
suite = BenchmarkSuite("sums")
result = suite.compare("sum of 10,000 floats", {
    "python loop": (lambda xs: sum(xs.tolist()), (values,)),
    "numpy": (np.sum, (values,)),
}, repeats=10, metrics=lambda name, total: {"total": float(total)})
print(result)
print()
print(suite.to_markdown())
print(run_benchmark((np.sort, (values,)), repeats=5))
assert math.isclose(result.metrics["numpy"]["total"], result.metrics["python loop"]["total"])
