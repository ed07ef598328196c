"""Module 18 on real workloads: the digits CNN's convolution and an MLP's layers run by
the fast versions give the model's outputs, each technique's compare_* runs end to end
(results checked, timings reported but never asserted), and fusion saves measured memory
on a whole MLP forward pass."""
import numpy as np
import pytest

from tinytorch.acceleration import (
    compare_conv2d,
    compare_fusion,
    compare_layout,
    compare_matmul,
    compare_relu,
    compare_tiling,
    conv2d_vectorized,
    fused_linear_relu,
    linear_relu,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import memory_of


def test_digits_cnn_with_a_vectorized_convolution(rng):
    """The digits CNN of module 09 (1x8x8 images), its convolution replaced by the
    sliding-window version: the same logits."""
    conv, linear = Conv2d(1, 8, 3, padding=1, seed=0), Linear(8 * 4 * 4, 10, seed=1)
    model = Sequential(conv, ReLU(), MaxPool2d(2), Flatten(), linear)
    images = rng.random((64, 1, 8, 8)).astype(np.float32)
    with no_grad():
        expected = model(Tensor(images)).data
        features = conv2d_vectorized(images, conv.weight.data, conv.bias.data, 1, 1)
        rest = Sequential(ReLU(), MaxPool2d(2), Flatten(), linear)
        got = rest(Tensor(features)).data
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert got.argmax(axis=1).tolist() == expected.argmax(axis=1).tolist()


def mlp_and_fused(rng, sizes=(64, 256, 256, 10)):
    layers = [Linear(n_in, n_out, seed=i) for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]))]
    for layer in layers:
        layer.bias.data[:] = 0.1 * rng.standard_normal(layer.out_features)
    model = Sequential(layers[0], ReLU(), layers[1], ReLU(), layers[2])
    buffers = {}

    def fused_forward(x):
        for i, layer in enumerate(layers[:-1]):   # hidden layers: fused, buffers reused
            shape = (x.shape[0], layer.out_features)
            if buffers.get(i) is None or buffers[i].shape != shape:
                buffers[i] = np.empty(shape, np.float32)
            x = fused_linear_relu(x, layer.weight.data, layer.bias.data, out=buffers[i])
        return x @ layers[-1].weight.data + layers[-1].bias.data

    def unfused_forward(x):
        for layer in layers[:-1]:
            x = linear_relu(x, layer.weight.data, layer.bias.data)
        return x @ layers[-1].weight.data + layers[-1].bias.data
    return model, fused_forward, unfused_forward


def test_fused_mlp_gives_the_model_outputs(rng):
    model, fused_forward, unfused_forward = mlp_and_fused(rng)
    x = rng.standard_normal((128, 64)).astype(np.float32)
    with no_grad():
        expected = model(Tensor(x)).data
    np.testing.assert_allclose(fused_forward(x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(unfused_forward(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.memory_performance
def test_fused_mlp_forward_needs_less_memory(rng):
    model, fused_forward, unfused_forward = mlp_and_fused(rng)
    x = rng.standard_normal((512, 64)).astype(np.float32)
    fused_forward(x)                                    # buffers allocated once, then reused
    hidden = 512 * 256 * 4                              # one hidden activation: 512 KiB
    unfused = memory_of(unfused_forward, x).peak_bytes
    fused = memory_of(fused_forward, x).peak_bytes
    with no_grad():
        tinytorch = memory_of(model, Tensor(x)).peak_bytes
    assert unfused >= 2 * hidden                        # x @ W + b next to x @ W, per layer
    assert fused <= 0.25 * hidden                       # the logits (20 KiB) and small buffers
    assert tinytorch >= 2 * hidden


@pytest.mark.parametrize("run, names", [
    (lambda **t: compare_matmul(n=16, **t), ["loops", "row loop", "numpy @"]),
    (lambda **t: compare_relu(size=500, **t), ["loops", "numpy"]),
    (lambda **t: compare_conv2d(batch=2, **t), ["loops", "sliding windows", "tinytorch Conv2d"]),
    (lambda **t: compare_tiling(n=24, tile=8, loops=True, **t),
     ["tiled loops", "tiled numpy", "numpy @"]),
    (lambda **t: compare_fusion(batch=8, in_features=16, out_features=8, **t),
     ["unfused", "fused", "fused, reused buffer"]),
    (lambda **t: compare_layout(rows=20, cols=30, **t),
     ["F order", "C order", "F -> ascontiguousarray"]),
])
def test_every_technique_runs_end_to_end(run, names):
    """Results are checked inside compare(); the times are real, so only their structure
    is asserted here (timing thresholds belong in bench/acceleration.py)."""
    result = run(warmup=0, repeats=2)
    assert list(result.results) == names and result.baseline == names[0]
    assert result.speedups[names[0]] == 1.0
    assert all(s > 0 for s in result.speedups.values())
    table = result.table().splitlines()
    assert [line.split()[0] for line in table[2:]] == [name.split()[0] for name in names]
