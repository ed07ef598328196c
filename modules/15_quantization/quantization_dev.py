# %% [markdown]
# # Module 15: Quantization
#
# A trained network stores every weight as a float32: 4 bytes. Most weights of a
# layer lie in a narrow range, say [-0.5, 0.5], and float32 spends most of its
# 32 bits on precision and range nobody needs there. **Quantization** stores each
# value as an 8-bit integer instead, plus one float *scale* that says how big a
# step of the integer is:
#
# `x ~= scale * (q - zero_point)`, with `q` an int8 in [-128, 127].
#
# That is 4x less memory for the weights (the few float32 scales and biases that
# remain make a whole model a little less than 4x smaller; `model_bytes` measures
# it), and the arithmetic can run on integers: an int8 x int8
# product accumulated in int32 is what phone CPUs, DSPs and GPU tensor cores do
# fastest. The price is rounding error, at most half a step per value, which a
# trained network usually shrugs off.
#
# What we build, in order:
#
# 1. the **int8 grid**: choosing `scale` and `zero_point` for a range of floats,
#    symmetric or asymmetric, per tensor or per output channel;
# 2. `quantize` / `dequantize` (and their composition, `fake_quantize`);
# 3. **observers** and `calibrate`: the range of each layer's *input* is not known
#    from the weights, so we run the float model on sample data and watch;
# 4. `QuantizedLinear` and `QuantizedConv2d`: int8 weights, integer matmul;
# 5. `quantize_model` and `model_bytes`: convert a whole model and measure it.
#
# Everything here is post-training quantization for inference: quantized layers
# have no gradients.

# %%
#| default_exp quantization

# %%
#| export
"""Post-training int8 quantization: quantization parameters (symmetric/asymmetric,
per-tensor/per-channel), quantize/dequantize, calibration observers, Linear and Conv2d
layers that compute in integers, whole-model conversion and its measured size."""
from abc import ABC, abstractmethod

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.spatial import Conv2d, output_size, window_indices
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import parameter_bytes

# %% [markdown]
# ## The int8 grid: scale and zero point
#
# We map a float range `[lo, hi]` onto the 256 integers `[-128, 127]`. Two schemes:
#
# - **Asymmetric (affine)**: the whole grid covers `[lo, hi]`.
#   `scale = (hi - lo) / 255`, and the **zero point** `z` is the integer that
#   stands for the float 0: `z = -128 - round(lo / scale)`. Good for activations
#   after a ReLU, which are all >= 0: a symmetric grid would waste its negative half.
# - **Symmetric**: the grid is centred on 0, `z = 0`, and
#   `scale = max(|lo|, |hi|) / 127`, so both `+max` and `-max` are on the grid
#   (-128 is only reached by clipping). Good for weights, which are roughly centred
#   on 0, and it makes the integer matmul simpler (no zero point to subtract).
#   (PyTorch's observers divide by 127.5 instead, the half-width of [-128, 127],
#   which clips `+max` by half a step; with `quant_min=-127` they divide by 127 as we do.)
#
# Two details matter in practice:
#
# - The range is widened to **contain 0**, so the float 0 is exactly an integer
#   (`z`). Zero padding in a convolution and the zeros a ReLU produces are then
#   represented without error.
# - An all-zero tensor has `hi - lo = 0`; dividing by that scale would be
#   a division by zero. Like PyTorch, we never let the scale go below float32's
#   machine epsilon (about 1.2e-7).
#
# `qparams` works elementwise on arrays, so one call gives the per-channel
# parameters of all channels at once.

# %%
#| export
QMIN, QMAX = -128, 127                 # the int8 grid
MIN_SCALE = float(np.finfo(np.float32).eps)   # the smallest scale we use (as PyTorch)


def qparams(lo, hi, symmetric=False):
    """(scale float32, zero_point int32) mapping floats in [lo, hi] onto int8.

    lo and hi may be arrays (one range per channel); the range is widened to contain 0."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"qparams: the range must be finite, got lo={lo}, hi={hi}")
    if (lo > hi).any():
        raise ValueError(f"qparams: lo must not exceed hi, got lo={lo}, hi={hi}")
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)     # 0 must be exactly representable
    if symmetric:
        scale = np.maximum(np.maximum(-lo, hi) / QMAX, MIN_SCALE).astype(np.float32)
        return scale, np.zeros(scale.shape, np.int32)
    scale = np.maximum((hi - lo) / (QMAX - QMIN), MIN_SCALE).astype(np.float32)
    zero_point = np.clip(QMIN - np.round(lo / scale), QMIN, QMAX).astype(np.int32)
    return scale, zero_point

# %% [markdown]
# ## quantize and dequantize
#
# `q = clip(round(x / scale) + zero_point, -128, 127)` and back,
# `x_hat = scale * (q - zero_point)`.
#
# - `round` is numpy's round-half-to-even, as in PyTorch, so ties do not all go
#   the same way.
# - Inside the range the round trip is off by at most `scale / 2` per value.
#   Outside it, values **saturate** at -128 or 127 (inf too); a NaN has no
#   integer at all, so it is an error rather than a silent garbage value.
# - **Per-channel** quantization gives each slice along `axis` its own scale and
#   zero point: for a weight matrix, one per output unit. A unit whose weights
#   are all tiny then gets a fine grid of its own, instead of sharing the coarse
#   grid of the layer's largest weight.
#
# The division is done in float64 so that `x / scale` never overflows, whatever
# the values.

# %%
#| export
def _array(x, name):
    """The numbers in x (a Tensor or array-like) as a numpy array; NaN is an error."""
    array = np.asarray(x.data if isinstance(x, Tensor) else x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} expects numbers, got dtype {array.dtype}")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{name}: input contains NaN, which has no int8 value")
    return array


def _along(values, ndim, axis):
    """Per-tensor values as they are; per-channel values shaped to broadcast along `axis`."""
    values = np.asarray(values)
    if axis is None:
        if values.size != 1:
            raise ValueError(f"{values.size} scales or zero points need an axis= to apply along")
        return values.reshape(())
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def quantize(x, scale, zero_point, axis=None):
    """int8 q = clip(round(x / scale) + zero_point, -128, 127); per channel along `axis`."""
    x = _array(x, "quantize")
    if axis is not None and np.asarray(scale).size != x.shape[axis]:
        raise ValueError(f"quantize: {np.asarray(scale).size} scales for the {x.shape[axis]} "
                         f"channels along axis {axis} of shape {x.shape}")
    scale, zero_point = _along(scale, x.ndim, axis), _along(zero_point, x.ndim, axis)
    q = np.round(x.astype(np.float64) / scale) + zero_point
    return np.clip(q, QMIN, QMAX).astype(np.int8)


def dequantize(q, scale, zero_point, axis=None):
    """float32 x_hat = scale * (q - zero_point); per channel along `axis`."""
    q = np.asarray(q)
    scale, zero_point = _along(scale, q.ndim, axis), _along(zero_point, q.ndim, axis)
    return ((q.astype(np.int32) - zero_point) * scale.astype(np.float64)).astype(np.float32)


def fake_quantize(x, scale, zero_point, axis=None):
    """dequantize(quantize(x)): x as the int8 grid sees it, back in float32."""
    return dequantize(quantize(x, scale, zero_point, axis), scale, zero_point, axis)


def choose_qparams(x, symmetric=False, axis=None):
    """qparams from x's own min and max: over all of x, or per slice along `axis`."""
    x = _array(x, "choose_qparams")
    if x.size == 0:
        raise ValueError("choose_qparams: an empty tensor has no range")
    if axis is None:
        return qparams(x.min(), x.max(), symmetric)
    others = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    return qparams(x.min(axis=others), x.max(axis=others), symmetric)

# %% [markdown]
# ## Observers: ranges of activations
#
# A weight's range is known: it is in the layer. The range of a layer's *input*
# depends on the data. An **observer** watches the values that flow past during
# calibration and proposes a range:
#
# - `MinMaxObserver`: the smallest and largest value seen. Nothing is ever clipped,
#   but a single outlier stretches the grid for everyone.
# - `PercentileObserver(99.99)`: the 0.01th and 99.99th percentiles of all values
#   seen. The rare extremes are clipped (they saturate), and in exchange the
#   common values get a finer grid. It keeps the values it has seen, which is fine
#   for the few calibration batches it is meant for.

# %%
#| export
class Observer(ABC):
    """Watches values (observe) and proposes a range (range) and its qparams."""

    @abstractmethod
    def observe(self, x):
        """Take in one batch of values."""

    @abstractmethod
    def range(self):
        """(low, high) to quantize to, from everything observed."""

    def qparams(self, symmetric=False):
        return qparams(*self.range(), symmetric=symmetric)

    def _checked(self, x):
        x = _array(x, type(self).__name__)
        if not np.isfinite(x).all():
            raise ValueError(f"{type(self).__name__}: observed an infinite value; the range "
                             f"of a calibration batch must be finite")
        return x

    def _nothing_seen(self):
        return RuntimeError(f"{type(self).__name__} has observed no values yet: run "
                            f"calibration data through it first")


class MinMaxObserver(Observer):
    """The range is the smallest and the largest value observed."""

    def __init__(self):
        self.lo, self.hi = np.inf, -np.inf

    def observe(self, x):
        x = self._checked(x)
        if x.size:
            self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    def range(self):
        if self.lo > self.hi:
            raise self._nothing_seen()
        return self.lo, self.hi


class PercentileObserver(Observer):
    """The range is the (100 - p)th to pth percentile of the values observed."""

    def __init__(self, percentile=99.99):
        if not 50 < percentile <= 100:
            raise ValueError(f"PercentileObserver: percentile must be in (50, 100], "
                             f"got {percentile}")
        self.percentile = percentile
        self.values = []

    def observe(self, x):
        x = self._checked(x)
        if x.size:
            self.values.append(x.astype(np.float64).ravel())

    def range(self):
        if not self.values:
            raise self._nothing_seen()
        values = np.concatenate(self.values)
        return (float(np.percentile(values, 100 - self.percentile)),
                float(np.percentile(values, self.percentile)))

# %% [markdown]
# ## Calibration
#
# `calibrate(model, sample_batches)` runs the float model on a few batches and
# gives every `Linear` and `Conv2d` of the `Sequential` an observer of its
# *input*. It returns them as `{index of the layer in model.layers: observer}`.
#
# A batch may be a Tensor, an array, or an `(inputs, labels)` pair as a
# `DataLoader` (module 08) yields; a single Tensor or array counts as one batch.
# The model runs in evaluation mode (no dropout), without recording a graph, and
# its training flag is restored afterwards.

# %%
#| export
QUANTIZABLE = (Linear, Conv2d)


def _batches(sample_batches):
    if isinstance(sample_batches, (Tensor, np.ndarray)):
        return [sample_batches]
    return sample_batches


def _inputs(batch):
    if isinstance(batch, (tuple, list)):
        batch = batch[0]                   # (inputs, labels) from a DataLoader
    return batch if isinstance(batch, Tensor) else Tensor(batch)


def _sequential_layers(model, name):
    if not isinstance(model, Sequential):
        raise TypeError(f"{name} works on a Sequential model, got {type(model).__name__}")
    return model.layers


def calibrate(model, sample_batches, observer=MinMaxObserver):
    """{layer index: observer of that Linear/Conv2d layer's input} after running the batches."""
    layers = _sequential_layers(model, "calibrate")
    observers = {i: observer() for i, layer in enumerate(layers) if isinstance(layer, QUANTIZABLE)}
    if not observers:
        raise ValueError("calibrate: the model has no Linear or Conv2d layer to quantize")
    was_training, batches = model.training, 0
    model.eval()
    try:
        with no_grad():
            for batch in _batches(sample_batches):
                x = _inputs(batch)
                for i, layer in enumerate(layers):
                    if i in observers:
                        observers[i].observe(x.data)
                    x = layer(x)
                batches += 1
    finally:
        model.train(was_training)
    if batches == 0:
        raise ValueError("calibrate: no sample batches were given")
    return observers

# %% [markdown]
# ## A Linear layer that computes in integers
#
# Write the input as `X ~= s_x (X_q - z_x)` (asymmetric, per tensor: one scale
# for the whole activation, from calibration) and the weight as `W ~= W_q s_w`
# (symmetric, per output unit: `s_w` is a vector, one scale per column of
# `W (in, out)`). Then
#
# `X @ W ~= s_x (X_q - z_x) @ (W_q s_w) = s_x s_w * ((X_q - z_x) @ W_q)`
#
# so the layer is
#
# **`y = s_x * s_w * ((X_q - z_x) @ W_q) + b`**
#
# The matmul in the middle is pure integer arithmetic: int8 values, products
# summed in an **int32 accumulator**. Only the final rescale by `s_x * s_w` (one
# float per output unit) and the bias are float. Because the weights are
# symmetric, no weight zero point appears in the formula.
#
# Can the int32 accumulator overflow? Each term is at most
# `|X_q - z_x| * |W_q| <= 255 * 127`, so a sum of `in_features` terms fits in
# int32 as long as `in_features <= (2^31 - 1) / (255 * 127) = 66,311`; we check.
#
# **Is it faster?** Not in numpy: numpy's integer matmul does not use the optimized
# BLAS routines its float matmul uses, so this layer is much *slower* than the float
# one (time both with module 14's `measure_latency`). The integer formula is what
# int8 hardware kernels compute quickly; here it shows exactly which arithmetic they
# do, and the memory saving is real either way.
#
# `from_float(linear, input_qparams)` builds the layer from a trained `Linear` and
# the input's `(scale, zero_point)` from calibration. The forward pass is split in
# three steps you can test one by one: `quantize_input`, `accumulate`, and the
# rescale.
#
# Everything the layer stores is a Tensor that does not require a gradient: the
# int8 weights, the float32 scales, the int32 input zero point and the float32
# bias. `parameters()` is therefore empty (nothing to train), while module 14's
# `count_parameters` and `parameter_bytes`, which count every stored Tensor,
# see exactly what the layer holds.

# %%
#| export
MAX_ACCUMULATED = (2 ** 31 - 1) // ((QMAX - QMIN) * QMAX)   # int8 products an int32 can sum


def _check_accumulator(layer, terms):
    if terms > MAX_ACCUMULATED:
        raise ValueError(f"{layer}: {terms} products per output could overflow the int32 "
                         f"accumulator (at most {MAX_ACCUMULATED})")


def _weight_qparams(weight, per_channel, channel_axis):
    """Symmetric scales for a weight: one per output channel, or one for all."""
    axis = channel_axis if per_channel else None
    scale, zero_point = choose_qparams(weight, symmetric=True, axis=axis)
    return quantize(weight, scale, zero_point, axis), scale


def _input_qparams(input_qparams):
    scale, zero_point = (np.asarray(v.data if isinstance(v, Tensor) else v) for v in input_qparams)
    if scale.size != 1 or zero_point.size != 1:
        raise ValueError("the input is quantized per tensor: give one scale and one zero point")
    if not scale > 0:
        raise ValueError(f"the input scale must be positive, got {scale}")
    return (Tensor(scale.reshape(()), dtype=np.float32),
            Tensor(zero_point.reshape(()), dtype=np.int32))


def _stored(values, dtype):
    """A constant Tensor of the given dtype (None stays None): what a quantized layer keeps."""
    if values is None:
        return None
    return Tensor(values.data if isinstance(values, Tensor) else values, dtype=dtype)


class QuantizedLinear(Module):
    """Linear with int8 weights: y = s_x * s_w * ((X_q - z_x) @ W_q) + b, int32 accumulation."""

    def __init__(self, weight_q, weight_scale, bias, input_qparams):
        self.weight_q = _stored(weight_q, np.int8)                      # (in, out)
        self.weight_scale = _stored(weight_scale, np.float32)           # (out,) or ()
        self.bias = _stored(bias, np.float32)                           # (out,) or None
        self.input_scale, self.input_zero_point = _input_qparams(input_qparams)
        self.in_features, self.out_features = self.weight_q.shape
        _check_accumulator("QuantizedLinear", self.in_features)

    @classmethod
    def from_float(cls, linear, input_qparams, per_channel=True):
        """Quantize a trained Linear; input_qparams = (scale, zero_point) of its input."""
        weight_q, scale = _weight_qparams(linear.weight.data, per_channel, channel_axis=1)
        return cls(weight_q, scale, linear.bias, input_qparams)

    def quantize_input(self, x):
        return quantize(x, self.input_scale.data, self.input_zero_point.data)

    def accumulate(self, x_q):
        """The int32 accumulator (X_q - z_x) @ W_q for int8 inputs X_q (..., in)."""
        centered = x_q.astype(np.int32) - self.input_zero_point.data   # in [-255, 255]
        return centered @ self.weight_q.data.astype(np.int32)

    def dequantized_weight(self):
        """The float weights the integers stand for, W_q * s_w."""
        return (self.weight_q.data * self.weight_scale.data.astype(np.float64)).astype(np.float32)

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"QuantizedLinear expects a Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear({self.in_features}, {self.out_features}) expects "
                             f"inputs whose last dimension is {self.in_features}, got {x.shape}")
        acc = self.accumulate(self.quantize_input(x))
        y = acc * (self.input_scale.data.astype(np.float64) * self.weight_scale.data)  # rescale
        if self.bias is not None:
            y = y + self.bias.data
        return Tensor(y.astype(np.float32))

    def __repr__(self):
        return (f"QuantizedLinear(in_features={self.in_features}, "
                f"out_features={self.out_features}, per_channel={self.weight_scale.ndim == 1})")

# %% [markdown]
# ## A Conv2d layer that computes in integers
#
# The same formula, with the convolution written as im2col + matmul, as in
# module 09: every window of the (centred) int8 input becomes a column, and one
# integer matmul with the `(out, C*kh*kw)` filter matrix gives the int32
# accumulator `(N, out, Ho*Wo)`. Each filter (output channel) has its own scale.
#
# Zero padding needs a thought: the float 0 is the integer `z_x`, so in the
# centred values `X_q - z_x` it is exactly 0. We gather the windows with module
# 09's `window_indices` and multiply by its `inside` mask, all in integers: the
# padded entries become 0, as they should.

# %%
#| export
class QuantizedConv2d(Module):
    """Conv2d with int8 filters, computed as an integer im2col matmul with int32 accumulation."""

    def __init__(self, weight_q, weight_scale, bias, input_qparams, stride=(1, 1), padding=(0, 0)):
        self.weight_q = _stored(weight_q, np.int8)                      # (out, C, kh, kw)
        self.weight_scale = _stored(weight_scale, np.float32)           # (out,) or ()
        self.bias = _stored(bias, np.float32)                           # (out,) or None
        self.input_scale, self.input_zero_point = _input_qparams(input_qparams)
        self.out_channels, self.in_channels, *kernel = self.weight_q.shape
        self.kernel_size, self.stride, self.padding = tuple(kernel), tuple(stride), tuple(padding)
        _check_accumulator("QuantizedConv2d", self.in_channels * kernel[0] * kernel[1])

    @classmethod
    def from_float(cls, conv, input_qparams, per_channel=True):
        """Quantize a trained Conv2d; input_qparams = (scale, zero_point) of its input."""
        weight_q, scale = _weight_qparams(conv.weight.data, per_channel, channel_axis=0)
        return cls(weight_q, scale, conv.bias, input_qparams, conv.stride, conv.padding)

    def output_shape(self, height, width):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return output_size(height, kh, sh, ph), output_size(width, kw, sw, pw)

    def quantize_input(self, x):
        return quantize(x, self.input_scale.data, self.input_zero_point.data)

    def accumulate(self, x_q):
        """The int32 accumulator (N, out, Ho, Wo) of the convolution of (X_q - z_x) with W_q."""
        n, c, h, w = x_q.shape
        ho, wo = self.output_shape(h, w)
        index, inside = window_indices(c, h, w, self.kernel_size, self.stride, self.padding)
        centered = x_q.astype(np.int32).reshape(n, c * h * w) - self.input_zero_point.data
        columns = centered[:, index] * inside.astype(np.int32)      # (N, C*kh*kw, Ho*Wo)
        filters = self.weight_q.data.reshape(self.out_channels, -1).astype(np.int32)
        return (filters @ columns).reshape(n, self.out_channels, ho, wo)

    def dequantized_weight(self):
        """The float filters the integers stand for, W_q * s_w."""
        scale = self.weight_scale.data.astype(np.float64).reshape(-1, 1, 1, 1)
        return (self.weight_q.data * scale).astype(np.float32)

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"QuantizedConv2d expects a Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"QuantizedConv2d expects images (N, {self.in_channels}, H, W), "
                             f"got shape {x.shape}")
        if min(self.output_shape(*x.shape[2:])) < 1:
            raise ValueError(f"QuantizedConv2d: kernel {self.kernel_size} does not fit the "
                             f"{x.shape[2]}x{x.shape[3]} input with padding {self.padding}")
        acc = self.accumulate(self.quantize_input(x))
        s_w = self.weight_scale.data.reshape(-1, 1, 1)                 # one per output channel
        y = acc * (self.input_scale.data.astype(np.float64) * s_w)      # float rescale
        if self.bias is not None:
            y = y + self.bias.data.reshape(-1, 1, 1)
        return Tensor(y.astype(np.float32))

    def __repr__(self):
        return (f"QuantizedConv2d({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"per_channel={self.weight_scale.ndim == 1})")

# %% [markdown]
# ## Quantizing a whole model, and measuring it
#
# `quantize_model(model, calibration_data)` calibrates, then builds a **new**
# `Sequential` in which every `Linear` and `Conv2d` is replaced by its quantized
# version; the other layers (activations, pooling, `Flatten`) hold no weights and
# are reused as they are. The float model is left untouched, so you can compare
# the two.
#
# `model_bytes(model)` counts what a model really stores: the bytes of every
# Tensor held by the model and the modules inside it, each once, trainable or not.
# That is module 14's `parameter_bytes`: 4 bytes per float32 parameter; for a
# quantized layer 1 byte per int8 weight plus the float32 scales, the zero point
# and the float32 bias. No estimate: the numbers are the arrays' own `nbytes`.

# %%
#| export
def quantize_model(model, calibration_data, observer=MinMaxObserver, per_channel=True):
    """A new Sequential with every Linear/Conv2d replaced by its int8 version."""
    observers = calibrate(model, calibration_data, observer)
    layers = []
    for i, layer in enumerate(model.layers):
        if i in observers:
            quantized = QuantizedLinear if isinstance(layer, Linear) else QuantizedConv2d
            layer = quantized.from_float(layer, observers[i].qparams(), per_channel)
        layers.append(layer)
    return Sequential(*layers)


def model_bytes(model):
    """Bytes of every Tensor the model stores: weights, biases, scales, zero points."""
    if not isinstance(model, Module):
        raise TypeError(f"model_bytes expects a Module, got {type(model).__name__}")
    return parameter_bytes(model)

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
x = np.array([-1.0, -0.3, 0.0, 0.26, 2.0], np.float32)
scale, zero = qparams(x.min(), x.max())                 # asymmetric: [-1, 2] on 256 steps
q = quantize(x, scale, zero)
print("scale", scale, "zero point", zero, "q", q, "back", dequantize(q, scale, zero))
assert np.abs(dequantize(q, scale, zero) - x).max() <= scale / 2

from tinytorch.core.activations import ReLU

rng = np.random.default_rng(0)
model = Sequential(Linear(16, 32, seed=0), ReLU(), Linear(32, 4, seed=1))
batches = [rng.random((8, 16)).astype(np.float32) for _ in range(4)]
int8_model = quantize_model(model, batches)
print(int8_model)
print("bytes:", model_bytes(model), "->", model_bytes(int8_model))
x = Tensor(batches[0])
print("largest output difference:", np.abs(int8_model(x).data - model(x).data).max())
