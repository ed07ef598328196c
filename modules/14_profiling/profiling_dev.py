# %% [markdown]
# # Module 14: Profiling
#
# Before making a model smaller (quantization, compression) or faster
# (acceleration) we must know where its size and time go. A profiler answers four
# questions, each with a number you can check:
#
# | question | how we get it | exact or measured |
# |---|---|---|
# | How many parameters? | count the tensors stored on the modules | exact |
# | How much arithmetic? | FLOP formulas, walking the layers shape by shape | exact (a convention) |
# | How much memory? | parameter bytes; `tracemalloc` peak of a forward pass | exact / measured |
# | How long does it take? | `time.perf_counter` around many calls, then statistics | measured |
#
# The last row is the only one that changes from run to run, so it is reported as
# a distribution (median, percentiles), never as a single number. Everything a
# later module reports about speed-ups and sizes comes from these tools.

# %%
#| default_exp profiling

# %%
#| export
"""Profiling: parameter counts, FLOPs (exact formulas), memory (parameter bytes and
tracemalloc peaks) and latency (perf_counter statistics), per layer and per model."""
import functools
import gc
import math
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d, output_size
from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Counting parameters
#
# A module's parameters are the Tensors stored on it or on the modules inside it
# (module 03's `Module.parameters()` walks the same attributes). We walk them
# here ourselves because `parameters()` returns only the *trainable* ones
# (`requires_grad=True`): a frozen weight, or the int8 weights of a quantized
# layer, still take memory and must be counted.
#
# Each tensor is counted once, even if two layers share it. `named_tensors` names
# each by its attribute path (`layers.0.weight`), like PyTorch's `named_parameters`.

# %%
#| export
def named_tensors(module, prefix=""):
    """[(dotted attribute path, Tensor)] for every Tensor stored on module and the
    modules inside it, each tensor once (first name wins)."""
    found, seen = [], set()

    def walk(value, name):
        if isinstance(value, Tensor):
            if id(value) not in seen:
                seen.add(id(value))
                found.append((name, value))
        elif isinstance(value, Module):
            for attr, item in vars(value).items():
                walk(item, f"{name}.{attr}" if name else attr)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{name}.{i}" if name else str(i))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else str(key))

    walk(module, prefix)
    return found


class ParameterCount(NamedTuple):
    total: int       # every number stored in the model's tensors
    trainable: int   # those with requires_grad=True (what an optimizer updates)


def count_parameters(model):
    """ParameterCount(total, trainable) of a module (0, 0 for a parameter-free layer)."""
    tensors = [t for _, t in named_tensors(model)]
    return ParameterCount(total=sum(t.size for t in tensors),
                          trainable=sum(t.size for t in tensors if t.requires_grad))

# %% [markdown]
# ## The layers of a model
#
# Profiling a model means profiling its layers in the order the data flows
# through them. For a `Sequential` that order is its list; a `Sequential` inside a
# `Sequential` is opened up, and its layers get dotted names (`2.0`, `2.1`), as in
# PyTorch. Anything else is treated as a one-layer model named `0`.

# %%
#| export
def leaf_layers(model, prefix=""):
    """[(name, layer)] in forward order, nested Sequentials opened up."""
    if not isinstance(model, Sequential):
        return [(prefix or "0", model)]
    found = []
    for i, layer in enumerate(model.layers):
        name = f"{prefix}.{i}" if prefix else str(i)
        found += leaf_layers(layer, name) if isinstance(layer, Sequential) else [(name, layer)]
    return found


def parameters_by_layer(model):
    """{layer name: ParameterCount} for every layer of the model, in forward order."""
    return {name: count_parameters(layer) for name, layer in leaf_layers(model)}

# %% [markdown]
# ## FLOPs: exact formulas
#
# A FLOP here is one floating-point add, multiply, compare or divide. The
# convention, stated once and used everywhere (tests assert it exactly):
#
# - **Linear** `(B, in) -> (B, out)`: each of the `B * out` outputs is a dot
#   product of length `in`: `in` multiplies and `in` adds (the first add is the
#   accumulator's `0 + ...`; counting it keeps the formula clean). So
#   `2 * B * in * out`, plus `B * out` for the bias. Extra leading axes, like
#   `(B, T, in)`, count as batch: `B` is the product of all but the last axis.
# - **Conv2d**: each of the `B * out_c * H_out * W_out` outputs is a dot product of
#   length `in_c * kh * kw`: `2 * B * out_c * H_out * W_out * in_c * kh * kw`,
#   plus `B * out_c * H_out * W_out` for the bias. (Padding zeros are counted, as
#   the matmul of module 09 really multiplies them.)
# - **MaxPool2d**: `kh * kw - 1` comparisons per output value.
# - **AvgPool2d**: `kh * kw - 1` adds and one divide per output value: `kh * kw`.
# - **ReLU, Sigmoid, Tanh, GELU**: 1 per element. (A `tanh` costs many more
#   instructions than a `max`; how many depends on the hardware, so we do not
#   pretend to know.) **Softmax, LogSoftmax**: 3 per element (exp, add into the
#   sum, divide or subtract).
# - **Flatten**: 0 (a reshape). **Dropout**: 0 in eval mode (the identity), 1 per
#   element while training (the mask multiply).
#
# **Attention** (module 12) gets a formula on shapes, since it is usually not a
# plain layer in a `Sequential`. With `B` sequences of `T` tokens, width `C` and
# `h` heads of size `d = C / h`, each head computes `Q K^T`, `(T, d) @ (d, T)`,
# and `weights V`, `(T, T) @ (T, d)`: each `2 * T * T * d`. Over all heads that
# is `2 * B * T^2 * C` each: **the number of heads does not change the count**, it
# only splits the same work. The four `C -> C` projections (Q, K, V, output) are
# Linear layers. The softmax and the `1/sqrt(d)` scaling (`O(B h T^2)`, a factor
# `d` smaller) are not counted.

# %%
#| export
def linear_flops(batch, in_features, out_features, bias=True):
    """2*B*in*out multiply-adds (+ B*out bias adds)."""
    return 2 * batch * in_features * out_features + (batch * out_features if bias else 0)


def conv2d_flops(batch, in_channels, out_channels, out_height, out_width, kernel_h, kernel_w,
                 bias=True):
    """2*B*out_c*H_out*W_out*in_c*kh*kw (+ B*out_c*H_out*W_out bias adds)."""
    outputs = batch * out_channels * out_height * out_width
    return 2 * outputs * in_channels * kernel_h * kernel_w + (outputs if bias else 0)


def attention_flops(batch, seq_len, embed_dim, heads, projections=True, bias=True):
    """Q K^T and weights @ V over all heads (2*B*T*T*C each), plus the four C->C
    projections (Q, K, V, output) when projections=True. Softmax is not counted."""
    if heads < 1 or embed_dim % heads:
        raise ValueError(f"attention_flops: {heads} heads do not divide embed_dim {embed_dim}")
    head_dim = embed_dim // heads
    scores = 2 * batch * heads * seq_len * seq_len * head_dim    # (T, d) @ (d, T) per head
    mixing = 2 * batch * heads * seq_len * seq_len * head_dim    # (T, T) @ (T, d) per head
    total = scores + mixing
    if projections:
        total += 4 * linear_flops(batch * seq_len, embed_dim, embed_dim, bias)
    return total

# %% [markdown]
# ## Walking a model shape by shape
#
# The FLOPs of a layer depend on the shape of its input, and the input of layer
# `i` is the output of layer `i - 1`. So each layer gets a *cost rule*
# `rule(layer, input_shape) -> (output_shape, flops)`, and `model_flops` threads
# the shape through the rules, without running the model at all.
#
# `LAYER_COSTS` maps layer classes to rules; a subclass uses its parent's rule.
# A later module with a layer of its own adds a rule:
# `LAYER_COSTS[MyLayer] = my_rule`. A layer with no rule is an error that names
# it: a profiler that silently counted it as 0 would report a wrong total.

# %%
#| export
def _batch_size(shape):
    return math.prod(shape[:-1])


def _linear_cost(layer, shape):
    if len(shape) == 0 or shape[-1] != layer.in_features:
        raise ValueError(f"{layer!r} expects inputs whose last axis is {layer.in_features}, "
                         f"got shape {shape}")
    out_shape = (*shape[:-1], layer.out_features)
    return out_shape, linear_flops(_batch_size(shape), layer.in_features, layer.out_features,
                                   layer.bias is not None)


def _window_output(layer, shape, kernel, stride, padding, channels=None):
    """(N, C, H_out, W_out) for a window layer, after checking the input shape."""
    if len(shape) != 4:
        raise ValueError(f"{layer!r} expects (N, C, H, W) inputs, got shape {shape}")
    n, c, h, w = shape
    if channels is not None and c != channels:
        raise ValueError(f"{layer!r} expects {channels} input channels, got shape {shape}")
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f"{layer!r}: kernel {kh}x{kw} is larger than the {h}x{w} input")
    return n, c, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)


def _conv2d_cost(layer, shape):
    n, _, ho, wo = _window_output(layer, shape, layer.kernel_size, layer.stride, layer.padding,
                                  layer.in_channels)
    flops = conv2d_flops(n, layer.in_channels, layer.out_channels, ho, wo, *layer.kernel_size,
                         bias=layer.bias is not None)
    return (n, layer.out_channels, ho, wo), flops


def _pool_cost(per_output):
    def rule(layer, shape):
        out_shape = _window_output(layer, shape, layer.kernel_size, layer.stride, (0, 0))
        kh, kw = layer.kernel_size
        return out_shape, math.prod(out_shape) * per_output(kh * kw)
    return rule


def _elementwise_cost(per_element):
    def rule(layer, shape):
        return tuple(shape), per_element * math.prod(shape)
    return rule


def _flatten_cost(layer, shape):
    if len(shape) < 1:
        raise ValueError(f"Flatten needs a batch axis, got shape {shape}")
    return (shape[0], math.prod(shape[1:])), 0


def _dropout_cost(layer, shape):
    active = layer.training and layer.p > 0
    return tuple(shape), math.prod(shape) if active else 0


LAYER_COSTS = {
    Linear: _linear_cost,
    Conv2d: _conv2d_cost,
    MaxPool2d: _pool_cost(lambda window: window - 1),
    AvgPool2d: _pool_cost(lambda window: window),
    ReLU: _elementwise_cost(1),
    Sigmoid: _elementwise_cost(1),
    Tanh: _elementwise_cost(1),
    GELU: _elementwise_cost(1),
    Softmax: _elementwise_cost(3),
    LogSoftmax: _elementwise_cost(3),
    Flatten: _flatten_cost,
    Dropout: _dropout_cost,
}


def _check_shape(shape):
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ValueError(f"an input shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(s) for s in shape)


def layer_flops(layer, input_shape):
    """(output_shape, flops) of one layer on inputs of input_shape."""
    shape = _check_shape(input_shape)
    for cls in type(layer).__mro__:
        if cls in LAYER_COSTS:
            return LAYER_COSTS[cls](layer, shape)
    known = ", ".join(sorted(cls.__name__ for cls in LAYER_COSTS))
    raise TypeError(f"no FLOP rule for layer type {type(layer).__name__}; known: {known} "
                    f"(add one with LAYER_COSTS[{type(layer).__name__}] = rule)")


def model_flops(model, input_shape):
    """Total FLOPs of one forward pass on inputs of input_shape (batch axis included)."""
    shape, total = _check_shape(input_shape), 0
    for name, layer in leaf_layers(model):
        try:
            shape, flops = layer_flops(layer, shape)
        except (TypeError, ValueError) as error:
            raise type(error)(f"layer {name}: {error}") from None
        total += flops
    return total

# %% [markdown]
# ## Memory
#
# **Parameters** take `size * itemsize` bytes each: 4 per float32 value, 1 per
# int8 value (module 15). Exact, no measurement needed.
#
# **Activations** (the arrays a forward pass creates) are harder: temporaries
# come and go, and what matters is the *peak*, the most memory held at any one
# moment. Python's `tracemalloc` records every allocation, numpy arrays included
# (numpy reports its buffers to it), so `memory_of(fn)` can report:
#
# - `peak_bytes`: the most memory `fn` held at once above what existed before;
# - `retained_bytes`: what is still held when it returns (typically its result).
#
# Tracing slows every allocation down, so time and memory are never measured in
# the same run. `memory_of` resets tracemalloc's peak, so calls cannot be nested.

# %%
#| export
def parameter_bytes_by_dtype(model):
    """{dtype name: bytes} of every tensor stored in the model."""
    found = {}
    for _, tensor in named_tensors(model):
        name = tensor.dtype.name
        found[name] = found.get(name, 0) + tensor.data.nbytes
    return found


def parameter_bytes(model):
    """Bytes of every tensor stored in the model (4 per float32 value)."""
    return sum(parameter_bytes_by_dtype(model).values())


class MemoryResult(NamedTuple):
    peak_bytes: int       # most memory held at once during the call (above the start)
    retained_bytes: int   # memory still held after it returned (e.g. its result)
    value: object         # what the call returned


def memory_of(fn, *args, **kwargs):
    """Call fn(*args, **kwargs) under tracemalloc: MemoryResult(peak, retained, value)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        value = fn(*args, **kwargs)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return MemoryResult(peak_bytes=peak - before, retained_bytes=after - before, value=value)


def activation_memory(model, x):
    """MemoryResult of one inference forward pass (no graph recorded) of model on x."""
    with no_grad():
        return memory_of(model, x)

# %% [markdown]
# ## Latency
#
# One timing is noise: the OS schedules another process, a cache is cold, the
# garbage collector runs. So `measure_latency` follows `timeit`:
#
# 1. **warm up**: a few untimed calls (caches filled, lazy setup done);
# 2. **repeat**: `repeats` samples, each timing `number` back-to-back calls with
#    `time.perf_counter` (the highest-resolution clock) and dividing by
#    `number`, so very fast functions are timed over enough calls to measure;
# 3. the garbage collector is off while timing, as in `timeit`.
#
# The result keeps the raw samples and reports their distribution: the
# **median** (robust to the odd slow sample; what we compare), mean, standard
# deviation, min, max and percentiles (p90, p99: the tail a user waits for).
#
# The clock is a parameter (`timer=`). The tests pass a fake clock that returns
# chosen times, which checks the statistics exactly without sleeping.

# %%
#| export
@dataclass(frozen=True)
class LatencyResult:
    """Seconds per call of repeated timings; statistics computed from the raw samples."""
    samples: tuple   # seconds per call, one per repeat
    number: int      # calls timed together in each sample

    def percentile(self, q):
        return float(np.percentile(self.samples, q))

    @property
    def median(self):
        return self.percentile(50)

    p50 = median

    @property
    def p90(self):
        return self.percentile(90)

    @property
    def p99(self):
        return self.percentile(99)

    @property
    def mean(self):
        return statistics.fmean(self.samples)

    @property
    def stdev(self):
        """Sample standard deviation (0.0 for a single sample)."""
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    @property
    def min(self):
        return min(self.samples)

    @property
    def max(self):
        return max(self.samples)

    def __str__(self):
        return (f"median {format_seconds(self.median)} (p90 {format_seconds(self.p90)}, "
                f"min {format_seconds(self.min)}, {len(self.samples)} x {self.number} calls)")


def measure_latency(fn, warmup=3, repeats=20, number=1, timer=time.perf_counter):
    """Time fn() `repeats` times (each sample: `number` calls, divided by number)."""
    if not callable(fn):
        raise TypeError(f"measure_latency needs a callable, got {type(fn).__name__}")
    warmup = check_int("measure_latency", "warmup", warmup, minimum=0)
    repeats = check_int("measure_latency", "repeats", repeats)
    number = check_int("measure_latency", "number", number)
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        samples = []
        for _ in range(repeats):
            start = timer()
            for _ in range(number):
                fn()
            samples.append((timer() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return LatencyResult(samples=tuple(samples), number=number)

# %% [markdown]
# ## Reading numbers
#
# Small helpers so tables read like `12.3 us` and `1,234,567` rather than
# `1.2345e-05` and `1234567`.

# %%
#| export
def format_seconds(seconds):
    """1.5e-05 -> '15.0 us', 0.25 -> '250.0 ms'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        # also take this unit when the next smaller one would show 1000.0 after
        # rounding to the one decimal shown: 0.0009999999 s is "1.0 ms", not "1000.0 us"
        if abs(seconds) >= scale or round(abs(seconds) / scale * 1000, 1) >= 1000:
            return f"{seconds / scale:.1f} {unit}"
    return f"{seconds / 1e-9:.1f} ns"


def format_table(rows, columns):
    """Aligned text: columns is [(header, key, formatter)]; numbers are right-aligned."""
    cells = [[header for header, _, _ in columns]]
    cells += [[fmt(row[key]) for _, key, fmt in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    right = [isinstance(rows[0][key], (int, float)) if rows else False for _, key, _ in columns]

    def render(line):
        return "  ".join(cell.rjust(w) if r else cell.ljust(w)
                         for cell, w, r in zip(line, widths, right)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(cells[0]), rule] + [render(line) for line in cells[1:]])

# %% [markdown]
# ## Profiling a whole model
#
# `profile_model` puts it all together for every layer of a `Sequential`: the
# output shape and FLOPs from the rules (and the real output shape is checked
# against them), the parameters, the measured median latency and the measured
# activation peak, each layer fed the real output of the previous one.
#
# It profiles **inference**: the passes run under `no_grad()`, so no graph is
# kept and memory is what a deployed model needs. Each layer is timed first (the
# warm-up also fills caches such as module 09's window indices), then its memory
# is traced in a separate call. The whole model is timed and traced once more,
# so you can compare the sum of the parts with the whole.
#
# The input is either a sample (a Tensor or array) or a shape, batch axis
# included, for which a seeded standard-normal float32 batch is drawn.

# %%
#| export
PROFILE_COLUMNS = [
    ("layer", "name", str),
    ("type", "type", str),
    ("output shape", "output_shape", str),
    ("params", "params", "{:,}".format),
    ("FLOPs", "flops", "{:,}".format),
    ("latency", "latency", format_seconds),
    ("act. peak B", "activation_bytes", "{:,}".format),
]


@dataclass
class Profile:
    """Per-layer rows (dicts) plus whole-model measurements; str() is the table."""
    input_shape: tuple
    rows: list
    model_latency: LatencyResult
    model_memory: MemoryResult

    @property
    def total_params(self):
        return sum(row["params"] for row in self.rows)

    @property
    def total_flops(self):
        return sum(row["flops"] for row in self.rows)

    @property
    def total_latency(self):
        """Sum of the per-layer medians (compare with model_latency.median)."""
        return sum(row["latency"] for row in self.rows)

    def table(self):
        total = {"name": "total", "type": "", "output_shape": "", "params": self.total_params,
                 "flops": self.total_flops, "latency": self.total_latency,
                 "activation_bytes": max((r["activation_bytes"] for r in self.rows), default=0)}
        return (f"input {self.input_shape}\n" + format_table(self.rows + [total], PROFILE_COLUMNS)
                + f"\nwhole model: {self.model_latency}, "
                  f"peak {self.model_memory.peak_bytes:,} B")

    __str__ = table


def sample_input(sample, seed=0):
    """A Tensor from a Tensor, an array, or a shape (seeded standard normal, float32)."""
    if isinstance(sample, Tensor):
        return sample
    if isinstance(sample, np.ndarray):
        return Tensor(sample)
    shape = _check_shape(sample)
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def profile_model(model, sample, warmup=2, repeats=10, number=1, timer=time.perf_counter,
                  seed=0):
    """Profile every layer of model on sample (a Tensor, an array or an input shape)."""
    x = first = sample_input(sample, seed)
    timing = dict(warmup=warmup, repeats=repeats, number=number, timer=timer)
    rows = []
    with no_grad():
        for name, layer in leaf_layers(model):
            try:
                out_shape, flops = layer_flops(layer, x.shape)
            except (TypeError, ValueError) as error:
                raise type(error)(f"layer {name}: {error}") from None
            latency = measure_latency(functools.partial(layer, x), **timing)
            memory = memory_of(layer, x)
            y = memory.value
            if y.shape != out_shape:
                raise RuntimeError(f"layer {name} ({type(layer).__name__}) returned shape "
                                   f"{y.shape}, its FLOP rule predicted {out_shape}")
            rows.append({"name": name, "type": type(layer).__name__, "output_shape": y.shape,
                         "params": count_parameters(layer).total, "flops": flops,
                         "latency": latency.median, "activation_bytes": memory.peak_bytes,
                         "output_bytes": y.data.nbytes})
            x = y
        model_latency = measure_latency(functools.partial(model, first), **timing)
        model_memory = memory_of(model, first)
    return Profile(input_shape=first.shape, rows=rows, model_latency=model_latency,
                   model_memory=model_memory)

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
cnn = Sequential(Conv2d(1, 8, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                 Linear(8 * 4 * 4, 10, seed=0))
print(count_parameters(cnn))                                # 80 + 1290 = 1370
assert model_flops(cnn, (32, 1, 8, 8)) == (2 * 32 * 8 * 64 * 9 + 32 * 8 * 64   # conv
                                           + 32 * 8 * 64                        # relu
                                           + 32 * 8 * 16 * 3                    # max pool
                                           + 2 * 32 * 128 * 10 + 32 * 10)       # linear
assert parameter_bytes(cnn) == 4 * count_parameters(cnn).total
print(profile_model(cnn, (32, 1, 8, 8)))
print(measure_latency(lambda: np.ones((256, 256)) @ np.ones((256, 256)), repeats=10))
print(attention_flops(batch=1, seq_len=128, embed_dim=256, heads=4))
