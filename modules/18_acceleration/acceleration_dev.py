# %% [markdown]
# # Module 18: Acceleration
#
# The same arithmetic can take a thousand times longer or twice the memory
# depending on *how* it is written. This module takes four classic techniques and,
# for each, writes the computation twice: a naive version and a fast version that
# returns the same numbers. Then it **measures** the difference with module 14's
# `measure_latency` (time) and `memory_of` (peak memory), instead of claiming it:
#
# | technique | naive | fast |
# |---|---|---|
# | vectorization | Python loops over elements | one numpy call (C loops, SIMD, BLAS) |
# | tiling | scalar loops over cache-sized blocks | numpy blocks, and plain `@` (BLAS) |
# | fusion | `x @ W`, `+ b`, `relu`: a new array each | one buffer, updated in place |
# | memory layout | rows of a column-major (F) array | rows of a row-major (C) array |
#
# Not every "optimization" wins. Tiling in numpy is *slower* than `@`, because
# BLAS already tiles, in C, for this machine's caches; copying an array to a
# better layout costs a pass over it, so it pays only when the data is read
# again. The benchmark (`bench/acceleration.py`) prints what happened on your
# machine; the tests check only what is deterministic: equal results, and
# allocation sizes.

# %%
#| default_exp acceleration

# %%
#| export
"""Acceleration: naive and fast versions of the same computations (vectorization,
tiling, fusion, memory layout), with compare() measuring medians, speed-ups and peak
memory through tinytorch.profiling."""
import time
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.autograd import no_grad
from tinytorch.core.spatial import Conv2d, output_size
from tinytorch.core.tensor import Tensor, check_int
from tinytorch.profiling import (
    LatencyResult,
    format_seconds,
    format_table,
    measure_latency,
    memory_of,
)

# %% [markdown]
# ## Measuring a speed-up
#
# `compare(variants, args)` runs every variant on the same arguments and
#
# 1. **checks** that each returns what the first (the baseline, usually the naive
#    one) returns, within a tolerance: a fast version that is wrong is not an
#    optimization;
# 2. **times** each with `measure_latency`, in rounds: every round takes one
#    sample of every variant, so a burst of load from another program slows all
#    variants alike instead of ruining one of them (the warm-up calls all come
#    first);
# 3. optionally **traces** each call's peak memory with `memory_of`, in a
#    separate call, since tracing slows allocations down.
#
# The speed-up of a variant is `baseline median / its median`: 10.0 means ten
# times faster than the baseline, 0.5 twice as slow. Medians, not means: one
# sample slowed by the OS should not move the verdict.

# %%
#| export
@dataclass
class Comparison:
    """Measured latencies (and peak bytes) of variants of one computation."""
    results: dict        # name -> LatencyResult, in the order given; the first is the baseline
    peak_bytes: dict     # name -> peak bytes of one call (empty unless memory=True)

    @property
    def baseline(self):
        return next(iter(self.results))

    @property
    def medians(self):
        return {name: result.median for name, result in self.results.items()}

    @property
    def speedups(self):
        """name -> baseline median / median (> 1: faster than the baseline)."""
        base = self.results[self.baseline].median
        return {name: base / median for name, median in self.medians.items()}

    def table(self):
        rows = [{"variant": name, "median": result.median, "p90": result.p90,
                 "speedup": self.speedups[name]} for name, result in self.results.items()]
        columns = [("variant", "variant", str), ("median", "median", format_seconds),
                   ("p90", "p90", format_seconds),
                   (f"speed-up vs {self.baseline}", "speedup", "{:.2f}x".format)]
        if self.peak_bytes:
            for row in rows:
                row["peak"] = self.peak_bytes[row["variant"]]
            columns.append(("peak bytes", "peak", "{:,}".format))
        return format_table(rows, columns)

    __str__ = table


def _check_same(name, expected, got, rtol, atol):
    expected, got = np.asarray(expected), np.asarray(got)
    if expected.shape != got.shape:
        raise ValueError(f"compare: variant {name!r} returned shape {got.shape}, "
                         f"the baseline {expected.shape}")
    if not np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
        with np.errstate(invalid="ignore"):                # inf - inf in the report only
            worst = float(np.max(np.abs(got.astype(np.float64) - expected)))
        raise ValueError(f"compare: variant {name!r} differs from the baseline by up to "
                         f"{worst:.3g} (rtol={rtol}, atol={atol})")


def compare(variants, args=(), kwargs=None, warmup=2, repeats=10, number=1,
            timer=time.perf_counter, check=True, rtol=1e-4, atol=1e-5, memory=False):
    """Time each variant(*args, **kwargs) in interleaved rounds; speed-ups are relative
    to the first variant. check: outputs must match the first's; memory: trace peaks."""
    if not variants:
        raise ValueError("compare needs at least one variant")
    warmup = check_int("compare", "warmup", warmup, minimum=0)
    repeats = check_int("compare", "repeats", repeats)
    kwargs = kwargs or {}
    calls = {name: (lambda fn=fn: fn(*args, **kwargs)) for name, fn in variants.items()}
    if check:
        outputs = {name: call() for name, call in calls.items()}
        expected = outputs[next(iter(outputs))]
        for name, out in outputs.items():
            _check_same(name, expected, out, rtol, atol)
        del outputs, expected                    # not kept alive while timing and tracing
    for call in calls.values():                  # warm every variant up before timing any
        for _ in range(warmup):
            call()
    samples = {name: [] for name in calls}
    for _ in range(repeats):                     # one round: one sample of every variant
        for name, call in calls.items():
            one = measure_latency(call, warmup=0, repeats=1, number=number, timer=timer)
            samples[name] += one.samples
    results = {name: LatencyResult(samples=tuple(s), number=number) for name, s in samples.items()}
    for name, result in results.items():
        if result.median <= 0:
            raise ValueError(f"compare: variant {name!r} has a median time of "
                             f"{result.median} s; time more calls per sample (number=)")
    peaks = {name: memory_of(call).peak_bytes for name, call in calls.items()} if memory else {}
    return Comparison(results=results, peak_bytes=peaks)

# %% [markdown]
# ## 1. Vectorization
#
# A Python loop pays for every element: the interpreter fetches the bytecode,
# boxes the float into an object, looks up `*`, checks types, allocates the
# result. numpy does the same loop once, in C, over raw memory, often with SIMD
# instructions that process 4-16 numbers at once; matrix products go to BLAS,
# which also uses every core.
#
# Three computations, each naive and vectorized:
#
# - **matmul**: three nested loops (`n*m*k` Python multiply-adds); a middle step
#   that vectorizes only the inner two (`row @ b` per row); and `a @ b`.
# - **ReLU**: a list comprehension over every element vs `np.maximum(x, 0)`. The
#   loop writes `0 if v <= 0 else v`: a NaN is not `<= 0`, so it passes through,
#   as in `np.maximum`, and the two agree everywhere.
# - **conv2d**: a Python loop over every output value (each a small numpy dot
#   product, as in module 09's test reference) vs a vectorized version:
#   `sliding_window_view` gives every window as a view (no copy), and one
#   `tensordot` contracts channels and window with the filters. Module 09's
#   `Conv2d` (im2col + one matmul) is the same idea on Tensors.
#
# The loops run on Python lists (`tolist()`), the fastest plain-Python form:
# indexing a numpy array element by element would be even slower, which would
# flatter numpy.

# %%
#| export
def _check_matrices(name, a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"{name}: needs matrices (n, k) and (k, m), got shapes {a.shape} "
                         f"and {b.shape}")
    return a, b


def matmul_loops(a, b):
    """(n, k) @ (k, m) with three Python loops."""
    a, b = _check_matrices("matmul_loops", a, b)
    (n, k), m = a.shape, b.shape[1]
    rows, columns = a.tolist(), b.T.tolist()
    out = [[0.0] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            total = 0.0
            for p in range(k):
                total += rows[i][p] * columns[j][p]
            out[i][j] = total
    return np.array(out, dtype=np.result_type(a, b)).reshape(n, m)


def matmul_row_loop(a, b):
    """(n, k) @ (k, m) one row at a time: the inner two loops vectorized."""
    a, b = _check_matrices("matmul_row_loop", a, b)
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for i in range(a.shape[0]):
        out[i] = a[i] @ b
    return out


def matmul_vectorized(a, b):
    """(n, k) @ (k, m) in one call (BLAS)."""
    a, b = _check_matrices("matmul_vectorized", a, b)
    return a @ b


def relu_loops(x):
    """max(x, 0) element by element in Python (NaN stays NaN)."""
    x = np.asarray(x)
    values = [0 if v <= 0 else v for v in x.ravel().tolist()]
    return np.array(values, dtype=x.dtype).reshape(x.shape)


def relu_vectorized(x):
    """max(x, 0) in one numpy call (NaN stays NaN, as in relu_loops)."""
    x = np.asarray(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)

# %% [markdown]
# Both convolutions take plain arrays: images `(N, C, H, W)`, filters
# `(out, C, kh, kw)`, an optional bias `(out,)`, and `stride` / `padding` as an
# int or an `(h, w)` pair, with module 09's output size.

# %%
#| export
def _pair(value):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    return int(pair[0]), int(pair[1])


def _check_conv(name, x, weight, bias, stride, padding):
    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"{name}: needs images (N, C, H, W) and filters (out, C, kh, kw), "
                         f"got shapes {x.shape} and {weight.shape}")
    if bias is not None and np.shape(bias) != weight.shape[:1]:
        raise ValueError(f"{name}: bias must have shape {weight.shape[:1]}, "
                         f"got {np.shape(bias)}")
    (sh, sw), (ph, pw), (kh, kw) = _pair(stride), _pair(padding), weight.shape[2:]
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: stride must be >= 1 and padding >= 0, "
                         f"got {stride} and {padding}")
    if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
        raise ValueError(f"{name}: kernel {kh}x{kw} is larger than the padded input")
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_hw = (output_size(x.shape[2], kh, sh, ph), output_size(x.shape[3], kw, sw, pw))
    return padded, weight, (sh, sw), out_hw


def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    """Convolution (cross-correlation) with a Python loop over every output value."""
    padded, weight, (sh, sw), (ho, wo) = _check_conv("conv2d_loops", x, weight, bias,
                                                    stride, padding)
    n, out_c, (kh, kw) = padded.shape[0], weight.shape[0], weight.shape[2:]
    out = np.zeros((n, out_c, ho, wo), dtype=np.result_type(padded, weight))
    for b in range(n):
        for o in range(out_c):
            for i in range(ho):
                for j in range(wo):
                    window = padded[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[b, o, i, j] = np.sum(window * weight[o])
    return out if bias is None else out + np.asarray(bias)[:, None, None]


def conv2d_vectorized(x, weight, bias=None, stride=1, padding=0):
    """Convolution with every window as a view and one tensordot."""
    padded, weight, (sh, sw), _ = _check_conv("conv2d_vectorized", x, weight, bias,
                                             stride, padding)
    kh, kw = weight.shape[2:]
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    # windows (N, C, Ho, Wo, kh, kw) . weight (out, C, kh, kw) -> (N, Ho, Wo, out)
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    out = np.ascontiguousarray(out, dtype=np.result_type(padded, weight))
    return out if bias is None else out + np.asarray(bias)[:, None, None]


def conv2d_layer(weight, bias=None, stride=1, padding=0):
    """Module 09's Conv2d holding the given filters (out, C, kh, kw) and bias."""
    weight = np.asarray(weight)
    layer = Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride, padding,
                   bias=bias is not None)
    layer.weight.data = weight
    if bias is not None:
        layer.bias.data = np.asarray(bias)
    return layer


def conv2d_tinytorch(x, weight, bias=None, stride=1, padding=0):
    """Module 09's Conv2d (im2col + one matmul) on arrays, without recording a graph."""
    with no_grad():
        return conv2d_layer(weight, bias, stride, padding)(Tensor(x)).data

# %% [markdown]
# ## 2. Tiling (blocking)
#
# A matrix product reads each number many times. If `b` is much larger than the
# cache, the naive loop order streams all of `b` from main memory for every row of
# `a`. **Tiling** splits the matrices into `tile x tile` blocks small enough to
# stay in cache and multiplies block by block:
#
# `out[I, J] += a[I, P] @ b[P, J]` for every block row `I`, block column `J`,
# block `P` of the shared dimension.
#
# `tiled_matmul_loops` is how this looks in C: the block loops outside, scalar
# loops inside. In Python the scalar loops cost so much that the cache does not
# matter. `tiled_matmul` does each block product with numpy: fast, but `@` on the
# whole matrices is faster still, because BLAS already tiles (for registers, L1,
# L2 and L3, in C, on every core). The lesson: the best blocking is the one
# in the library, and we measure to see it.
#
# Edges need no special case: a slice past the end of an array is just shorter,
# so sizes that are not multiples of `tile` work, and an empty shared dimension
# leaves `out` at zero.

# %%
#| export
def tiled_matmul(a, b, tile=64):
    """a @ b computed block by block: out[I, J] += a[I, P] @ b[P, J] with numpy."""
    a, b = _check_matrices("tiled_matmul", a, b)
    tile = check_int("tiled_matmul", "tile", tile)
    (n, k), m = a.shape, b.shape[1]
    out = np.zeros((n, m), dtype=np.result_type(a, b))
    for i in range(0, n, tile):
        for j in range(0, m, tile):
            block = out[i:i + tile, j:j + tile]          # a view: += writes into out
            for p in range(0, k, tile):
                block += a[i:i + tile, p:p + tile] @ b[p:p + tile, j:j + tile]
    return out


def tiled_matmul_loops(a, b, tile=16):
    """a @ b with the blocking of tiled_matmul, scalar Python loops inside each block."""
    a, b = _check_matrices("tiled_matmul_loops", a, b)
    tile = check_int("tiled_matmul", "tile", tile)
    (n, k), m = a.shape, b.shape[1]
    rows, cols = a.tolist(), b.tolist()
    out = [[0.0] * m for _ in range(n)]
    for i0 in range(0, n, tile):
        for j0 in range(0, m, tile):
            for p0 in range(0, k, tile):
                for i in range(i0, min(i0 + tile, n)):
                    a_row, out_row = rows[i], out[i]
                    for j in range(j0, min(j0 + tile, m)):
                        total = out_row[j]
                        for p in range(p0, min(p0 + tile, k)):
                            total += a_row[p] * cols[p][j]
                        out_row[j] = total
    return np.array(out, dtype=np.result_type(a, b)).reshape(n, m)

# %% [markdown]
# ## 3. Fusion
#
# `relu(x @ W + b)` written as three numpy expressions creates three arrays the
# size of the output: `x @ W`, then `(x @ W) + b` while the first still exists,
# then `relu(...)` while the second still exists. The peak is two outputs, and
# each step reads and writes the whole array again.
#
# **Fusing** the steps means writing each result into the same buffer:
# `np.matmul(x, W, out=buf)`, `buf += b`, `np.maximum(buf, 0, out=buf)`. One
# array; zero new arrays if the caller passes a buffer it reuses every batch. (A
# GPU kernel fuses further, doing all three in one pass; numpy cannot, but the
# memory saving is already real, and `tracemalloc` measures it exactly.)
#
# Time is another matter: when the matmul dominates (it does `2*n*k*m` FLOPs, the
# other steps `n*m` each), skipping two passes over the output barely shows; the
# benchmark reports what it measured either way.
#
# Measuring shows one more allocation: the in-place `buf += b` (broadcasting `b`
# over the rows) makes numpy's ufunc machinery use a fixed work buffer of 8192
# elements, 32 KiB for float32, whatever the size of the arrays.

# %%
#| export
def _check_linear(name, x, weight, bias):
    x, weight, bias = np.asarray(x), np.asarray(weight), np.asarray(bias)
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[0] \
            or bias.shape != weight.shape[1:]:
        raise ValueError(f"{name}: needs x (n, k), weight (k, m), bias (m,), got shapes "
                         f"{x.shape}, {weight.shape}, {bias.shape}")
    return x, weight, bias


def linear_relu(x, weight, bias):
    """relu(x @ weight + bias), one new array per step."""
    x, weight, bias = _check_linear("linear_relu", x, weight, bias)
    z = x @ weight              # array 1
    z = z + bias                # array 2, while array 1 is still alive
    return np.maximum(z, 0)     # array 3, while array 2 is still alive


def fused_linear_relu(x, weight, bias, out=None):
    """relu(x @ weight + bias) computed in one buffer (out, if given, is reused)."""
    x, weight, bias = _check_linear("fused_linear_relu", x, weight, bias)
    shape = (x.shape[0], weight.shape[1])
    if out is not None and out.shape != shape:
        raise ValueError(f"fused_linear_relu: out must have shape {shape}, got {out.shape}")
    out = np.matmul(x, weight, out=out)
    out += bias
    np.maximum(out, 0, out=out)
    return out

# %% [markdown]
# ## 4. Memory layout
#
# A 2-D array is one line of memory. **C order** (row-major, numpy's default)
# stores row 0, then row 1; **F order** (column-major, Fortran's) stores column 0,
# then column 1. `x.T` of a C array is an F array: a view, no copy.
#
# Reading along the stored order uses every byte of each 64-byte cache line the
# CPU fetches. Reading across it (a row of an F array) uses 4 bytes of each line
# and throws the rest away. `row_sums` reads one row at a time, the pattern of
# any loop over rows (samples in a batch, tokens in a sequence).
#
# `np.ascontiguousarray` copies to C order (and returns a C array unchanged, for
# free). The copy itself reads the array across its order once, so it pays off
# only when the rows are read more than once: `row_sums_contiguous` pays it every
# call; convert once and reuse is the real technique. numpy's own vectorized
# reductions (`x.sum(axis=1)`) pick their loop order to suit the layout, so the
# difference mostly hits code that loops.

# %%
#| export
def row_sums(x):
    """The sum of each row of a 2-D array, one row at a time."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"row_sums: needs a 2-D array, got shape {x.shape}")
    return np.array([row.sum() for row in x], dtype=x.dtype).reshape(x.shape[0])


def row_sums_contiguous(x):
    """row_sums after copying x to C order (no copy if it already is)."""
    return row_sums(np.ascontiguousarray(x))

# %% [markdown]
# ## Each technique, measured
#
# One function per technique builds seeded float32 inputs of the given size and
# returns `compare(...)` of its variants, naive first. Keyword arguments (`repeats`,
# `number`, `timer`, ...) go to `compare`. `bench/acceleration.py` runs them all
# at realistic sizes.

# %%
#| export
def _random(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _sum_atol(k):
    """Absolute tolerance for float32 sums of k products of standard-normal numbers,
    whose rounding error grows with k and depends on the summation order."""
    return 8 * float(np.finfo(np.float32).eps) * max(k, 1)


def compare_matmul(n=64, seed=0, **timing):
    rng = np.random.default_rng(seed)
    a, b = _random(rng, n, n), _random(rng, n, n)
    timing.setdefault("atol", _sum_atol(n))
    return compare({"loops": matmul_loops, "row loop": matmul_row_loop,
                    "numpy @": matmul_vectorized}, (a, b), **timing)


def compare_relu(size=100_000, seed=0, **timing):
    x = _random(np.random.default_rng(seed), size)
    return compare({"loops": relu_loops, "numpy": relu_vectorized}, (x,), **timing)


def compare_conv2d(batch=32, in_channels=1, out_channels=8, size=8, kernel=3, padding=1,
                   seed=0, **timing):
    rng = np.random.default_rng(seed)
    x = _random(rng, batch, in_channels, size, size)
    weight = _random(rng, out_channels, in_channels, kernel, kernel)
    bias = _random(rng, out_channels)
    timing.setdefault("atol", _sum_atol(in_channels * kernel * kernel))
    layer = conv2d_layer(weight, bias, 1, padding)      # built once, outside the timing

    def tinytorch_conv(x, weight, bias, padding):
        with no_grad():
            return layer(Tensor(x)).data
    return compare({"loops": conv2d_loops, "sliding windows": conv2d_vectorized,
                    "tinytorch Conv2d": tinytorch_conv}, (x, weight, bias),
                   {"padding": padding}, **timing)


def compare_tiling(n=512, tile=64, loops=False, seed=0, **timing):
    """tiled_matmul (and, if loops=True, tiled_matmul_loops first) against a @ b."""
    rng = np.random.default_rng(seed)
    a, b = _random(rng, n, n), _random(rng, n, n)
    timing.setdefault("atol", _sum_atol(n))
    variants = {"tiled loops": lambda a, b: tiled_matmul_loops(a, b, tile)} if loops else {}
    variants.update({"tiled numpy": lambda a, b: tiled_matmul(a, b, tile),
                     "numpy @": matmul_vectorized})
    return compare(variants, (a, b), **timing)


def compare_fusion(batch=256, in_features=512, out_features=512, seed=0, **timing):
    """linear_relu vs fused_linear_relu (new buffer, and a reused one); memory traced."""
    rng = np.random.default_rng(seed)
    x, weight = _random(rng, batch, in_features), _random(rng, in_features, out_features)
    bias = _random(rng, out_features)
    buffer = np.empty((batch, out_features), dtype=np.float32)
    timing.setdefault("atol", _sum_atol(in_features))
    variants = {"unfused": linear_relu, "fused": fused_linear_relu,
                "fused, reused buffer": lambda x, w, b: fused_linear_relu(x, w, b, out=buffer)}
    return compare(variants, (x, weight, bias), memory=True, **timing)


def compare_layout(rows=1000, cols=10_000, seed=0, **timing):
    """row_sums of an F-order array, of the same values in C order, and with the copy."""
    c_order = _random(np.random.default_rng(seed), rows, cols)
    f_order = np.asfortranarray(c_order)
    variants = {"F order": lambda: row_sums(f_order), "C order": lambda: row_sums(c_order),
                "F -> ascontiguousarray": lambda: row_sums_contiguous(f_order)}
    return compare(variants, **timing)

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
rng = np.random.default_rng(0)
a, b = rng.standard_normal((70, 50)), rng.standard_normal((50, 30))
assert np.allclose(matmul_loops(a, b), a @ b) and np.allclose(tiled_matmul(a, b, 16), a @ b)
x, w, bias = rng.standard_normal((8, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
assert np.allclose(fused_linear_relu(x, w, bias), linear_relu(x, w, bias))
print(compare_matmul(n=32, repeats=3))
print(compare_fusion(batch=64, repeats=3))
