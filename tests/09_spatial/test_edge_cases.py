"""Edge cases of module 09: kernels that do not fit, odd strides, 1x1 kernels, bad arguments."""
import numpy as np
import pytest

from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d, im2col
from tinytorch.core.tensor import Tensor

# ---- kernels and images of awkward sizes -------------------------------------------------

def test_kernel_larger_than_the_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Conv2d: kernel 5x5 is larger than the 4x4 input "
                                         r"\(padded to 4x4\)"):
        Conv2d(1, 1, 5)(Tensor(np.zeros((1, 1, 4, 4))))
    with pytest.raises(ValueError, match=r"kernel 7x7 is larger than the 4x6 input "
                                         r"\(padded to 6x8\)"):
        Conv2d(1, 1, 7, padding=1)(Tensor(np.zeros((1, 1, 4, 6))))
    for pool in (MaxPool2d, AvgPool2d):
        with pytest.raises(ValueError, match=f"{pool.__name__}: kernel 3x3 is larger than the 2x5"):
            pool(3)(Tensor(np.zeros((1, 1, 2, 5))))


def test_kernel_that_fits_only_thanks_to_padding(reference, rng):
    conv = Conv2d(1, 2, 5, padding=1, seed=0)                 # 3x3 image padded to 5x5
    x = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    out = conv(Tensor(x))
    assert out.shape == (1, 2, 1, 1)
    expected = reference.conv2d(x, conv.weight.data, conv.bias.data, (1, 1), (1, 1))
    assert np.allclose(out.data, expected, atol=1e-5)


def test_kernel_as_large_as_the_image_is_a_dense_layer(rng):
    conv = Conv2d(2, 3, (4, 5), seed=0)
    x = rng.standard_normal((6, 2, 4, 5)).astype(np.float32)
    out = conv(Tensor(x))
    assert out.shape == (6, 3, 1, 1)
    dense = x.reshape(6, -1) @ conv.weight.data.reshape(3, -1).T
    assert np.allclose(out.data[:, :, 0, 0], dense, atol=1e-5)


def test_stride_larger_than_the_kernel_skips_pixels(reference, rng, torch):
    conv = Conv2d(2, 2, 2, stride=3, seed=0)
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    out = conv(Tensor(x))
    assert out.shape == (2, 2, 3, 3)                           # rows 0-1, 3-4, 6-7
    expected = reference.conv2d(x, conv.weight.data, conv.bias.data, (3, 3), (0, 0))
    assert np.allclose(out.data, expected, atol=1e-5)
    x_skipped = x.copy()
    x_skipped[:, :, 2::3, :] = 1e3                             # rows no window reads
    x_skipped[:, :, :, 2::3] = 1e3
    assert np.array_equal(conv(Tensor(x_skipped)).data, out.data)
    pooled = MaxPool2d(2, stride=3)(Tensor(x))
    assert np.array_equal(pooled.data, torch.nn.functional.max_pool2d(
        torch.tensor(x), 2, 3).numpy())


def test_one_by_one_kernel_mixes_channels_per_pixel(rng):
    conv = Conv2d(3, 5, 1, seed=0)
    conv.bias.data[...] = rng.standard_normal(5)
    x = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    expected = np.einsum("oc,nchw->nohw", conv.weight.data[:, :, 0, 0], x) \
        + conv.bias.data[None, :, None, None]
    assert np.allclose(conv(Tensor(x)).data, expected, atol=1e-5)
    strided = Conv2d(3, 5, 1, stride=2, seed=0)(Tensor(x))
    assert strided.shape == (2, 5, 2, 3)


def test_one_by_one_pool_is_the_identity(rng):
    x = Tensor(rng.standard_normal((2, 3, 4, 4)))
    assert np.array_equal(MaxPool2d(1)(x).data, x.data)
    assert np.array_equal(AvgPool2d(1)(x).data, x.data)


def test_padding_larger_than_the_kernel_gives_bias_only_borders(rng):
    conv = Conv2d(1, 1, 2, padding=3, seed=0)
    conv.bias.data[...] = 0.25
    out = conv(Tensor(rng.standard_normal((1, 1, 3, 3))))
    assert out.shape == (1, 1, 8, 8)
    assert np.all(out.data[0, 0, :2] == 0.25) and np.all(out.data[0, 0, :, -2:] == 0.25)


def test_empty_batch_and_single_image():
    conv = Conv2d(2, 3, 3, padding=1, seed=0)
    assert conv(Tensor(np.zeros((0, 2, 5, 5)))).shape == (0, 3, 5, 5)
    assert MaxPool2d(2)(Tensor(np.zeros((0, 2, 4, 4)))).shape == (0, 2, 2, 2)
    assert Flatten()(Tensor(np.zeros((0, 2, 4, 4)))).shape == (0, 32)
    assert conv(Tensor(np.ones((1, 2, 1, 1)))).shape == (1, 3, 1, 1)


def test_empty_batch_backward_gives_zero_filter_gradients():
    conv = Conv2d(2, 3, 3, stride=2, padding=1, seed=0)
    x = Tensor(np.zeros((0, 2, 5, 5), dtype=np.float32), requires_grad=True)
    conv(x).sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    assert np.array_equal(conv.weight.grad.data, np.zeros((3, 2, 3, 3)))
    assert conv.bias.grad.data.tolist() == [0.0] * 3


def test_non_square_images_and_kernels(reference, rng):
    conv = Conv2d(1, 2, (1, 3), stride=(2, 1), padding=(0, 1), seed=0)
    x = rng.standard_normal((1, 1, 5, 9)).astype(np.float32)
    out = conv(Tensor(x))
    assert out.shape == (1, 2, 3, 9)
    expected = reference.conv2d(x, conv.weight.data, conv.bias.data, (2, 1), (0, 1))
    assert np.allclose(out.data, expected, atol=1e-5)


# ---- bad arguments and inputs -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=0), "in_channels must be a positive integer"),
    (dict(out_channels=2.5), "out_channels must be a positive integer"),
    (dict(kernel_size=0), "kernel_size must be an int >= 1"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size must be an int >= 1 or a pair"),
    (dict(stride=0), "stride must be an int >= 1"),
    (dict(padding=-1), "padding must be an int >= 0"),
    (dict(kernel_size=True), "kernel_size must be an int"),
])
def test_conv2d_rejects_bad_arguments(kwargs, message):
    args = dict(in_channels=1, out_channels=1, kernel_size=3) | kwargs
    with pytest.raises(ValueError, match=message):
        Conv2d(**args)


@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
def test_pools_reject_bad_arguments(pool):
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        pool(0)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        pool(2, stride=-2)


def test_wrong_inputs_are_named():
    conv = Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, C, H, W\), got shape "
                                         r"\(3, 8, 8\)"):
        conv(Tensor(np.zeros((3, 8, 8))))
    with pytest.raises(ValueError, match=r"expects 3 input channels, got shape \(1, 1, 8, 8\)"):
        conv(Tensor(np.zeros((1, 1, 8, 8))))
    with pytest.raises(TypeError, match="Conv2d expects a Tensor, got ndarray"):
        conv(np.zeros((1, 3, 8, 8)))
    with pytest.raises(TypeError, match="MaxPool2d expects a Tensor"):
        MaxPool2d(2)([[1.0]])
    with pytest.raises(ValueError, match="0-d tensor"):
        Flatten()(Tensor(1.0))
    with pytest.raises(ValueError, match=r"im2col expects images of shape \(N, C, H, W\)"):
        im2col(Tensor(np.zeros((4, 4))), 2)


def test_integer_images_are_refused_as_in_pytorch(torch):
    pixels = np.arange(9).reshape(1, 1, 3, 3)
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(1, 1, 2)(torch.tensor(pixels))
    conv = Conv2d(1, 1, 2, bias=False)
    with pytest.raises(TypeError, match="Conv2d expects floating-point images, got int64"):
        conv(Tensor(pixels))
    conv.weight.data[...] = 0.5
    out = conv(Tensor(pixels, dtype=np.float32))           # the explicit conversion works
    assert out.dtype == np.float32
    assert out.data[0, 0].tolist() == [[4.0, 6.0], [10.0, 12.0]]
