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
              dict(kernel=(2, 3), stride=(1, 2), padding=(0, 1)),
              dict(kernel=1, stride=1, padding=0)]


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


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_gradcheck_all_inputs_with_stride_and_padding(rng, bias):
    # Image, filters and bias at once, in float64, with unequal strides and paddings
    # (stride 2 skips pixels, padding 2 is as wide as the kernel's reach).
    conv = Conv2d(3, 2, (3, 2), stride=(2, 3), padding=(2, 1), bias=bias, seed=0)
    conv.weight.data = rng.standard_normal(conv.weight.shape)
    if bias:
        conv.bias.data = rng.standard_normal(2)
    x = Tensor(rng.standard_normal((2, 3, 7, 8)), requires_grad=True)
    assert conv(x).dtype == np.float64
    assert gradcheck(lambda *ts: conv(x), [x, *conv.parameters()]) < 1e-6


@pytest.mark.parametrize("stride, padding", [(1, 2), (2, 1), ((2, 1), (0, 2))])
def test_im2col_gradcheck_with_overlapping_windows_and_padding(rng, stride, padding):
    x = Tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True)
    assert gradcheck(lambda t: im2col(t, 3, stride=stride, padding=padding), [x]) < 1e-6


def test_backward_twice_through_the_same_graph_adds_the_same_gradients(rng):
    # conv2d's rule keeps its columns and uses a shared work array only inside the
    # rule: another layer's backward in between must not change the second pass.
    conv = random_conv(rng, 2, 3, 3, stride=2, padding=1)
    other = random_conv(rng, 4, 5, 3, padding=1)
    x = Tensor(rng.standard_normal((3, 2, 9, 9)), requires_grad=True)
    out = conv(x)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    first = [t.grad.data.copy() for t in (x, conv.weight, conv.bias)]
    other(Tensor(rng.standard_normal((6, 4, 12, 12)), requires_grad=True)).sum().backward()
    out.backward(upstream)
    for t, grad in zip((x, conv.weight, conv.bias), first):
        assert np.allclose(t.grad.data, 2 * grad, rtol=1e-6, atol=1e-6)


def test_only_the_parents_that_require_grad_get_a_gradient(torch, rng):
    conv = random_conv(rng, 2, 3, 3, padding=1)
    conv.weight.requires_grad = False                         # frozen filters
    x_np = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    x = Tensor(x_np, requires_grad=True)
    conv(x).sum().backward()
    assert conv.weight.grad is None and conv.bias.grad.data.tolist() == [50.0] * 3
    tx = torch.tensor(x_np, requires_grad=True)
    torch.nn.functional.conv2d(tx, torch.tensor(conv.weight.data), padding=1).sum().backward()
    assert np.allclose(x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    conv.weight.requires_grad = True
    images = Tensor(x_np)                                     # a first layer's input: no grad
    conv(images).sum().backward()
    assert images.grad is None and conv.weight.grad.shape == (3, 2, 3, 3)


def test_mixed_float_dtypes_compute_in_the_widest_and_keep_each_grad_dtype(rng):
    conv = random_conv(rng, 2, 3, 3)                          # float32 parameters
    x = Tensor(rng.standard_normal((2, 2, 5, 5)), dtype=np.float64, requires_grad=True)
    out = conv(x)
    assert out.dtype == np.float64
    out.sum().backward()
    assert x.grad.dtype == np.float64
    assert conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32


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


@pytest.mark.parametrize("window", [[[1.0, 1.0], [0.0, 1.0]], [[0.0, 2.0], [2.0, 2.0]],
                                    [[3.0, 3.0], [3.0, 3.0]]])
def test_tied_maxima_give_the_whole_gradient_to_the_first_as_pytorch(torch, window):
    x = Tensor(np.array(window)[None, None], requires_grad=True)
    MaxPool2d(2)(x).sum().backward()
    first = np.zeros(4)
    first[np.argmax(np.array(window).ravel())] = 1.0          # the first maximum, reading order
    assert x.grad.data[0, 0].ravel().tolist() == first.tolist()   # not 1/3 each on [[1,1],[0,1]]
    tx = torch.tensor(window, requires_grad=True)
    torch.nn.functional.max_pool2d(tx[None, None], 2).sum().backward()
    assert x.grad.data[0, 0].tolist() == tx.grad.tolist()


def test_tied_maxima_in_overlapping_windows_match_pytorch(torch):
    x_np = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [2.0, 2.0, 2.0]], dtype=np.float32)
    x = Tensor(x_np[None, None], requires_grad=True)
    MaxPool2d(2, stride=1)(x).sum().backward()
    tx = torch.tensor(x_np[None, None], requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2, stride=1).sum().backward()
    assert x.grad.data.tolist() == tx.grad.tolist()


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


@pytest.mark.parametrize("changed", ["x", "weight", "bias"])
def test_conv2d_refuses_backward_after_an_in_place_change_exactly_as_pytorch(torch, changed):
    from tinytorch.core.autograd import no_grad
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    conv = Conv2d(2, 3, 3, seed=0)
    x = Tensor(x_np, requires_grad=True)
    out = conv(x).sum()
    tx = torch.tensor(x_np, requires_grad=True)
    tconv = torch.nn.Conv2d(2, 3, 3)
    tout = tconv(tx).sum()
    with no_grad(), torch.no_grad():
        {"x": x, "weight": conv.weight, "bias": conv.bias}[changed].mul_(2)
        {"x": tx, "weight": tconv.weight, "bias": tconv.bias}[changed].mul_(2)
    try:
        tout.backward()
        torch_raised = False
    except RuntimeError:
        torch_raised = True
    if torch_raised:
        with pytest.raises(RuntimeError, match="backward of 'conv2d'.*inplace operation"):
            out.backward()
    else:
        out.backward()
        assert conv.bias.grad.data.tolist() == tconv.bias.grad.tolist()
    assert torch_raised == (changed != "bias")
