"""Module 14 edge cases: empty models, empty batches, bad arguments, layers without a
FLOP rule, shape mismatches, very fast functions."""
import gc
import itertools

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import (
    LAYER_COSTS,
    attention_flops,
    count_parameters,
    layer_flops,
    measure_latency,
    memory_of,
    model_flops,
    parameter_bytes,
    parameters_by_layer,
    profile_model,
)


class Doubler(Module):
    """A layer no FLOP rule knows."""

    def forward(self, x):
        return x * 2


def test_empty_model_has_nothing_to_count():
    empty = Sequential()
    assert count_parameters(empty) == (0, 0)
    assert parameter_bytes(empty) == 0 and parameters_by_layer(empty) == {}
    assert model_flops(empty, (3, 4)) == 0


def test_empty_model_profile_has_a_total_row_of_zeros():
    profile = profile_model(Sequential(), (2, 3), warmup=0, repeats=1)
    assert profile.rows == [] and profile.total_params == profile.total_flops == 0
    lines = profile.table().splitlines()
    assert lines[1].split() == ["layer", "type", "output", "shape", "params", "FLOPs", "latency",
                                "act.", "peak", "B"]
    assert lines[3].split() == ["total", "0", "0", "0.0", "ns", "0"]


def test_empty_batch_costs_nothing():
    cnn = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 2))
    assert model_flops(cnn, (0, 1, 8, 8)) == 0
    profile = profile_model(cnn, (0, 1, 8, 8), warmup=0, repeats=1)
    assert [row["output_shape"] for row in profile.rows][-1] == (0, 2)
    assert profile.total_flops == 0 and profile.total_params == 40 + 130


@pytest.mark.parametrize("kwargs", [dict(repeats=0), dict(repeats=-1), dict(number=0),
                                    dict(warmup=-1), dict(repeats=2.5), dict(repeats=True)])
def test_latency_arguments_out_of_range_are_errors(kwargs):
    with pytest.raises(ValueError, match="measure_latency: "):
        measure_latency(lambda: None, **kwargs)


def test_zero_repeats_error_names_the_argument():
    with pytest.raises(ValueError, match="repeats must be a positive integer, got 0"):
        measure_latency(lambda: None, repeats=0)


def test_latency_needs_a_callable():
    with pytest.raises(TypeError, match="needs a callable, got int"):
        measure_latency(42)


def test_single_sample_has_zero_stdev():
    result = measure_latency(lambda: None, warmup=0, repeats=1, timer=iter([3, 7]).__next__)
    assert result.samples == (4,) and result.stdev == 0.0
    assert result.median == result.p99 == result.mean == 4


def test_a_failing_function_leaves_the_garbage_collector_on():
    def boom():
        raise RuntimeError("fails while timed")
    with pytest.raises(RuntimeError, match="fails while timed"):
        measure_latency(boom, warmup=0)
    assert gc.isenabled()


def test_very_fast_functions_are_timed_over_many_calls():
    result = measure_latency(lambda: None, warmup=0, repeats=3, number=1000,
                             timer=itertools.count(0, 0.125).__next__)
    assert result.samples == (0.125 / 1000,) * 3
    real = measure_latency(lambda: None, repeats=5, number=10_000)
    assert len(real.samples) == 5 and all(s >= 0 for s in real.samples)


def test_unknown_layer_type_is_named_in_the_error():
    model = Sequential(Linear(2, 2), Doubler())
    with pytest.raises(TypeError, match=r"layer 1: no FLOP rule for layer type Doubler"):
        model_flops(model, (1, 2))
    with pytest.raises(TypeError, match=r"layer 1: no FLOP rule for layer type Doubler"):
        profile_model(model, (1, 2), repeats=1)
    with pytest.raises(TypeError, match=r"LAYER_COSTS\[Doubler\] = rule"):
        layer_flops(Doubler(), (1, 2))


def test_a_registered_rule_makes_a_new_layer_known(monkeypatch):
    monkeypatch.setitem(LAYER_COSTS, Doubler, lambda layer, shape: (shape, int(np.prod(shape))))
    assert model_flops(Sequential(Linear(2, 3), Doubler()), (4, 2)) == 2 * 4 * 2 * 3 + 12 + 12


def test_a_subclass_uses_its_parents_rule():
    class MyLinear(Linear):
        pass
    assert layer_flops(MyLinear(3, 5), (4, 3)) == ((4, 5), 140)


def test_a_rule_that_disagrees_with_the_layer_is_caught(monkeypatch):
    monkeypatch.setitem(LAYER_COSTS, Doubler, lambda layer, shape: ((1,), 0))
    with pytest.raises(RuntimeError, match=r"layer 0 \(Doubler\) returned shape \(2, 3\), "
                                           r"its FLOP rule predicted \(1,\)"):
        profile_model(Doubler(), (2, 3), repeats=1)


@pytest.mark.parametrize("model, shape, message", [
    (Sequential(Linear(3, 2)), (4, 5), r"layer 0: Linear\(in_features=3.*last axis is 3, "
                                       r"got shape \(4, 5\)"),
    (Sequential(Linear(3, 2)), (), r"last axis is 3, got shape \(\)"),
    (Sequential(Conv2d(3, 2, 3)), (1, 1, 8, 8), r"expects 3 input channels"),
    (Sequential(Conv2d(1, 2, 3)), (1, 8, 8), r"expects \(N, C, H, W\) inputs"),
    (Sequential(Conv2d(1, 1, 5)), (1, 1, 3, 3), r"kernel 5x5 is larger than the 3x3 input"),
    (Sequential(MaxPool2d(4)), (1, 1, 3, 3), r"kernel 4x4 is larger"),
    (Sequential(Linear(3, 2), Linear(3, 2)), (1, 3), r"layer 1: .*got shape \(1, 2\)"),
])
def test_shape_mismatches_name_the_layer_and_shape(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model_flops(model, shape)


@pytest.mark.parametrize("shape", [5, "abc", (2, -1), (2.0, 3), None, (True, 2)])
def test_bad_input_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="an input shape must be a tuple of non-negative ints"):
        model_flops(Sequential(), shape)


@pytest.mark.parametrize("heads", [0, 3, 5])
def test_attention_heads_must_divide_the_width(heads):
    with pytest.raises(ValueError, match=f"{heads} heads do not divide embed_dim 16"):
        attention_flops(1, 4, 16, heads)


def test_a_bare_layer_is_a_one_layer_model():
    layer = Linear(3, 2)
    assert model_flops(layer, (1, 3)) == 2 * 3 * 2 + 2
    profile = profile_model(layer, Tensor(np.ones((1, 3))), repeats=1)
    assert [(row["name"], row["type"]) for row in profile.rows] == [("0", "Linear")]


def test_memory_of_passes_errors_through_and_stops_tracing():
    import tracemalloc
    with pytest.raises(ZeroDivisionError):
        memory_of(lambda: 1 / 0)
    assert not tracemalloc.is_tracing()
