"""Module 14 core: parameter counts, FLOP formulas, memory and latency statistics,
each checked against values computed by hand."""
import inspect
import itertools
import math
import tracemalloc

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import (
    LatencyResult,
    MemoryResult,
    ParameterCount,
    Profile,
    activation_memory,
    attention_flops,
    conv2d_flops,
    count_parameters,
    format_seconds,
    layer_flops,
    leaf_layers,
    linear_flops,
    measure_latency,
    memory_of,
    model_flops,
    named_tensors,
    parameter_bytes,
    parameter_bytes_by_dtype,
    parameters_by_layer,
    profile_model,
)

API = ["named_tensors", "ParameterCount", "count_parameters", "leaf_layers",
       "parameters_by_layer", "linear_flops", "conv2d_flops", "attention_flops", "LAYER_COSTS",
       "layer_flops", "model_flops", "parameter_bytes", "parameter_bytes_by_dtype",
       "MemoryResult", "memory_of", "activation_memory", "LatencyResult", "measure_latency",
       "format_seconds", "format_table", "PROFILE_COLUMNS", "Profile", "sample_input",
       "profile_model"]


def fake_clock(times):
    """A timer that returns the given times in order (and fails if asked once more)."""
    return iter(times).__next__


def clock_for(durations):
    """Start/stop readings whose differences are exactly `durations` (integers)."""
    times, now = [], 100
    for d in durations:
        times += [now, now + d]
        now += d + 7                                   # time passes between samples too
    return fake_clock(times)


# ---- parameters --------------------------------------------------------------------------

@pytest.mark.parametrize("layer, expected", [
    (Linear(3, 4), 3 * 4 + 4),
    (Linear(784, 128), 784 * 128 + 128),               # 100,480
    (Linear(5, 2, bias=False), 10),
    (Conv2d(3, 16, 3), 16 * 3 * 3 * 3 + 16),           # 448
    (Conv2d(1, 8, 3, bias=False), 72),
    (Conv2d(2, 4, (3, 5)), 4 * 2 * 15 + 4),            # 124
    (ReLU(), 0), (MaxPool2d(2), 0), (Flatten(), 0), (Dropout(0.5), 0),
])
def test_count_parameters_of_single_layers(layer, expected):
    assert count_parameters(layer) == ParameterCount(total=expected, trainable=expected)


def test_count_parameters_of_a_nested_model():
    model = Sequential(Linear(4, 8), ReLU(), Sequential(Linear(8, 8), Tanh()), Linear(8, 2))
    # 4*8+8 = 40, 8*8+8 = 72, 8*2+2 = 18
    assert count_parameters(model) == (130, 130)
    assert [name for name, _ in leaf_layers(model)] == ["0", "1", "2.0", "2.1", "3"]
    assert parameters_by_layer(model) == {"0": (40, 40), "1": (0, 0), "2.0": (72, 72),
                                          "2.1": (0, 0), "3": (18, 18)}


def test_frozen_tensors_count_in_total_but_not_trainable():
    model = Sequential(Linear(4, 3), Linear(3, 2))
    model[0].weight.requires_grad = False              # 12 frozen values
    assert count_parameters(model) == (15 + 8, 15 + 8 - 12)


def test_a_shared_tensor_is_counted_once():
    first, second = Linear(3, 3), Linear(3, 3)
    second.weight = first.weight
    assert count_parameters(Sequential(first, second)) == (9 + 3 + 3, 15)
    assert [name for name, _ in named_tensors(Sequential(first, second))] == [
        "layers.0.weight", "layers.0.bias", "layers.1.bias"]


# ---- FLOP formulas -----------------------------------------------------------------------

@pytest.mark.parametrize("batch, n_in, n_out, bias, expected", [
    (4, 3, 5, True, 2 * 4 * 3 * 5 + 4 * 5),           # 140
    (4, 3, 5, False, 120),
    (1, 1, 1, True, 3),
    (32, 784, 128, True, 2 * 32 * 784 * 128 + 32 * 128),   # 6,426,624
    (0, 10, 10, True, 0),
])
def test_linear_flops_formula(batch, n_in, n_out, bias, expected):
    assert linear_flops(batch, n_in, n_out, bias) == expected


@pytest.mark.parametrize("shape, expected_shape, expected", [
    ((4, 3), (4, 5), 140),
    ((2, 7, 3), (2, 7, 5), 2 * 14 * 3 * 5 + 14 * 5),   # leading axes count as batch: B = 14
    ((3,), (5,), 2 * 1 * 3 * 5 + 5),                    # a single vector
])
def test_linear_layer_flops_and_output_shape(shape, expected_shape, expected):
    assert layer_flops(Linear(3, 5), shape) == (expected_shape, expected)


@pytest.mark.parametrize("conv, shape, out_shape, expected", [
    # 2*N*out*Ho*Wo*in*kh*kw + N*out*Ho*Wo
    (Conv2d(3, 16, 3, padding=1), (2, 3, 32, 32), (2, 16, 32, 32),
     2 * 2 * 16 * 32 * 32 * 3 * 9 + 2 * 16 * 32 * 32),             # 1,802,240
    (Conv2d(3, 16, 3, stride=2), (1, 3, 9, 9), (1, 16, 4, 4),
     2 * 16 * 16 * 27 + 16 * 16),                                   # 14,080
    (Conv2d(2, 4, (3, 5), bias=False), (5, 2, 6, 7), (5, 4, 4, 3),
     2 * 5 * 4 * 4 * 3 * 2 * 3 * 5),                                # 14,400
    (Conv2d(1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1), 3),
])
def test_conv2d_layer_flops(conv, shape, out_shape, expected):
    assert layer_flops(conv, shape) == (out_shape, expected)


def test_conv2d_flops_formula_directly():
    assert conv2d_flops(2, 3, 16, 32, 32, 3, 3) == 1_802_240
    assert conv2d_flops(2, 3, 16, 32, 32, 3, 3, bias=False) == 1_802_240 - 2 * 16 * 32 * 32


@pytest.mark.parametrize("layer, shape, out_shape, expected", [
    (MaxPool2d(2), (2, 3, 8, 8), (2, 3, 4, 4), 2 * 3 * 16 * 3),   # kh*kw - 1 compares
    (MaxPool2d(3, 1), (1, 2, 5, 5), (1, 2, 3, 3), 18 * 8),
    (AvgPool2d(2), (2, 3, 8, 8), (2, 3, 4, 4), 2 * 3 * 16 * 4),   # kh*kw - 1 adds + 1 divide
    (MaxPool2d(2), (1, 1, 5, 5), (1, 1, 2, 2), 4 * 3),            # the last row/column dropped
    (ReLU(), (4, 10), (4, 10), 40),
    (Sigmoid(), (2, 3, 4), (2, 3, 4), 24),
    (Tanh(), (7,), (7,), 7),
    (GELU(), (3, 3), (3, 3), 9),
    (Softmax(), (4, 10), (4, 10), 120),                            # exp, add, divide
    (Flatten(), (2, 3, 4, 5), (2, 60), 0),
])
def test_cost_of_parameter_free_layers(layer, shape, out_shape, expected):
    assert layer_flops(layer, shape) == (out_shape, expected)


def test_dropout_costs_its_mask_only_while_training():
    drop = Dropout(0.5)
    assert layer_flops(drop, (4, 10)) == ((4, 10), 40)
    drop.eval()
    assert layer_flops(drop, (4, 10)) == ((4, 10), 0)
    assert layer_flops(Dropout(0.0), (4, 10)) == ((4, 10), 0)


def test_model_flops_of_a_small_cnn_is_the_hand_sum():
    cnn = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2),
                     Conv2d(4, 8, 3), ReLU(), AvgPool2d(2), Flatten(), Linear(8, 10))
    by_hand = [
        2 * 2 * 4 * 8 * 8 * 1 * 9 + 2 * 4 * 8 * 8,   # conv1 -> (2, 4, 8, 8): 9,728
        2 * 4 * 8 * 8,                               # relu: 512
        2 * 4 * 4 * 4 * 3,                           # max pool -> (2, 4, 4, 4): 384
        2 * 2 * 8 * 2 * 2 * 4 * 9 + 2 * 8 * 2 * 2,   # conv2 -> (2, 8, 2, 2): 4,672
        2 * 8 * 2 * 2,                               # relu: 64
        2 * 8 * 1 * 1 * 4,                           # avg pool -> (2, 8, 1, 1): 64
        0,                                           # flatten -> (2, 8)
        2 * 2 * 8 * 10 + 2 * 10,                     # linear -> (2, 10): 340
    ]
    assert sum(by_hand) == 15_764
    assert model_flops(cnn, (2, 1, 8, 8)) == 15_764
    assert model_flops(cnn, [2, 1, 8, 8]) == 15_764


def test_model_flops_scale_linearly_with_the_batch():
    mlp = Sequential(Linear(64, 32), ReLU(), Linear(32, 10))
    one = 2 * 64 * 32 + 32 + 32 + 2 * 32 * 10 + 10
    assert model_flops(mlp, (1, 64)) == one == 4810
    assert model_flops(mlp, (50, 64)) == 50 * one


@pytest.mark.parametrize("B, T, C, heads", [(1, 4, 8, 2), (2, 10, 32, 4), (3, 16, 48, 6)])
def test_attention_flops_formula(B, T, C, heads):
    d = C // heads
    per_head = 2 * T * T * d + 2 * T * T * d                       # Q K^T, then weights @ V
    core = B * heads * per_head
    assert attention_flops(B, T, C, heads, projections=False) == core == 4 * B * T * T * C
    projections = 4 * (2 * B * T * C * C + B * T * C)              # Q, K, V, output (+ bias)
    assert attention_flops(B, T, C, heads) == core + projections
    assert attention_flops(B, T, C, heads, bias=False) == core + 8 * B * T * C * C


def test_the_number_of_heads_does_not_change_attention_flops():
    counts = {attention_flops(2, 16, 64, heads) for heads in (1, 2, 4, 8, 16, 64)}
    assert counts == {4 * 2 * 16 * 16 * 64 + 4 * (2 * 2 * 16 * 64 * 64 + 2 * 16 * 64)}


# ---- memory ------------------------------------------------------------------------------

def test_parameter_bytes_are_four_per_float32_value():
    cnn = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                     Linear(128, 10))
    assert count_parameters(cnn).total == 1370
    assert parameter_bytes(cnn) == 4 * 1370
    assert parameter_bytes_by_dtype(cnn) == {"float32": 4 * 1370}


def test_parameter_bytes_by_dtype_separates_dtypes():
    class Mixed(Module):
        def __init__(self):
            self.codes = Tensor(np.zeros((10, 4), dtype=np.int8))       # 40 bytes
            self.scale = Tensor(np.ones(4), dtype=np.float64)           # 32 bytes
            self.bias = Tensor(np.zeros(4), requires_grad=True)         # float32: 16 bytes
    assert parameter_bytes_by_dtype(Mixed()) == {"int8": 40, "float64": 32, "float32": 16}
    assert parameter_bytes(Mixed()) == 88
    assert count_parameters(Mixed()) == (48, 4)


@pytest.mark.memory_performance
def test_memory_of_a_known_allocation_is_its_nbytes():
    n = 1_000_000
    result = memory_of(np.ones, n)                                  # 8,000,000 bytes
    assert isinstance(result, MemoryResult) and result.value.nbytes == 8 * n
    assert result.peak_bytes == pytest.approx(8 * n, rel=0.01)
    assert result.retained_bytes == pytest.approx(8 * n, rel=0.01)


@pytest.mark.memory_performance
def test_memory_of_separates_the_peak_from_what_is_kept():
    result = memory_of(lambda: float(np.ones((1000, 1000), dtype=np.float32).sum()))
    assert result.value == 1_000_000.0
    assert result.peak_bytes == pytest.approx(4_000_000, rel=0.01)  # the array, while it lived
    assert result.retained_bytes < 0.01 * 4_000_000                 # freed before returning


@pytest.mark.memory_performance
def test_memory_of_leaves_tracemalloc_as_it_found_it():
    assert not tracemalloc.is_tracing()
    memory_of(np.zeros, 100)
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        assert memory_of(np.zeros, 125_000).peak_bytes == pytest.approx(1_000_000, rel=0.01)
        assert tracemalloc.is_tracing()                             # still on for the caller
    finally:
        tracemalloc.stop()


@pytest.mark.memory_performance
def test_no_grad_forward_keeps_only_the_output(rng):
    layer = Linear(1000, 500, seed=0)
    x = Tensor(rng.standard_normal((64, 1000)))
    layer(x)                                                        # first-call effects done
    out_bytes = 64 * 500 * 4
    inference = activation_memory(layer, x)
    assert inference.value.shape == (64, 500)
    assert inference.retained_bytes == pytest.approx(out_bytes, rel=0.05)
    assert out_bytes <= inference.peak_bytes                        # x @ W and x @ W + b
    # With a graph recorded, x @ W is kept for backward: twice the memory.
    training = memory_of(layer, x)
    assert training.retained_bytes == pytest.approx(2 * out_bytes, rel=0.05)


@pytest.mark.memory_performance
def test_timing_keeps_nothing_but_the_samples():
    # 20 calls each returning 800 KB: the profiler must not hold on to any of them
    result = memory_of(measure_latency, lambda: np.ones(100_000), warmup=2, repeats=20)
    assert len(result.value.samples) == 20
    assert result.retained_bytes < 0.01 * 800_000
    assert result.peak_bytes < 2 * 800_000          # one result alive at a time, at most


# ---- latency -----------------------------------------------------------------------------

def test_latency_statistics_from_a_fake_clock():
    calls = []
    result = measure_latency(lambda: calls.append(1), warmup=2, repeats=5,
                             timer=clock_for([5, 1, 4, 2, 3]))
    assert isinstance(result, LatencyResult)
    assert result.samples == (5, 1, 4, 2, 3) and len(calls) == 2 + 5
    assert (result.median, result.p50, result.min, result.max) == (3, 3, 1, 5)
    assert result.mean == 3
    assert result.stdev == pytest.approx(math.sqrt(2.5), rel=1e-12)  # (4+1+0+1+4) / 4
    # numpy's linear interpolation on the sorted samples 1..5: 1 + q/100 * 4
    assert result.p90 == pytest.approx(4.6, rel=1e-12)
    assert result.p99 == pytest.approx(4.96, rel=1e-12)
    assert result.percentile(25) == 2


def test_latency_even_number_of_samples_and_ten_samples():
    result = measure_latency(lambda: None, warmup=0, repeats=10,
                             timer=clock_for([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]))
    assert result.median == 5.5
    assert result.p90 == pytest.approx(9.1, rel=1e-12)              # 1 + 0.9 * 9
    assert result.p99 == pytest.approx(9.91, rel=1e-12)
    assert result.stdev == pytest.approx(np.std(np.arange(1, 11), ddof=1), rel=1e-12)


def test_each_sample_divides_by_number():
    calls = []
    result = measure_latency(lambda: calls.append(1), warmup=1, repeats=3, number=4,
                             timer=clock_for([2, 4, 6]))
    assert result.samples == (0.5, 1.0, 1.5) and result.number == 4
    assert len(calls) == 1 + 3 * 4


def test_a_real_clock_gives_ordered_positive_statistics():
    result = measure_latency(lambda: sum(range(1000)), warmup=1, repeats=15)
    assert len(result.samples) == 15 and all(s > 0 for s in result.samples)
    assert result.min <= result.median <= result.p90 <= result.p99 <= result.max


def test_format_seconds_picks_a_readable_unit():
    assert [format_seconds(s) for s in (2.5, 0.25, 1.5e-5, 3e-8, 0.0)] == [
        "2.5 s", "250.0 ms", "15.0 us", "30.0 ns", "0.0 ns"]


# ---- API ---------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.profiling", API)
    assert callable(found["measure_latency"]) and isinstance(found["LAYER_COSTS"], dict)
    assert {Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, ReLU} <= set(found["LAYER_COSTS"])


@pytest.mark.api_consistency
def test_signatures():
    params = inspect.signature(measure_latency).parameters
    assert list(params) == ["fn", "warmup", "repeats", "number", "timer"]
    assert [params[n].default for n in ("warmup", "repeats", "number")] == [3, 20, 1]
    assert list(inspect.signature(attention_flops).parameters) == [
        "batch", "seq_len", "embed_dim", "heads", "projections", "bias"]
    assert list(inspect.signature(model_flops).parameters) == ["model", "input_shape"]
    assert list(inspect.signature(profile_model).parameters)[:2] == ["model", "sample"]


@pytest.mark.api_consistency
def test_result_objects_expose_the_same_statistics():
    result = measure_latency(lambda: None, warmup=0, repeats=3, timer=clock_for([1, 2, 3]))
    for name in ("median", "mean", "stdev", "min", "max", "p50", "p90", "p99", "samples"):
        assert getattr(result, name) is not None, name
    assert str(result) == "median 2.0 s (p90 2.8 s, min 1.0 s, 3 x 1 calls)"
    count = count_parameters(Linear(2, 2))
    assert count._fields == ("total", "trainable") and tuple(count) == (6, 6)
    memory = memory_of(list, range(3))
    assert memory._fields == ("peak_bytes", "retained_bytes", "value")
    assert memory.value == [0, 1, 2]


@pytest.mark.api_consistency
def test_profile_rows_are_dicts_with_fixed_keys():
    profile = profile_model(Sequential(Linear(3, 2)), (4, 3), warmup=0, repeats=2,
                            timer=itertools.count(0, 0.25).__next__)
    assert isinstance(profile, Profile)
    assert list(profile.rows[0]) == ["name", "type", "output_shape", "params", "flops",
                                     "latency", "activation_bytes", "output_bytes"]
    assert str(profile) == profile.table()


def test_format_seconds_rounds_up_into_the_next_unit():
    assert format_seconds(0.0009999999) == "1.0 ms"
    assert format_seconds(0.99996) == "1.0 s"
    assert format_seconds(0.00099949) == "999.5 us"
