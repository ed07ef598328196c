"""Module 18 on top of 01-05, 09 and 14: what importing it loads, and the earlier
modules still working with it in place."""

import numpy as np

from tinytorch.acceleration import conv2d_vectorized, fused_linear_relu
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck, is_grad_enabled
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d, Flatten
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import count_parameters, model_flops


def test_importing_acceleration_loads_exactly_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.acceleration") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.autograd", "tinytorch.core.spatial", "tinytorch.profiling",
        "tinytorch.acceleration"}


def test_accelerated_versions_leave_the_autograd_model_intact(rng):
    conv, linear = Conv2d(1, 2, 3, padding=1, seed=0), Linear(2 * 4 * 4, 3, seed=0)
    model = Sequential(conv, ReLU(), Flatten(), linear)
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    features = np.maximum(conv2d_vectorized(x, conv.weight.data, conv.bias.data, 1, 1), 0)
    out = features.reshape(2, -1) @ linear.weight.data + linear.bias.data
    np.testing.assert_allclose(out, model(Tensor(x)).data, rtol=1e-5, atol=1e-5)
    assert is_grad_enabled()
    assert gradcheck(lambda *ps: model(Tensor(x)).sum(), model.parameters()) < 1e-5


def test_profiling_counts_the_work_the_fast_versions_do():
    # module 14's formula for Linear: 2*B*in*out + B*out, whichever way it is computed
    linear = Linear(8, 4, seed=0)
    x = np.ones((3, 8), np.float32)
    assert fused_linear_relu(x, linear.weight.data, linear.bias.data).shape == (3, 4)
    assert model_flops(linear, (3, 8)) == 2 * 3 * 8 * 4 + 3 * 4
    assert count_parameters(linear) == (36, 36)
