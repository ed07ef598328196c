"""Core behaviour of module 09: Conv2d, MaxPool2d, AvgPool2d, Flatten, im2col."""
import inspect
import tracemalloc

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Module
from tinytorch.core.spatial import (
    AvgPool2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    im2col,
    output_size,
    window_indices,
)
from tinytorch.core.tensor import Tensor

API = ["Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "im2col", "output_size"]


def random_conv(rng, in_c, out_c, kernel, bias=True, **kwargs):
    """A Conv2d with random weights and (if any) random, non-zero biases."""
    conv = Conv2d(in_c, out_c, kernel, bias=bias, seed=0, **kwargs)
    conv.weight.data[...] = rng.standard_normal(conv.weight.shape)
    if bias:
        conv.bias.data[...] = rng.standard_normal(out_c)
    return conv


# ---- Conv2d: hand-computed, naive loops, PyTorch ------------------------------------------

def test_summing_filter_counts_the_pixels_under_each_window():
    conv = Conv2d(1, 1, 3, padding=1, bias=False)
    conv.weight.data[...] = 1.0
    out = conv(Tensor(np.ones((1, 1, 4, 4))))
    assert out.data[0, 0].tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]


def test_hand_computed_two_channel_convolution_with_bias():
    # channel 0 is 1..9, channel 1 is all 10; the filter picks ch0's top-left and
    # subtracts ch1's bottom-right, plus bias 0.5.
    x = np.stack([np.arange(1.0, 10.0).reshape(3, 3), np.full((3, 3), 10.0)])[None]
    conv = Conv2d(2, 1, 2)
    conv.weight.data[...] = 0.0
    conv.weight.data[0, 0, 0, 0] = 1.0
    conv.weight.data[0, 1, 1, 1] = -1.0
    conv.bias.data[...] = 0.5
    assert conv(Tensor(x)).data[0, 0].tolist() == [[1 - 10 + 0.5, 2 - 10 + 0.5],
                                                   [4 - 10 + 0.5, 5 - 10 + 0.5]]


@pytest.mark.parametrize("in_c, out_c, kernel, stride, padding, size", [
    (1, 1, 3, 1, 0, (5, 5)),
    (3, 4, 3, 1, 1, (6, 7)),
    (2, 5, (2, 3), (2, 1), (1, 0), (7, 6)),
    (4, 2, 5, 2, 2, (9, 9)),
    (2, 3, 1, 1, 0, (4, 5)),
])
def test_conv2d_matches_naive_loops(rng, reference, in_c, out_c, kernel, stride, padding, size):
    conv = random_conv(rng, in_c, out_c, kernel, stride=stride, padding=padding)
    x = rng.standard_normal((2, in_c, *size)).astype(np.float32)
    expected = reference.conv2d(x, conv.weight.data, conv.bias.data, conv.stride, conv.padding)
    out = conv(Tensor(x))
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert np.allclose(out.data, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_c, out_c, kernel, stride, padding, bias", [
    (3, 8, 3, 1, 1, True),
    (3, 8, 3, 2, 1, True),
    (1, 4, 5, 1, 2, False),
    (2, 6, (3, 2), (1, 2), (0, 1), True),
    (8, 3, 1, 1, 0, True),
    (2, 2, 4, 3, 0, True),
])
def test_conv2d_matches_pytorch(torch, rng, in_c, out_c, kernel, stride, padding, bias):
    conv = random_conv(rng, in_c, out_c, kernel, bias=bias, stride=stride, padding=padding)
    x = rng.standard_normal((4, in_c, 11, 10)).astype(np.float32)
    expected = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(conv.weight.data),
        torch.tensor(conv.bias.data) if bias else None, stride=stride, padding=padding)
    out = conv(Tensor(x))
    assert out.shape == tuple(expected.shape)
    assert np.allclose(out.data, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_im2col_columns_are_the_windows(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    cols = im2col(Tensor(x), 3, stride=1, padding=1)           # (2, 27, 4*5)
    assert cols.shape == (2, 27, 20)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for b, i, j in [(0, 0, 0), (1, 2, 3), (0, 3, 4), (1, 0, 4)]:
        window = padded[b, :, i:i + 3, j:j + 3].reshape(27)    # channel, row, column order
        assert np.array_equal(cols.data[b, :, i * 5 + j], window)


def test_default_initialisation_is_seeded_kaiming_uniform():
    conv = Conv2d(3, 16, 5, seed=0)
    bound = np.sqrt(6 / (3 * 5 * 5))
    assert conv.weight.dtype == np.float32 and conv.weight.requires_grad
    assert -bound <= conv.weight.data.min() and conv.weight.data.max() <= bound
    assert conv.weight.data.max() > 0.9 * bound and conv.weight.data.min() < -0.9 * bound
    assert np.array_equal(conv.weight.data, Conv2d(3, 16, 5, seed=0).weight.data)
    assert not np.array_equal(conv.weight.data, Conv2d(3, 16, 5, seed=1).weight.data)
    assert conv.bias.data.tolist() == [0.0] * 16 and conv.bias.requires_grad


# ---- pooling and flatten ------------------------------------------------------------------

def test_maxpool_and_avgpool_hand_computed():
    x = Tensor(np.array([[1.0, 2.0, 5.0, 6.0],
                         [3.0, 4.0, 7.0, 8.0],
                         [-1.0, -2.0, 0.0, 0.0],
                         [-3.0, -4.0, 0.0, 9.0]])[None, None])
    assert MaxPool2d(2)(x).data[0, 0].tolist() == [[4, 8], [-1, 9]]
    assert AvgPool2d(2)(x).data[0, 0].tolist() == [[2.5, 6.5], [-2.5, 2.25]]
    assert MaxPool2d(3, stride=1)(x).data[0, 0].tolist() == [[7, 8], [7, 9]]


@pytest.mark.parametrize("pool, reduce", [(MaxPool2d, np.max), (AvgPool2d, np.mean)])
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 3)])
def test_pools_match_naive_loops(rng, reference, pool, reduce, kernel, stride):
    layer = pool(kernel, stride)
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    expected = reference.pool2d(x, layer.kernel_size, layer.stride, reduce)
    assert np.allclose(layer(Tensor(x)).data, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (3, 1), ((2, 3), (2, 1))])
def test_pools_match_pytorch(torch, rng, kernel, stride):
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    tx = torch.tensor(x)
    expected_max = torch.nn.functional.max_pool2d(tx, kernel, stride)
    expected_avg = torch.nn.functional.avg_pool2d(tx, kernel, stride)
    ours_max, ours_avg = MaxPool2d(kernel, stride)(Tensor(x)), AvgPool2d(kernel, stride)(Tensor(x))
    assert ours_max.shape == tuple(expected_max.shape)
    assert np.array_equal(ours_max.data, expected_max.numpy())
    assert np.allclose(ours_avg.data, expected_avg.numpy(), rtol=1e-6, atol=1e-6)


def test_flatten_keeps_the_batch_axis_in_row_major_order():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    out = Flatten()(Tensor(x))
    assert out.shape == (2, 12) and np.array_equal(out.data, x.reshape(2, 12))


# ---- shapes -------------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("h, w, kernel, stride, padding", [
    (32, 32, 3, 1, 1), (32, 32, 5, 1, 0), (28, 28, 3, 2, 1), (7, 9, (3, 1), (2, 3), (0, 2)),
    (8, 8, 8, 1, 0), (5, 5, 2, 3, 0)])
def test_conv_output_shape_formula(h, w, kernel, stride, padding):
    conv = Conv2d(3, 6, kernel, stride=stride, padding=padding, seed=0)
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    expected = (2, 6, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    assert conv(Tensor(np.zeros((2, 3, h, w)))).shape == expected
    assert conv.output_shape(h, w) == expected[2:]
    assert output_size(h, kh, sh, ph) == expected[2]


@pytest.mark.shape
def test_parameter_shapes_follow_pytorch_layout():
    conv = Conv2d(3, 16, (5, 3))
    assert conv.weight.shape == (16, 3, 5, 3) and conv.bias.shape == (16,)
    assert Conv2d(3, 16, 3, bias=False).parameters()[0].shape == (16, 3, 3, 3)


@pytest.mark.shape
@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
def test_pool_output_shapes(pool):
    x = Tensor(np.zeros((4, 5, 9, 7)))
    assert pool(2)(x).shape == (4, 5, 4, 3)                 # the odd last row/column is dropped
    assert pool(3, stride=1)(x).shape == (4, 5, 7, 5)
    assert pool((3, 1), stride=(3, 2))(x).shape == (4, 5, 3, 4)


@pytest.mark.shape
def test_cnn_shapes_chain_into_a_linear_layer():
    x = Tensor(np.zeros((5, 1, 8, 8)))
    h = Conv2d(1, 8, 3, padding=1)(x)
    assert h.shape == (5, 8, 8, 8)
    h = MaxPool2d(2)(h)
    assert h.shape == (5, 8, 4, 4)
    assert Flatten()(h).shape == (5, 128)


# ---- memory: im2col working set -------------------------------------------------------------

def traced_peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.memory_performance
def test_forward_memory_is_a_small_multiple_of_the_im2col_matrix(rng):
    conv = Conv2d(3, 16, 3, padding=1, seed=0)
    x = Tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32), requires_grad=True)
    conv(x)
    im2col_bytes = 32 * (3 * 3 * 3) * (32 * 32) * 4          # (N, C*kh*kw, Ho*Wo) float32: 3.4 MiB
    # The columns (kept for backward with a graph), the output (0.6x) and the
    # padded images (0.1x): about 1.6x the im2col matrix, with or without a graph.
    peak = traced_peak(lambda: conv(x))
    assert peak < 2 * im2col_bytes, f"forward peak {peak / im2col_bytes:.2f}x the im2col matrix"
    with no_grad():
        peak = traced_peak(lambda: conv(x))
    assert peak < 2 * im2col_bytes, f"no_grad peak {peak / im2col_bytes:.2f}x the im2col matrix"


@pytest.mark.memory_performance
def test_backward_memory_is_a_small_multiple_of_the_im2col_matrix(rng):
    conv = Conv2d(3, 16, 3, padding=1, seed=0)
    x = Tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32), requires_grad=True)
    im2col_bytes = 32 * 27 * 1024 * 4
    out = conv(x)
    peak = traced_peak(lambda: out.sum().backward())
    assert x.grad.shape == x.shape
    # At most: the column gradients (1x, in the work array, if it is not yet that
    # large), the padded input gradient and its copy into x.grad (0.1x each).
    assert peak < 2.5 * im2col_bytes, f"backward peak {peak / im2col_bytes:.2f}x the im2col matrix"
    # The work array is reused: a second backward allocates no new column gradients.
    out = conv(x)
    peak = traced_peak(lambda: out.sum().backward())
    assert peak < 0.5 * im2col_bytes, f"second backward peak {peak / im2col_bytes:.2f}x"


@pytest.mark.memory_performance
def test_window_indices_are_computed_once_per_shape():
    window_indices.cache_clear()
    for _ in range(4):                                        # e.g. four batches of one layer
        index, inside = window_indices(2, 6, 6, (3, 3), (1, 1), (1, 1))
    info = window_indices.cache_info()
    assert (info.misses, info.hits) == (1, 3)
    assert index.shape == inside.shape == (2 * 3 * 3, 6 * 6)
    assert not index.flags.writeable                          # the cached arrays are shared


# ---- API ------------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.core.spatial", API)
    for name in ("Conv2d", "MaxPool2d", "AvgPool2d", "Flatten"):
        assert issubclass(found[name], Module)


@pytest.mark.api_consistency
def test_constructor_signatures_follow_pytorch():
    conv = inspect.signature(Conv2d).parameters
    assert list(conv) == ["in_channels", "out_channels", "kernel_size", "stride", "padding",
                          "bias", "seed"]
    assert [conv[n].default for n in ("stride", "padding", "bias", "seed")] == [1, 0, True, None]
    for pool in (MaxPool2d, AvgPool2d):
        params = inspect.signature(pool).parameters
        assert list(params) == ["kernel_size", "stride"] and params["stride"].default is None


@pytest.mark.api_consistency
def test_layers_behave_like_modules():
    conv = Conv2d(2, 3, 3)
    assert conv.parameters() == [conv.weight, conv.bias]
    assert Conv2d(2, 3, 3, bias=False).parameters()[0].shape == (3, 2, 3, 3)
    assert MaxPool2d(2).parameters() == [] and Flatten().parameters() == []
    assert MaxPool2d(2).stride == (2, 2) and AvgPool2d(3, 1).stride == (1, 1)
    assert repr(conv) == ("Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), "
                          "bias=True)")
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))"


@pytest.mark.api_consistency
def test_weights_load_into_pytorch_unchanged(torch, rng):
    ours = random_conv(rng, 3, 5, 3, stride=2, padding=1)
    theirs = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    assert np.allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                       rtol=1e-5, atol=1e-5)
