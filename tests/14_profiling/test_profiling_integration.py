"""Module 14 with the layers of modules 03 and 09: FLOP rules against PyTorch's own FLOP
counter, parameter counts against PyTorch and against Module.parameters(), and
profile_model running the real layers."""
import itertools

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import (
    attention_flops,
    count_parameters,
    layer_flops,
    model_flops,
    parameter_bytes,
    profile_model,
)


def torch_flops(torch, fn):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


# PyTorch's counter counts matmuls and convolutions as 2 * multiply-adds, as we do,
# but leaves out the bias additions; we add B * out (Linear) or N * out * Ho * Wo (Conv).

@pytest.mark.parametrize("shape, n_in, n_out", [((4, 3), 3, 5), ((2, 7, 16), 16, 8),
                                                ((32, 64), 64, 10)])
def test_linear_flops_match_pytorch_plus_the_bias(torch, shape, n_in, n_out):
    theirs = torch_flops(torch, lambda: torch.nn.Linear(n_in, n_out)(torch.ones(shape)))
    out_shape, ours = layer_flops(Linear(n_in, n_out), shape)
    bias_adds = int(np.prod(out_shape))
    assert ours == theirs + bias_adds
    assert layer_flops(Linear(n_in, n_out, bias=False), shape)[1] == theirs


@pytest.mark.parametrize("args, shape", [
    (dict(in_channels=3, out_channels=16, kernel_size=3, padding=1), (2, 3, 32, 32)),
    (dict(in_channels=3, out_channels=5, kernel_size=3, stride=2, padding=1), (2, 3, 9, 9)),
    (dict(in_channels=2, out_channels=4, kernel_size=(3, 5)), (5, 2, 6, 7)),
])
def test_conv2d_flops_match_pytorch_plus_the_bias(torch, args, shape):
    theirs = torch_flops(torch, lambda: torch.nn.Conv2d(**args)(torch.ones(shape)))
    out_shape, ours = layer_flops(Conv2d(**args), shape)
    assert ours == theirs + int(np.prod(out_shape))
    assert layer_flops(Conv2d(**args, bias=False), shape)[1] == theirs


@pytest.mark.parametrize("B, T, C, heads", [(2, 10, 32, 4), (1, 7, 24, 3)])
def test_attention_flops_match_pytorch_multihead_attention(torch, B, T, C, heads):
    mha = torch.nn.MultiheadAttention(C, heads, batch_first=True, bias=False)
    x = torch.ones(B, T, C)
    # need_weights=True takes the explicit matmul path PyTorch's counter sees
    theirs = torch_flops(torch, lambda: mha(x, x, x, need_weights=True))
    assert attention_flops(B, T, C, heads, bias=False) == theirs
    q = torch.ones(B, heads, T, C // heads)
    core = torch_flops(torch, lambda: q @ q.transpose(-2, -1) @ q)
    assert attention_flops(B, T, C, heads, projections=False) == core


@pytest.mark.parametrize("ours, theirs", [
    (lambda: Linear(784, 128), lambda t: t.nn.Linear(784, 128)),
    (lambda: Conv2d(3, 16, 5, bias=False), lambda t: t.nn.Conv2d(3, 16, 5, bias=False)),
    (lambda: Sequential(Conv2d(1, 8, 3), ReLU(), Flatten(), Linear(8 * 36, 10)),
     lambda t: t.nn.Sequential(t.nn.Conv2d(1, 8, 3), t.nn.ReLU(), t.nn.Flatten(),
                               t.nn.Linear(8 * 36, 10))),
])
def test_parameter_counts_match_pytorch(torch, ours, theirs):
    expected = sum(p.numel() for p in theirs(torch).parameters())
    assert count_parameters(ours()) == (expected, expected)


def test_count_agrees_with_module_parameters():
    model = Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(8 * 4 * 4, 32), Dropout(0.1), Linear(32, 10))
    assert count_parameters(model).trainable == sum(p.size for p in model.parameters())
    assert parameter_bytes(model) == sum(p.data.nbytes for p in model.parameters())


def test_the_flop_rules_predict_the_real_output_shapes(rng):
    model = Sequential(Conv2d(3, 6, 5, stride=2, padding=2), Tanh(), AvgPool2d(3, 2),
                       Conv2d(6, 4, 1), MaxPool2d(2), Flatten(), Linear(4 * 2 * 2, 7), Softmax())
    x = Tensor(rng.standard_normal((3, 3, 20, 20)))
    shape = x.shape
    for layer in model:
        predicted, _ = layer_flops(layer, shape)
        x = layer(x)
        assert predicted == x.shape, type(layer).__name__
        shape = predicted
    assert shape == (3, 7)


def test_profile_model_runs_the_real_layers_on_a_sample(rng):
    model = Sequential(Linear(6, 4, seed=0), ReLU(), Linear(4, 3, seed=1))
    x = rng.standard_normal((5, 6)).astype(np.float32)
    profile = profile_model(model, x, warmup=0, repeats=2, timer=itertools.count(0, 0.5).__next__)
    assert [row["output_shape"] for row in profile.rows] == [(5, 4), (5, 4), (5, 3)]
    assert [row["flops"] for row in profile.rows] == [2 * 5 * 6 * 4 + 20, 20, 2 * 5 * 4 * 3 + 15]
    assert [row["params"] for row in profile.rows] == [28, 0, 15]
    # every sample of the fake clock lasts 0.5 s: an exact latency column
    assert [row["latency"] for row in profile.rows] == [0.5, 0.5, 0.5]
    assert profile.total_latency == 1.5 and profile.model_latency.median == 0.5
    assert profile.input_shape == (5, 6)
    # the model itself was run on the sample: same output as calling it
    assert profile.model_memory.value.data == pytest.approx(model(Tensor(x)).data, abs=0)
    assert profile.rows[-1]["output_bytes"] == 5 * 3 * 4


def test_profile_model_accepts_a_shape_and_draws_a_seeded_input():
    model = Sequential(Linear(3, 2, seed=0))
    first = profile_model(model, (4, 3), repeats=1, seed=5).model_memory.value.data
    again = profile_model(model, (4, 3), repeats=1, seed=5).model_memory.value.data
    other = profile_model(model, (4, 3), repeats=1, seed=6).model_memory.value.data
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.dtype == np.float32


def test_profile_model_does_not_change_the_model(rng):
    model = Sequential(Linear(4, 4, seed=0), Dropout(0.5, seed=0), Linear(4, 2, seed=1))
    model.eval()
    before = [p.data.copy() for p in model.parameters()]
    profile = profile_model(model, (3, 4), repeats=2)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert not model.training and not model[1].training
    assert profile.total_flops == model_flops(model, (3, 4))
