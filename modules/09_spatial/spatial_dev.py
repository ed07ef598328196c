# %% [markdown]
# # Module 09: Spatial layers (CNNs)
#
# A `Linear` layer connects every input to every output: for a 32x32 RGB image
# that is 3,072 weights per output unit, and what it learns about a cat in the top
# left corner tells it nothing about a cat in the bottom right. A **convolution**
# slides one small filter (say 3x3) over the whole image instead: few weights,
# shared by every position, so a feature learned in one place is found
# everywhere. **Pooling** then shrinks the image, keeping the strongest (or the
# average) response in each small window.
#
# This module builds `Conv2d`, `MaxPool2d`, `AvgPool2d` and `Flatten` as `Module`s
# (module 03). Pooling and `Flatten` are written with Tensor operations that
# module 05 already differentiates (reshape, max, mean). Convolution brings two
# operations of its own, `im2col` and `conv2d`, and registers their backward
# rules in module 05's registry with `@rule`: rules that know how the windows
# overlap are many times faster than differentiating a generic indexing step.
# (Importing this module imports module 05, which installs its rules.)
#
# Shapes follow PyTorch: images are **(N, C, H, W)**: batch, channels, height, width.

# %%
#| default_exp core.spatial

# %%
#| export
"""Spatial layers: Conv2d (im2col + one matmul), MaxPool2d, AvgPool2d, Flatten.

im2col and conv2d are Tensor operations with their own backward rules, registered
with autograd's `rule`; pooling and Flatten reuse existing operations.
Images are (N, C, H, W)."""
import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.autograd import nothing, rule
from tinytorch.core.layers import Module, make_rng
from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Output size
#
# A window of `k` pixels moved in steps of `stride` over `size` pixels (after
# adding `padding` zeros on each side) fits
#
# `out = (size + 2 * padding - k) // stride + 1`
#
# times. With `k = 3, padding = 1, stride = 1` the output is as large as the input
# ("same" padding); with `k = 2, stride = 2` it is half as large (pooling).

# %%
#| export
def _pair(value, name, minimum=1):
    """An int or an (h, w) pair of ints, as a pair; each at least `minimum`."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                             or v < minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return tuple(int(v) for v in pair)


def output_size(size, kernel, stride=1, padding=0):
    """How many positions a window of `kernel` pixels takes along `size` pixels."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_images(layer, x, channels=None):
    """x must be a (N, C, H, W) Tensor, with C == channels when given."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer} expects a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{layer} expects images of shape (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer} expects {channels} input channels, got shape {x.shape} "
                         f"with {x.shape[1]}")

# %% [markdown]
# ## im2col: every window as a column
#
# A convolution computes, at every output position, a dot product between the
# filter and the image window under it. If we copy each window into a column of a
# matrix (*im2col*, "image to columns"), all those dot products become **one
# matrix multiplication**, which numpy runs in optimized BLAS code with no Python
# loop over pixels, positions or images.
#
# For one image of shape (C, H, W), the column for output position `(oh, ow)`
# holds the `C * kh * kw` values of its window, ordered channel, window row,
# window column: the same order as a filter of shape (C, kh, kw) flattened. So:
#
# `columns (C*kh*kw, Ho*Wo)`, `filters (out, C*kh*kw)`, `filters @ columns = (out, Ho*Wo)`.
#
# **How we build it.** `np.pad` adds the zero padding. numpy's
# `sliding_window_view` then gives every kh x kw window of the padded images as a
# *view*, shape (N, C, H', W', kh, kw): no copy, just strides that make
# overlapping windows share memory. Taking every `stride`-th window and moving
# the window axes next to the channel axis gives (N, C, kh, kw, Ho, Wo), and the
# final `reshape` is the one copy: the columns.
#
# **Its gradient, col2im.** Each column entry is a copy of one pixel (or of a
# padding zero), so its gradient goes back to that pixel, and a pixel read by
# several windows collects all of their gradients. `_col2im` does this with one
# vectorized, strided `+=` per kernel offset `(i, j)`: the entries at offset
# `(i, j)` of all windows come from the pixels `i + stride * oh, j + stride * ow`,
# a strided slice of the (padded) image. That is `kh * kw` numpy operations (9
# for a 3x3 kernel), however large the batch. The gradient that lands on the
# padding is dropped.
#
# `im2col` wraps this in a Tensor operation: module 05 keeps a registry of
# backward rules, and `@rule("im2col")` adds ours to it.

# %%
#| export
def _columns(images, kernel, stride, padding):
    """(N, C, H, W) array -> (N, C*kh*kw, Ho*Wo) array: each window as a column."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if padding != (0, 0):
        images = np.pad(images, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(images, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    n, c, ho, wo = windows.shape[:4]                          # (N, C, Ho, Wo, kh, kw): a view
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo)   # the copy


def _col2im(column_grads, image_shape, kernel, stride, padding):
    """The gradient of _columns: add each column entry's gradient to the pixel it was read from."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = image_shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    column_grads = column_grads.reshape(n, c, kh, kw, ho, wo)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=column_grads.dtype)
    for i in range(kh):              # one strided add per kernel offset, not per pixel
        for j in range(kw):
            padded[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += column_grads[:, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]


def _check_fits(layer, x, kernel, padding):
    (h, w), (kh, kw), (ph, pw) = x.shape[2:], kernel, padding
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f"{layer}: kernel {kh}x{kw} is larger than the {h}x{w} input "
                         f"(padded to {h + 2 * ph}x{w + 2 * pw})")


def im2col(x, kernel_size, stride=1, padding=0):
    """(N, C, H, W) images -> (N, C*kh*kw, Ho*Wo): each window as a column."""
    _check_images("im2col", x)
    kernel, stride = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    padding = _pair(padding, "padding", minimum=0)
    _check_fits("im2col", x, kernel, padding)
    columns = _columns(x.data, kernel, stride, padding)
    return Tensor._make(columns, "im2col", (x,), kernel=kernel, stride=stride, padding=padding)


@rule("im2col", saves=nothing)                  # it reads only x's shape
def _im2col_backward(out, grad):
    (x,) = out._parents
    return (_col2im(grad, x.shape, **out._saved),)

# %% [markdown]
# ## The same windows as indices
#
# Sometimes the positions are more useful than the values: module 15 convolves
# integer (quantized) images with them. `window_indices` gives, for one image
# flattened to `C*H*W` values, the position of every entry of every window, in
# the same (C*kh*kw, Ho*Wo) layout as the columns, so
# `images.reshape(N, C*H*W)[:, index]` gathers the columns of a whole batch.
# Entries that fall in the padding point at the nearest pixel and are marked 0 in
# the `inside` mask: multiply by it to get the zeros. The arrays depend only on
# the shapes, so they are computed once per shape and cached.

# %%
#| export
@lru_cache(maxsize=128)
def window_indices(channels, height, width, kernel, stride, padding):
    """Flat indices into a (C*H*W) image of every window entry, and a mask of the
    entries inside the image (not in the zero padding); both (C*kh*kw, Ho*Wo)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_size(height, kh, sh, ph), output_size(width, kw, sw, pw)
    rows = np.arange(kh)[:, None] + sh * np.arange(ho) - ph     # (kh, Ho): image row
    cols = np.arange(kw)[:, None] + sw * np.arange(wo) - pw     # (kw, Wo): image column
    rows = rows[None, :, None, :, None]                          # (1, kh, 1, Ho, 1)
    cols = cols[None, None, :, None, :]                          # (1, 1, kw, 1, Wo)
    channel = np.arange(channels)[:, None, None, None, None]     # (C, 1, 1, 1, 1)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    nearest = np.clip(rows, 0, height - 1) * width + np.clip(cols, 0, width - 1)
    index = channel * (height * width) + nearest                 # (C, kh, kw, Ho, Wo)
    shape = (channels * kh * kw, ho * wo)
    inside = np.broadcast_to(inside, index.shape).reshape(shape)
    index, inside = index.reshape(shape), inside.astype(np.float32)
    index.flags.writeable = inside.flags.writeable = False       # cached: never modify
    return index, inside

# %% [markdown]
# ## Conv2d
#
# `out_channels` filters, each of shape `(in_channels, kh, kw)`, stored together
# as `weight (out_channels, in_channels, kh, kw)` (PyTorch's layout), plus one
# bias per output channel. The forward pass is the im2col idea: columns, one
# matmul, plus the bias:
#
# `(out, C*kh*kw) @ (N, C*kh*kw, Ho*Wo) -> (N, out, Ho*Wo) -> (N, out, Ho, Wo)`
#
# **One operation, one backward rule.** We could chain Tensor operations (im2col,
# matmul, reshape, add) and let module 05 differentiate each. Instead the whole
# layer is one `conv2d` operation that keeps the columns for its own rule, which
# computes the three gradients directly, with `grad` of shape (N, out, Ho*Wo):
#
# - `weight`: `grad[n] @ columns[n].T`, summed over the batch: every image and
#   every position contributes to each filter.
# - `x`: `filters.T @ grad[n]` is the gradient of the columns; `_col2im` adds it
#   back onto the pixels.
# - `bias`: `grad` summed over the batch and the positions.
#
# The image and filter gradients are computed only when needed (the images fed
# to a first layer need none). The rule is registered with `@rule("conv2d")`,
# like im2col's: about 6x faster than the chain of generic operations it replaces
# (`python bench/framework.py`, case conv2d).
#
# **A reused work array.** The column gradients are as large as the columns
# (3.4 MiB for 32 images of 3x32x32 and a 3x3 kernel) and are used up inside the
# rule. A fresh array of that size costs more than the multiplication that fills
# it: the operating system hands over new memory page by page, zeroing each on
# first touch (a *page fault* every 4 KiB). PyTorch avoids this by caching freed
# memory in its allocator; we keep one work array (`_scratch`) that grows to the
# largest size asked for and is reused by every later call. That is only safe for
# results that never leave the function, which is why the columns themselves
# (kept for backward) and the gradients (returned) are fresh arrays.
#
# Integer images (say uint8 pixels) are a `TypeError`, as for `Linear` and in
# PyTorch: scaling pixels to floats is a choice the caller makes. Mixed float
# dtypes compute in the widest one, module 01's rule (PyTorch refuses them).
#
# **Initialisation.** Kaiming (He) uniform, `U(-b, b)` with `b = sqrt(6 / fan_in)`
# and `fan_in = in_channels * kh * kw` (the inputs of one output value): the right
# spread for the ReLU networks convolutions usually sit in. Biases start at zero.

# %%
#| export
_work = np.empty(0, dtype=np.uint8)   # _scratch's memory: grows to the largest request


def _scratch(shape, dtype):
    """A work array reused by every call: only for results used up before the caller returns."""
    global _work
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if _work.size < size:
        _work = np.empty(size, dtype=np.uint8)
    return _work[:size].view(dtype).reshape(shape)


def _conv2d(x, weight, bias, stride, padding):
    """The conv2d operation on Tensors: (N, C, H, W) -> (N, out, Ho, Wo), recorded for backward."""
    parents = (x, weight) if bias is None else (x, weight, bias)
    dtype = np.result_type(*(p.data for p in parents))
    columns = _columns(x.data.astype(dtype, copy=False), weight.shape[2:], stride, padding)
    out = weight.data.reshape(weight.shape[0], -1) @ columns          # (N, out, Ho*Wo)
    if bias is not None:
        out += bias.data[:, None]
    (h, w), (kh, kw), (sh, sw), (ph, pw) = x.shape[2:], weight.shape[2:], stride, padding
    out = out.reshape(*out.shape[:2], output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))
    return Tensor._make(out, "conv2d", parents, columns=columns, stride=stride, padding=padding)


@rule("conv2d", saves=lambda out: (0, 1))      # x and weight, as PyTorch (not the bias)
def _conv2d_backward(out, grad):
    x, weight = out._parents[:2]
    columns = out._saved["columns"]                             # (N, C*kh*kw, Ho*Wo)
    grad = grad.reshape(*grad.shape[:2], columns.shape[2])      # (N, out, Ho*Wo)
    grads = [None, None]
    if x.requires_grad:
        filters = weight.data.reshape(weight.shape[0], -1)      # (out, C*kh*kw)
        work = _scratch(columns.shape, np.result_type(filters, grad))
        column_grads = np.matmul(filters.T, grad, out=work)     # (N, C*kh*kw, Ho*Wo)
        grads[0] = _col2im(column_grads, x.shape, weight.shape[2:],
                           out._saved["stride"], out._saved["padding"])
    if weight.requires_grad:
        grads[1] = (grad @ columns.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    if len(out._parents) == 3:                                  # the bias
        grads.append(grad.sum(axis=(0, 2)))
    return grads


class Conv2d(Module):
    """2-D convolution of (N, C_in, H, W) images with out_channels (C_in, kh, kw) filters."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 bias=True, seed=None):
        self.in_channels = check_int("Conv2d", "in_channels", in_channels)
        self.out_channels = check_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = _pair(kernel_size, "Conv2d: kernel_size")
        self.stride = _pair(stride, "Conv2d: stride")
        self.padding = _pair(padding, "Conv2d: padding", minimum=0)
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = np.sqrt(6 / fan_in)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        weight = make_rng(seed).uniform(-bound, bound, size=shape).astype(np.float32)
        self.weight = Tensor(weight, requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_channels), requires_grad=True) if bias else None

    def output_shape(self, height, width):
        """(H_out, W_out) for an input of height x width."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return output_size(height, kh, sh, ph), output_size(width, kw, sw, pw)

    def forward(self, x):
        _check_images("Conv2d", x, self.in_channels)
        _check_fits("Conv2d", x, self.kernel_size, self.padding)
        if x.dtype.kind != "f":      # as Linear (and PyTorch): convert pixels explicitly
            raise TypeError(f"Conv2d expects floating-point images, got {x.dtype}; convert "
                            f"them first, e.g. Tensor(pixels / 255, dtype=np.float32)")
        return _conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None})")

# %% [markdown]
# ## Pooling
#
# Pooling works on each channel separately. The columns of `im2col` are ordered
# channel first, so seen as `(N, C, kh*kw, Ho*Wo)` they hold every window of every
# channel; then one reduction over the window axis does the pooling:
#
# - `MaxPool2d`: the largest entry of each window, picked by index (`argmax`). Its
#   gradient goes to that one entry. When several entries tie, `argmax` picks the
#   first (in reading order), and it alone gets the gradient, as in PyTorch. (A
#   plain `max` reduction would split the gradient between tied entries, as
#   module 05's `max` rule does, like PyTorch's `amax`.)
# - `AvgPool2d`: `mean` over the window; each entry gets `1 / (kh*kw)` of the gradient.
#   Like every mean (module 01), it refuses integer images, where PyTorch returns
#   truncated integer averages.
#
# Both gradients then flow through im2col's rule back to the pixels.
#
# `stride` defaults to the kernel size: windows side by side, not overlapping, so
# `MaxPool2d(2)` halves the height and width. Windows that would stick out past
# the bottom or right edge are dropped, as in PyTorch.

# %%
#| export
class _Pool2d(Module):
    """Shared by MaxPool2d and AvgPool2d: gather every window, then reduce it."""

    def __init__(self, kernel_size, stride=None):
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, f"{name}: kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, f"{name}: stride")

    def windows(self, x):
        """(N, C, kh*kw, Ho*Wo): every window of every channel, and (Ho, Wo)."""
        name = type(self).__name__
        _check_images(name, x)
        _check_fits(name, x, self.kernel_size, (0, 0))
        n, c, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
        columns = im2col(x, self.kernel_size, self.stride)            # (N, C*kh*kw, Ho*Wo)
        return columns.reshape(n, c, kh * kw, ho * wo), (ho, wo)

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxPool2d(_Pool2d):
    """The largest value of each kh x kw window, per channel."""

    def forward(self, x):
        windows, out_hw = self.windows(x)                          # (N, C, kh*kw, L)
        n, c, _, length = windows.shape
        first = windows.data.argmax(axis=2)                        # (N, C, L): first largest
        picked = windows[np.arange(n)[:, None, None], np.arange(c)[None, :, None], first,
                         np.arange(length)]                        # (N, C, L)
        return picked.reshape(*x.shape[:2], *out_hw)


class AvgPool2d(_Pool2d):
    """The mean of each kh x kw window, per channel."""

    def forward(self, x):
        windows, out_hw = self.windows(x)
        return windows.mean(axis=2).reshape(*x.shape[:2], *out_hw)

# %% [markdown]
# ## Flatten
#
# The bridge from convolutions to `Linear` layers: keep the batch axis, flatten
# everything else, `(N, C, H, W) -> (N, C*H*W)`. A reshape, so its gradient is a
# reshape back.

# %%
#| export
class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"Flatten expects a Tensor, got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError("Flatten needs a batch axis, got a 0-d tensor")
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))   # not -1: N may be 0

    def __repr__(self):
        return "Flatten()"

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential

# A 3x3 filter that sums its window, on a 4x4 image of ones with "same" padding:
# corners see 4 ones, edges 6, the inside 9.
conv = Conv2d(1, 1, 3, padding=1, bias=False)
conv.weight.data[...] = 1
print(conv(Tensor(np.ones((1, 1, 4, 4)))).data[0, 0])

model = Sequential(Conv2d(1, 8, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                   Linear(8 * 4 * 4, 10, seed=0))
x = Tensor(np.random.default_rng(0).random((5, 1, 8, 8)))
logits = model(x)
assert logits.shape == (5, 10)
logits.sum().backward()
assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
print(model)
