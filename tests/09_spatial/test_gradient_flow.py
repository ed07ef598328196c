"""Gradients of module 09's layers: finite differences (float64), hand values, PyTorch."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d, im2col
from tinytorch.core.tensor import Tensor


def random_conv(rng, in_c, out_c, kernel, **kwargs):
    conv = Conv2d(in_c, out_c, kernel, seed=0, **kwargs)
    conv.bias.data[...] = rng.standard_normal(out_c)
    return conv


CONV_CASES = [dict(kernel=3, stride=1, padding=1), dict(kernel=3, stride=2, padding=1),
              dict(kernel=(2, 3), stride=(1, 2), padding=(0, 1)), dict(kernel=1, stride=1, padding=0)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradcheck_input(rng, case):
    conv = random_conv(rng, 2, 3, case["kernel"], stride=case["stride"], padding=case["padding"])
    x = Tensor(rng.standard_normal((2, 2, 5, 6)), requires_grad=True)
    assert gradcheck(lambda t: conv(t), [x]) < 1e-5


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradcheck_weight_and_bias(rng, case):
    conv = random_conv(rng, 2, 3, case["kernel"], stride=case["stride"], padding=case["padding"])
    x = Tensor(rng.standard_normal((2, 2, 5, 6)))
    assert gradcheck(lambda *params: conv(x), conv.parameters()) < 1e-5


def test_im2col_gradcheck_with_overlapping_windows_and_padding(rng):
    x = Tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    assert gradcheck(lambda t: im2col(t, 3, stride=1, padding=2), [x]) < 1e-6


@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), ((2, 3), 1)])
def test_pool_gradcheck(rng, pool, kernel, stride):
    x = Tensor(rng.standard_normal((2, 2, 6, 7)), requires_grad=True)   # no ties
    assert gradcheck(lambda t: pool(kernel, stride)(t), [x]) < 1e-6


def test_flatten_gradcheck(rng):
    x = Tensor(rng.standard_normal((3, 2, 2, 2)), requires_grad=True)
    assert gradcheck(lambda t: Flatten()(t) * Tensor(np.arange(8.0)), [x]) < 1e-6


# ---- hand-computed gradients -------------------------------------------------------------------

def test_input_gradient_counts_the_windows_over_each_pixel():
    # d(sum of outputs)/d pixel = how many windows cover it; the zero padding gets none.
    conv = Conv2d(1, 1, 3, padding=1, bias=False)
    conv.weight.data[...] = 1.0
    x = Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    conv(x).sum().backward()
    assert x.grad.data[0, 0].tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    # d/dweight[i, j] = sum of the pixels the tap (i, j) reads over all positions.
    assert conv.weight.grad.data[0, 0].tolist() == [[9, 12, 9], [12, 16, 12], [9, 12, 9]]


def test_bias_gradient_is_the_number_of_output_positions():
    conv = Conv2d(2, 3, 3, stride=2, seed=0)
    out = conv(Tensor(np.ones((4, 2, 7, 7))))
    out.sum().backward()
    assert conv.bias.grad.data.tolist() == [4 * 3 * 3] * 3          # batch 4, 3x3 outputs


def test_maxpool_gradient_goes_to_the_window_maximum():
    x = Tensor(np.array([[1.0, 2.0, 5.0, 6.0],
                         [3.0, 4.0, 7.0, 8.0],
                         [-1.0, -2.0, 0.5, 0.0],
                         [-3.0, -4.0, 0.0, 9.0]])[None, None], requires_grad=True)
    MaxPool2d(2)(x).sum().backward()
    assert x.grad.data[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1]]


def test_overlapping_maxpool_windows_add_their_gradients():
    x = Tensor(np.array([[0.0, 0.1, 0.2], [0.3, 5.0, 0.4], [0.5, 0.6, 0.7]])[None, None],
               requires_grad=True)
    MaxPool2d(2, stride=1)(x).sum().backward()                # the centre wins all 4 windows
    assert x.grad.data[0, 0].tolist() == [[0, 0, 0], [0, 4, 0], [0, 0, 0]]


def test_avgpool_gradient_is_one_over_the_window_size():
    x = Tensor(np.zeros((1, 1, 4, 5)), requires_grad=True)
    AvgPool2d(2)(x).sum().backward()                          # column 4 is in no window
    expected = np.full((4, 5), 0.25)
    expected[:, 4] = 0.0
    assert np.array_equal(x.grad.data[0, 0], expected)


# ---- PyTorch as the oracle ---------------------------------------------------------------------

@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv2d_gradients_match_pytorch(torch, rng, stride, padding):
    conv = random_conv(rng, 3, 4, 3, stride=stride, padding=padding)
    x_np = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    x = Tensor(x_np, requires_grad=True)
    out = conv(x)
    upstream = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)

    tx = torch.tensor(x_np, requires_grad=True)
    tw = torch.tensor(conv.weight.data, requires_grad=True)
    tb = torch.tensor(conv.bias.data, requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    tout.backward(torch.tensor(upstream))
    for ours, theirs in ((x, tx), (conv.weight, tw), (conv.bias, tb)):
        assert ours.grad.shape == tuple(theirs.grad.shape)
        assert np.allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (3, 1)])
def test_pool_gradients_match_pytorch(torch, rng, kernel, stride):
    x_np = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    for ours_cls, theirs_fn in ((MaxPool2d, torch.nn.functional.max_pool2d),
                                (AvgPool2d, torch.nn.functional.avg_pool2d)):
        x = Tensor(x_np, requires_grad=True)
        out = ours_cls(kernel, stride)(x)
        upstream = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(upstream)
        tx = torch.tensor(x_np, requires_grad=True)
        theirs_fn(tx, kernel, stride).backward(torch.tensor(upstream))
        assert np.allclose(x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---- every parameter of a CNN gets its gradient --------------------------------------------------

def test_every_cnn_parameter_receives_a_nonzero_gradient(rng):
    model = Sequential(Conv2d(1, 4, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                       Conv2d(4, 6, 3, padding=1, seed=1), ReLU(), AvgPool2d(2), Flatten(),
                       Linear(6 * 2 * 2, 3, seed=2))
    x = Tensor(rng.random((5, 1, 8, 8)))
    (model(x) * Tensor(rng.standard_normal((5, 3)))).sum().backward()
    params = model.parameters()
    assert len(params) == 6
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32
        assert np.abs(p.grad.data).sum() > 0


def test_whole_cnn_gradcheck(rng):
    model = Sequential(Conv2d(1, 2, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(2 * 2 * 2, 2, seed=1))
    x = Tensor(rng.standard_normal((2, 1, 4, 4)))
    assert gradcheck(lambda *ps: model(x), model.parameters()) < 1e-5
