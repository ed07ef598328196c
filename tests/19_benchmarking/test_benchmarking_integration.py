"""Module 19 with module 14 (profiling) and the layers it profiles: the harness agrees
with measure_latency, benchmarks real models with measured metrics, and keeps no
outputs (memory_performance)."""
import gc
import sys
import weakref

import numpy as np
import pytest

from tinytorch.benchmarking import BenchmarkResult, Comparison, compare, run_benchmark
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import is_grad_enabled, no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import (
    LatencyResult,
    count_parameters,
    format_seconds,
    measure_latency,
    memory_of,
    parameter_bytes,
)


def test_run_benchmark_agrees_with_measure_latency_on_the_same_script(clock, scripted):
    durations = [5, 3, 8, 1, 9, 2, 6, 4, 7, 10, 11, 12, 13]
    ours = run_benchmark(scripted(durations), warmup=3, repeats=5, number=2, clock=clock)
    theirs = measure_latency(scripted(durations), warmup=3, repeats=5, number=2, timer=clock)
    assert isinstance(ours, LatencyResult)
    assert ours.samples == theirs.samples and ours.number == theirs.number
    for stat in ("median", "mean", "stdev", "min", "max", "p90", "p99"):
        assert getattr(ours, stat) == getattr(theirs, stat), stat


def test_tables_use_module_14s_time_format():
    result = BenchmarkResult(samples=(2.5e-5, 3e-5, 3.5e-5), number=1, name="a")
    comparison = Comparison("t", "a", {"a": result})
    row = comparison.to_markdown().splitlines()[4]
    assert row.startswith(f"| a | {format_seconds(3e-5)} | ")
    assert format_seconds(3e-5) == "30.0 us"


def mlp(width, seed=0):
    return Sequential(Linear(64, width, seed=seed), ReLU(), Linear(width, 10, seed=seed + 1))


def test_comparing_models_reports_their_measured_sizes_and_outputs(rng):
    x = Tensor(rng.standard_normal((32, 64)).astype(np.float32))
    models = {"narrow": mlp(16), "wide": mlp(128)}

    def forward(model):
        with no_grad():
            return model(x)

    def metrics(name, output):
        model = models[name]
        return {"params": count_parameters(model).total, "bytes": parameter_bytes(model),
                "out sum": float(output.data.sum())}

    result = compare({name: (forward, (m,)) for name, m in models.items()}, warmup=1,
                     repeats=3, metrics=metrics, title="MLP width")
    # 64*16+16 + 16*10+10 = 1210; 64*128+128 + 128*10+10 = 8320 + 1290 = 9610; 4 B each
    assert result.metrics["narrow"]["params"] == 1210
    assert result.metrics["wide"]["params"] == 9610
    assert result.metrics["wide"]["bytes"] == 4 * 9610
    for name, model in models.items():
        assert result.metrics[name]["out sum"] == float(forward(model).data.sum())
    assert set(result.speedups) == {"narrow", "wide"} and result.speedups["narrow"] == 1.0
    assert all(r.repeats == 3 and min(r.samples) > 0 for r in result.results.values())


def test_benchmarking_a_training_step_leaves_autograd_as_it_was(rng):
    model = mlp(8)
    x = Tensor(rng.standard_normal((4, 64)).astype(np.float32))

    def step():
        model.zero_grad()
        model(x).sum().backward()

    result = run_benchmark(step, warmup=1, repeats=3)
    assert result.repeats == 3 and is_grad_enabled()
    model.zero_grad()
    model(x).sum().backward()
    # d sum / d bias of the last layer is the batch size for every output
    np.testing.assert_array_equal(model[2].bias.grad.data, np.full(10, 4.0, np.float32))


def test_a_cnn_from_module_09_benchmarks_against_an_mlp(rng):
    images = Tensor(rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
    cnn = Sequential(Conv2d(1, 4, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                     Linear(4 * 4 * 4, 10, seed=1))
    flat = mlp(32)

    def run(model, x):
        with no_grad():
            return model(x)

    result = compare({"cnn": (run, (cnn, images)), "mlp": (run, (flat, images.reshape(16, 64)))},
                     warmup=1, repeats=3,
                     metrics=lambda name, out: {"outputs": out.shape[0] * out.shape[1]})
    assert result.metrics == {"cnn": {"outputs": 160}, "mlp": {"outputs": 160}}


# ---- memory_performance ------------------------------------------------------------------------

class Output:
    """A return value that can be watched with a weak reference."""


@pytest.mark.memory_performance
def test_the_harness_keeps_no_return_values():
    refs = []

    def make():
        out = Output()
        refs.append(weakref.ref(out))
        return out

    result = compare({"a": make, "b": make}, warmup=2, repeats=5, number=3,
                     metrics=lambda name, out: {"alive": sum(r() is not None for r in refs)})
    assert len(refs) == 2 * (2 + 5 * 3 + 1)            # warm-up, timed and metrics calls
    # dropped at once (reference counting), not only at the next collection: when the
    # metrics call's output was measured, it was the only one still alive
    assert result.metrics == {"a": {"alive": 1}, "b": {"alive": 1}}
    assert all(r() is None for r in refs)
    gc.collect()
    assert all(r() is None for r in refs)


@pytest.mark.memory_performance
def test_benchmarking_big_outputs_holds_one_at_a_time():
    # 30 calls, each returning 1 MB: keeping them would peak above 30 MB
    megabyte = 1 << 20
    memory = memory_of(run_benchmark, lambda: np.ones(megabyte, np.uint8), warmup=5,
                       repeats=25)
    assert memory.peak_bytes < 3 * megabyte
    assert memory.retained_bytes < 64 * 1024              # the result: 25 floats and a name
    assert memory.value.repeats == 25


@pytest.mark.memory_performance
def test_sample_storage_is_one_float_per_repeat(clock, scripted):
    for repeats, number in [(4, 1), (4, 250), (40, 1)]:
        result = run_benchmark(scripted([1] * (repeats * number)), warmup=0, repeats=repeats,
                               number=number, clock=clock)
        assert len(result.samples) == repeats                 # not one per call
        assert all(type(s) is float for s in result.samples)
        assert sys.getsizeof(result.samples) == sys.getsizeof(tuple(range(repeats)))
        assert len(result.to_dict()["samples"]) == repeats


@pytest.mark.memory_performance
def test_the_only_overhead_in_a_sample_is_one_clock_read():
    # a clock that advances one tick per read: a sample of `number` no-op calls measures
    # exactly one tick, so nothing but the calls runs between the two reads
    ticks = iter(range(10_000))
    result = run_benchmark(lambda: None, warmup=3, repeats=6, number=4,
                           clock=lambda: float(next(ticks)))
    assert result.samples == (0.25,) * 6
    assert next(ticks) == 12                              # two reads per sample, none else
