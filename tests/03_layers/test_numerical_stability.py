"""Numerical behaviour of module 03: large and tiny inputs stay finite and accurate,
float32 results agree with a float64 reference, and initialisation keeps signals
at a stable scale through depth."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.tensor import Tensor


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e6, 1e12])
def test_linear_float32_agrees_with_float64_reference(rng, scale):
    layer = Linear(64, 16, seed=0)
    layer.bias.data[...] = rng.normal(size=16)
    x = (rng.normal(size=(32, 64)) * scale).astype(np.float32)
    y = layer(Tensor(x)).data
    reference = x.astype(np.float64) @ layer.weight.data.astype(np.float64) + layer.bias.data
    assert np.isfinite(y).all()
    # Error of a 64-term float32 dot product, relative to the size of its terms.
    magnitude = np.abs(x).astype(np.float64) @ np.abs(layer.weight.data) + np.abs(layer.bias.data)
    assert (np.abs(y - reference) <= 1e-5 * magnitude).all()


def test_mlp_with_huge_inputs_stays_finite(rng):
    model = Sequential(Linear(10, 32, init="kaiming", seed=0), ReLU(),
                       Linear(32, 32, init="kaiming", seed=1), ReLU(), Linear(32, 1, seed=2))
    y = model(Tensor(rng.normal(size=(16, 10)) * 1e8)).data
    assert np.isfinite(y).all() and np.abs(y).max() > 1e6   # large, but no overflow


def test_float64_layer_input_is_exact_to_float64_precision(rng):
    layer = Linear(50, 5, seed=0)
    x = rng.normal(size=(20, 50))
    y = layer(Tensor(x, dtype=np.float64)).data
    np.testing.assert_allclose(y, x @ layer.weight.data.astype(np.float64), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("p", [0.1, 0.9])
def test_dropout_scaling_is_finite_and_exact_in_float32(p):
    x = Tensor(np.full(10_000, 3e38, dtype=np.float32) / 1e3)   # near float32's upper end / 1e3
    out = Dropout(p, seed=0)(x).data
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[out != 0], 3e35 / (1 - p), rtol=1e-6)


def test_kaiming_keeps_relu_signal_scale_through_depth(rng):
    """With Kaiming init the mean square of ReLU activations stays near its input
    value across 10 layers; with Xavier it halves at each layer."""
    def mean_square_after(init):
        layers = []
        for i in range(10):
            layers += [Linear(256, 256, init=init, seed=i), ReLU()]
        x = Tensor(rng.normal(size=(512, 256)))
        return np.mean(Sequential(layers)(x).data.astype(np.float64) ** 2)

    kaiming, xavier = mean_square_after("kaiming"), mean_square_after("xavier")
    # One ReLU layer maps E[x^2]=1 to 1 under Kaiming; the estimate drifts by tens of percent.
    assert 0.3 < kaiming < 3.0
    assert xavier < 0.01                             # (1/2)^10 ~ 0.001: the signal fades
