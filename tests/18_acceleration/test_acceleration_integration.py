"""Module 18 with modules 09 and 14 and against PyTorch: the fast convolutions equal
module 09's Conv2d and torch's conv2d, the fused layer equals Linear + ReLU, and the
measuring goes through module 14's tools."""
import numpy as np
import pytest

from tinytorch.acceleration import (
    compare,
    conv2d_layer,
    conv2d_loops,
    conv2d_tinytorch,
    conv2d_vectorized,
    fused_linear_relu,
    linear_relu,
    matmul_loops,
    tiled_matmul,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import LatencyResult, measure_latency


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1), ((2, 1), (0, 2))])
def test_fast_convolutions_match_pytorch(torch, rng, stride, padding):
    x = rng.standard_normal((2, 3, 9, 8))
    weight, bias = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(weight),
                                        torch.tensor(bias), stride=stride,
                                        padding=padding).numpy()
    for version in (conv2d_loops, conv2d_vectorized):
        got = version(x, weight, bias, stride, padding)
        assert got.shape == theirs.shape
        np.testing.assert_allclose(got, theirs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d_tinytorch(x, weight, bias, stride, padding), theirs,
                               rtol=1e-4, atol=1e-4)


def test_vectorized_conv_reproduces_a_module_09_layer(rng):
    layer = Conv2d(3, 6, 3, stride=2, padding=1, seed=0)
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
    with no_grad():
        expected = layer(Tensor(x)).data
    got = conv2d_vectorized(x, layer.weight.data, layer.bias.data, layer.stride, layer.padding)
    assert got.dtype == np.float32 and got.shape == expected.shape == (4, 6, 5, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_fused_layer_reproduces_linear_then_relu(rng):
    linear = Linear(20, 16, seed=0)
    linear.bias.data[:] = rng.standard_normal(16)
    x = rng.standard_normal((8, 20)).astype(np.float32)
    with no_grad():
        expected = ReLU()(linear(Tensor(x))).data
    for version in (linear_relu, fused_linear_relu):
        got = version(x, linear.weight.data, linear.bias.data)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_matmul_versions_match_pytorch(torch, rng):
    a, b = rng.standard_normal((33, 20)), rng.standard_normal((20, 45))
    theirs = (torch.tensor(a) @ torch.tensor(b)).numpy()
    np.testing.assert_allclose(matmul_loops(a, b), theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tiled_matmul(a, b, tile=8), theirs, rtol=1e-12, atol=1e-12)


def test_compare_returns_module_14_latency_results():
    fake = iter([0, 2, 10, 11, 20, 22, 30, 31]).__next__   # rounds: a 2, b 1, a 2, b 1
    result = compare({"a": lambda: 0, "b": lambda: 0}, warmup=0, repeats=2, timer=fake)
    same = measure_latency(lambda: 0, warmup=0, repeats=2, timer=iter([0, 2, 10, 12]).__next__)
    assert isinstance(result.results["a"], LatencyResult)
    assert result.results["a"] == same
    assert result.speedups["b"] == 2.0


def test_compare_on_tinytorch_models_checks_their_outputs(rng):
    """Two ways to run the same tiny model: its Sequential, and the fused numpy version."""
    linear = Linear(10, 6, seed=1)
    model = Sequential(linear, ReLU())
    x = rng.standard_normal((5, 10)).astype(np.float32)

    def tinytorch_forward():
        with no_grad():
            return model(Tensor(x)).data
    result = compare({"tinytorch": tinytorch_forward,
                      "fused": lambda: fused_linear_relu(x, linear.weight.data, linear.bias.data)},
                     warmup=0, repeats=2, memory=True)
    assert set(result.speedups) == {"tinytorch", "fused"} and result.speedups["tinytorch"] == 1.0
    assert set(result.peak_bytes) == {"tinytorch", "fused"}


def test_conv2d_layer_holds_the_given_filters(rng):
    weight, bias = rng.standard_normal((4, 2, 3, 5)).astype(np.float32), np.arange(4.0)
    layer = conv2d_layer(weight, bias, stride=2, padding=(1, 2))
    assert isinstance(layer, Conv2d)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 5), (2, 2), (1, 2))
    assert np.array_equal(layer.weight.data, weight) and layer.bias.data.tolist() == [0, 1, 2, 3]
    assert layer.weight.requires_grad                     # still a trainable module 09 layer
    assert conv2d_layer(weight).bias is None
