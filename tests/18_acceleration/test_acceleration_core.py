"""Module 18 core: every fast version returns what its naive version returns (several
shapes, edge shapes included), fused ops allocate less (traced, deterministic), and
compare() turns timings into exact speed-ups (checked with a fake clock)."""
import inspect

import numpy as np
import pytest

from tinytorch.acceleration import (
    Comparison,
    compare,
    conv2d_loops,
    conv2d_tinytorch,
    conv2d_vectorized,
    fused_linear_relu,
    linear_relu,
    matmul_loops,
    matmul_row_loop,
    matmul_vectorized,
    relu_loops,
    relu_vectorized,
    row_sums,
    row_sums_contiguous,
    tiled_matmul,
    tiled_matmul_loops,
)
from tinytorch.profiling import LatencyResult, memory_of

API = ["Comparison", "compare", "matmul_loops", "matmul_row_loop", "matmul_vectorized",
       "relu_loops", "relu_vectorized", "conv2d_loops", "conv2d_vectorized", "conv2d_layer",
       "conv2d_tinytorch",
       "tiled_matmul", "tiled_matmul_loops", "linear_relu", "fused_linear_relu", "row_sums",
       "row_sums_contiguous", "compare_matmul", "compare_relu", "compare_conv2d",
       "compare_tiling", "compare_fusion", "compare_layout"]

MATMUL_SHAPES = [((1, 1), (1, 1)), ((3, 4), (4, 2)), ((7, 5), (5, 9)), ((70, 50), (50, 30)),
                 ((0, 3), (3, 2)), ((3, 0), (0, 2)), ((2, 3), (3, 0)), ((1, 17), (17, 1))]


def clock_for(durations):
    """A fake timer whose start/stop readings differ by exactly `durations` (integers)."""
    times, now = [], 0
    for d in durations:
        times += [now, now + d]
        now += d + 3
    return iter(times).__next__


# ---- vectorization -----------------------------------------------------------------------

@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul_versions_agree(rng, shape_a, shape_b):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    expected = a @ b
    for version in (matmul_loops, matmul_row_loop, matmul_vectorized):
        got = version(a, b)
        assert got.shape == expected.shape and got.dtype == np.float64, version.__name__
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_matmul_of_integers_is_exact():
    a = np.arange(12).reshape(3, 4)
    b = np.arange(8).reshape(4, 2) - 3
    for version in (matmul_loops, matmul_row_loop, tiled_matmul, tiled_matmul_loops):
        got = version(a, b)
        assert got.dtype == a.dtype and np.array_equal(got, a @ b), version.__name__


def test_float32_stays_float32(rng):
    a = rng.standard_normal((6, 5)).astype(np.float32)
    for version in (matmul_loops, matmul_row_loop, matmul_vectorized, tiled_matmul,
                    tiled_matmul_loops):
        assert version(a, a.T).dtype == np.float32, version.__name__
    assert relu_loops(a).dtype == relu_vectorized(a).dtype == np.float32


@pytest.mark.parametrize("shape", [(), (1,), (0,), (5,), (3, 4, 5), (1000,)])
def test_relu_versions_agree(rng, shape):
    x = rng.standard_normal(shape)
    expected = np.maximum(x, 0)
    for version in (relu_loops, relu_vectorized):
        got = version(x)
        assert got.shape == x.shape
        np.testing.assert_array_equal(got, expected)


def test_relu_by_hand():
    x = np.array([[-2.0, 0.0, 3.5], [np.nan, -0.5, 1e30]])
    expected = np.array([[0.0, 0.0, 3.5], [np.nan, 0.0, 1e30]])
    np.testing.assert_array_equal(relu_loops(x), expected)         # NaN == NaN here
    np.testing.assert_array_equal(relu_vectorized(x), expected)
    assert relu_loops(np.array([-3, 4], dtype=np.int8)).tolist() == [0, 4]


CONV_CASES = [  # x shape, weight shape, stride, padding
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1),
    ((1, 1, 5, 5), (2, 1, 3, 3), 2, 0),
    ((3, 2, 7, 6), (5, 2, 3, 2), (2, 1), (1, 0)),
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0),
    ((2, 4, 6, 6), (3, 4, 6, 6), 1, 0),                 # kernel = image: one output pixel
    ((2, 3, 4, 4), (2, 3, 1, 1), 1, 0),                 # 1x1 convolution
    ((0, 2, 5, 5), (3, 2, 3, 3), 1, 1),                 # empty batch
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_versions_agree(rng, x_shape, w_shape, stride, padding):
    x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    bias = rng.standard_normal(w_shape[0])
    expected = conv2d_loops(x, weight, bias, stride, padding)
    got = conv2d_vectorized(x, weight, bias, stride, padding)
    assert got.shape == expected.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # module 09's layer computes in float32 (Tensor's default)
    np.testing.assert_allclose(conv2d_tinytorch(x, weight, bias, stride, padding), expected,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv2d_vectorized(x, weight, None, stride, padding),
                               conv2d_loops(x, weight, None, stride, padding), rtol=1e-12,
                               atol=1e-12)


def test_conv2d_by_hand():
    # a 3x3 sum filter on a 4x4 image of ones with padding 1: corners 4, edges 6, inside 9
    x, weight = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], float)
    for version in (conv2d_loops, conv2d_vectorized, conv2d_tinytorch):
        assert np.array_equal(version(x, weight, padding=1)[0, 0], expected), version.__name__
    assert np.array_equal(conv2d_vectorized(x, weight, np.array([0.5]), 2, 1)[0, 0],
                          [[4.5, 6.5], [6.5, 9.5]])


# ---- tiling ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
@pytest.mark.parametrize("tile", [1, 4, 16, 64])
def test_tiled_matmul_equals_matmul(rng, shape_a, shape_b, tile):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    np.testing.assert_allclose(tiled_matmul(a, b, tile), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES[:6])
@pytest.mark.parametrize("tile", [1, 3, 8, 100])
def test_tiled_loops_equal_matmul(rng, shape_a, shape_b, tile):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    np.testing.assert_allclose(tiled_matmul_loops(a, b, tile), a @ b, rtol=1e-12, atol=1e-12)


def test_tiled_matmul_float32_at_a_realistic_size(rng):
    # 200 is not a multiple of 64: the last block row/column is 8 wide
    a = rng.standard_normal((200, 130)).astype(np.float32)
    b = rng.standard_normal((130, 200)).astype(np.float32)
    got = tiled_matmul(a, b)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


# ---- fusion ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (4, 3, 5), (64, 100, 37), (0, 3, 2)])
def test_fused_linear_relu_equals_unfused(rng, n, k, m):
    x, weight, bias = rng.standard_normal((n, k)), rng.standard_normal((k, m)), \
        rng.standard_normal(m)
    expected = np.maximum(x @ weight + bias, 0)
    np.testing.assert_allclose(linear_relu(x, weight, bias), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused_linear_relu(x, weight, bias), expected, rtol=1e-12,
                               atol=1e-12)
    buffer = np.full((n, m), np.nan)
    assert fused_linear_relu(x, weight, bias, out=buffer) is buffer
    np.testing.assert_allclose(buffer, expected, rtol=1e-12, atol=1e-12)


def test_fused_linear_relu_by_hand():
    x = np.array([[1.0, 2.0]])
    weight = np.array([[1.0, -1.0, 0.0], [1.0, -1.0, 2.0]])
    bias = np.array([0.5, 0.5, -5.0])
    # x @ W = [3, -3, 4]; + b = [3.5, -2.5, -1]; relu = [3.5, 0, 0]
    assert fused_linear_relu(x, weight, bias).tolist() == [[3.5, 0.0, 0.0]]


UFUNC_BUFFER = 8192 * 4          # numpy's fixed work buffer for the broadcast `+= bias`, float32


@pytest.mark.memory_performance
@pytest.mark.parametrize("n, k, m", [(256, 128, 512), (1024, 64, 256)])
def test_fused_linear_relu_allocates_one_output_instead_of_two(rng, n, k, m):
    x = rng.standard_normal((n, k)).astype(np.float32)
    weight = rng.standard_normal((k, m)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    out_bytes = n * m * 4
    fused_linear_relu(x, weight, bias)                         # first-call effects done
    unfused = memory_of(linear_relu, x, weight, bias)
    fused = memory_of(fused_linear_relu, x, weight, bias)
    buffer = np.empty((n, m), np.float32)
    reused = memory_of(fused_linear_relu, x, weight, bias, out=buffer)
    # unfused: x @ W + b exists while x @ W does, relu(...) while x @ W + b does
    assert unfused.peak_bytes >= 2 * out_bytes
    assert out_bytes <= fused.peak_bytes <= out_bytes + UFUNC_BUFFER + 4096
    assert reused.peak_bytes <= UFUNC_BUFFER + 4096 and reused.retained_bytes < 4096
    assert unfused.peak_bytes - fused.peak_bytes >= out_bytes - 4096


# ---- memory layout -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (50, 7), (0, 5), (5, 0)])
def test_row_sums_are_the_same_in_any_layout(rng, shape):
    c_order = rng.standard_normal(shape)
    f_order = np.asfortranarray(c_order)
    expected = c_order.sum(axis=1)
    for x in (c_order, f_order):
        for version in (row_sums, row_sums_contiguous):
            got = version(x)
            assert got.shape == (shape[0],)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_row_sums_of_a_strided_view_and_by_hand():
    x = np.arange(12.0).reshape(3, 4)
    assert row_sums(x).tolist() == [6.0, 22.0, 38.0]
    assert row_sums(x.T).tolist() == [12.0, 15.0, 18.0, 21.0]        # an F-order view
    assert row_sums_contiguous(x[:, ::2]).tolist() == [2.0, 10.0, 18.0]


@pytest.mark.memory_performance
def test_ascontiguousarray_copies_only_what_is_not_c_order(rng):
    c_order = rng.standard_normal((200, 300)).astype(np.float32)
    assert memory_of(np.ascontiguousarray, c_order).peak_bytes < 1024     # returned as is
    assert np.ascontiguousarray(c_order) is c_order
    f_order = np.asfortranarray(c_order)
    copy = memory_of(np.ascontiguousarray, f_order)
    assert copy.peak_bytes == pytest.approx(200 * 300 * 4, rel=0.01)
    assert copy.value.flags.c_contiguous and np.array_equal(copy.value, c_order)


# ---- compare() ---------------------------------------------------------------------------

def test_compare_speedups_from_fake_timings():
    result = compare({"naive": lambda: 1, "fast": lambda: 1, "slow": lambda: 1},
                     warmup=0, repeats=3,
                     # one sample of each variant per round: naive, fast, slow
                     timer=clock_for([3, 1, 8,
                                      5, 3, 8,
                                      4, 2, 9]))    # medians: naive 4, fast 2, slow 8
    assert isinstance(result, Comparison) and result.baseline == "naive"
    assert result.medians == {"naive": 4, "fast": 2, "slow": 8}
    assert result.speedups == {"naive": 1.0, "fast": 2.0, "slow": 0.5}
    assert all(isinstance(r, LatencyResult) for r in result.results.values())
    assert result.peak_bytes == {}


def test_compare_divides_by_number_and_passes_the_arguments():
    seen = []
    result = compare({"a": lambda x, y=0: seen.append(("a", x, y)),
                      "b": lambda x, y=0: seen.append(("b", x, y))},
                     args=(7,), kwargs={"y": 2}, warmup=1, repeats=2, number=4,
                     timer=clock_for([16, 2, 16, 2]), check=False)
    assert result.results["a"].samples == (4.0, 4.0) and result.results["b"].samples == (0.5, 0.5)
    assert result.speedups == {"a": 1.0, "b": 8.0}
    assert seen.count(("a", 7, 2)) == 1 + 2 * 4 and seen.count(("b", 7, 2)) == 9


def test_compare_checks_each_result_once_before_timing():
    calls = []
    compare({"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 1.0},
            warmup=0, repeats=1, timer=clock_for([1, 1]))
    assert calls == ["a", "b", "a", "b"]                   # check: a, b; then the timings


def test_compare_table_from_fake_timings():
    result = compare({"loops": lambda: 0, "numpy": lambda: 0}, warmup=0, repeats=1,
                     timer=clock_for([2, 1]))
    assert result.table().splitlines() == [
        "variant  median    p90  speed-up vs loops",
        "-------  ------  -----  -----------------",
        "loops     2.0 s  2.0 s              1.00x",
        "numpy     1.0 s  1.0 s              2.00x",
    ]


@pytest.mark.memory_performance
def test_compare_traces_peak_memory_per_variant():
    result = compare({"big": lambda: np.ones(100_000)[0], "small": lambda: np.ones(1_000)[0]},
                     warmup=0, repeats=1, timer=clock_for([1, 1]), memory=True)
    assert result.peak_bytes["big"] == pytest.approx(800_000, rel=0.01)
    assert result.peak_bytes["small"] == pytest.approx(8_000, rel=0.1)
    assert "peak bytes" in result.table().splitlines()[0]


def test_compare_rejects_a_fast_version_that_is_wrong():
    with pytest.raises(ValueError, match=r"variant 'wrong' differs from the baseline by up to 1"):
        compare({"right": lambda: np.arange(3.0), "wrong": lambda: np.arange(3.0) + 1},
                warmup=0, repeats=1)
    with pytest.raises(ValueError, match=r"variant 'short' returned shape \(2,\), the baseline "
                                         r"\(3,\)"):
        compare({"right": lambda: np.arange(3.0), "short": lambda: np.arange(2.0)},
                warmup=0, repeats=1)


# ---- API ---------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.acceleration", API)
    assert all(callable(obj) for obj in found.values())


@pytest.mark.api_consistency
def test_naive_and_fast_versions_share_signatures():
    def params(fn):
        return list(inspect.signature(fn).parameters)
    assert params(matmul_loops) == params(matmul_row_loop) == params(matmul_vectorized) == [
        "a", "b"]
    assert params(tiled_matmul) == params(tiled_matmul_loops) == ["a", "b", "tile"]
    assert params(relu_loops) == params(relu_vectorized) == ["x"]
    assert params(conv2d_loops) == params(conv2d_vectorized) == params(conv2d_tinytorch) == [
        "x", "weight", "bias", "stride", "padding"]
    assert params(linear_relu) == params(fused_linear_relu)[:3] == ["x", "weight", "bias"]
    assert params(row_sums) == params(row_sums_contiguous) == ["x"]


@pytest.mark.api_consistency
def test_compare_signature():
    params = inspect.signature(compare).parameters
    assert list(params)[:7] == ["variants", "args", "kwargs", "warmup", "repeats", "number",
                                "timer"]
    assert {"check", "rtol", "atol", "memory"} <= set(params)
