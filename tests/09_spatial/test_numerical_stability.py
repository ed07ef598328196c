"""Numerical behaviour of module 09: large and tiny values, cancellation, NaN locality."""
import numpy as np
import pytest

from tinytorch.core.spatial import AvgPool2d, Conv2d, MaxPool2d
from tinytorch.core.tensor import Tensor


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e15, 1e30])
def test_conv_is_accurate_and_finite_across_scales(reference, rng, scale):
    conv = Conv2d(3, 4, 3, padding=1, seed=0)
    x = (rng.standard_normal((2, 3, 6, 6)) * scale).astype(np.float32)
    out = conv(Tensor(x))
    assert np.isfinite(out.data).all()
    expected = reference.conv2d(x, conv.weight.data, None, (1, 1), (1, 1))
    # float32 error is relative to the size of the terms summed, not of the result
    terms = reference.conv2d(np.abs(x), np.abs(conv.weight.data), None, (1, 1), (1, 1))
    assert np.all(np.abs(out.data - expected) <= 1e-6 * terms + 1e-45)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_conv_gradients_stay_finite_for_extreme_inputs(rng, scale):
    conv = Conv2d(2, 3, 3, stride=2, padding=1, seed=0)
    x = Tensor((rng.standard_normal((2, 2, 7, 7)) * scale).astype(np.float32), requires_grad=True)
    conv(x).sum().backward()
    for grad in (x.grad, conv.weight.grad, conv.bias.grad):
        assert np.isfinite(grad.data).all()
    # d(sum)/dx does not depend on x: the same for any scale
    x_unit = Tensor(np.ones((2, 2, 7, 7), dtype=np.float32), requires_grad=True)
    conv.zero_grad()
    conv(x_unit).sum().backward()
    assert np.array_equal(x.grad.data, x_unit.grad.data)


def test_maxpool_is_exact_for_huge_and_tiny_values(rng):
    x = (rng.uniform(-1, 1, (2, 3, 6, 6)) * 3e38).astype(np.float32)   # near float32's max
    out = MaxPool2d(2)(Tensor(x))
    assert np.array_equal(out.data, x.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)))
    tiny = np.full((1, 1, 2, 2), 1e-45, dtype=np.float32)      # the smallest subnormal
    assert MaxPool2d(2)(Tensor(tiny)).data.item() == np.float32(1e-45)


def test_avgpool_of_large_values_stays_finite_and_accurate(rng):
    x = (rng.random((2, 2, 6, 6)) * 1e37).astype(np.float32)   # a 2x2 sum is < float32 max
    out = AvgPool2d(2)(Tensor(x))
    expected = x.astype(np.float64).reshape(2, 2, 3, 2, 3, 2).mean(axis=(3, 5))
    assert np.isfinite(out.data).all()
    assert np.allclose(out.data, expected, rtol=1e-6)


def test_cancelling_filter_on_a_constant_image_is_exactly_zero():
    conv = Conv2d(1, 1, 3, bias=False)
    conv.weight.data[0, 0] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]   # Sobel: no vertical change
    out = conv(Tensor(np.full((1, 1, 5, 5), 1e20)))
    assert np.array_equal(out.data, np.zeros((1, 1, 3, 3)))


def test_nan_stays_in_the_windows_that_read_it(torch):
    x = np.zeros((1, 1, 6, 6), dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    conv = Conv2d(1, 1, 3, padding=1, seed=0)
    ours = np.isnan(conv(Tensor(x)).data)
    theirs = torch.isnan(torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(conv.weight.data), padding=1)).numpy()
    assert np.array_equal(ours, theirs) and ours.sum() == 4    # outputs (0..1, 0..1)
    pooled = np.isnan(MaxPool2d(2)(Tensor(x)).data)
    assert pooled.sum() == 1 and pooled[0, 0, 0, 0]


def test_inf_next_to_the_zero_padding_matches_pytorch(torch):
    # The padding is real zeros, so an inf pixel on the border gives +-inf (not
    # nan) wherever PyTorch does.
    x = np.zeros((1, 1, 5, 5), dtype=np.float32)
    x[0, 0, 0, 2] = np.inf
    conv = Conv2d(1, 1, 3, padding=1, bias=False)
    conv.weight.data[...] = 1.0
    ours = conv(Tensor(x)).data
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.ones(1, 1, 3, 3), padding=1).numpy()
    assert np.array_equal(np.isposinf(ours), np.isposinf(theirs)) and np.isposinf(ours).sum() == 6
    assert not np.isnan(ours).any()
