"""Module 18 edge cases: bad shapes and arguments give clear errors, edge sizes work,
compare() refuses what it cannot measure."""
import numpy as np
import pytest

from tinytorch.acceleration import (
    compare,
    conv2d_loops,
    conv2d_vectorized,
    fused_linear_relu,
    linear_relu,
    matmul_loops,
    matmul_row_loop,
    matmul_vectorized,
    row_sums,
    tiled_matmul,
    tiled_matmul_loops,
)


@pytest.mark.parametrize("version", [matmul_loops, matmul_row_loop, matmul_vectorized,
                                     tiled_matmul, tiled_matmul_loops])
@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (4, 2)), ((3,), (3, 2)),
                                              ((2, 3, 4), (4, 2))])
def test_matmuls_reject_misaligned_or_non_matrix_inputs(version, shape_a, shape_b):
    with pytest.raises(ValueError, match=rf"{version.__name__}: needs matrices \(n, k\) and "
                                         rf"\(k, m\)"):
        version(np.ones(shape_a), np.ones(shape_b))


@pytest.mark.parametrize("version", [tiled_matmul, tiled_matmul_loops])
@pytest.mark.parametrize("tile", [0, -4, 2.5, True, None])
def test_tile_must_be_a_positive_int(version, tile):
    with pytest.raises(ValueError, match="tile must be a positive integer"):
        version(np.ones((2, 2)), np.ones((2, 2)), tile)


def test_a_tile_larger_than_the_matrices_is_one_block(rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(tiled_matmul(a, b, tile=1000), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tiled_matmul_loops(a, b, tile=1000), a @ b, rtol=1e-12,
                               atol=1e-12)


def test_empty_shared_dimension_gives_zeros():
    for version in (matmul_loops, matmul_row_loop, tiled_matmul, tiled_matmul_loops):
        out = version(np.ones((3, 0)), np.ones((0, 2)))
        assert out.shape == (3, 2) and not out.any(), version.__name__


@pytest.mark.parametrize("version", [conv2d_loops, conv2d_vectorized])
def test_convolution_errors(version):
    name = version.__name__
    with pytest.raises(ValueError, match=rf"{name}: needs images \(N, C, H, W\)"):
        version(np.ones((1, 2, 5, 5)), np.ones((3, 1, 3, 3)))       # channels differ
    with pytest.raises(ValueError, match=rf"{name}: needs images"):
        version(np.ones((2, 5, 5)), np.ones((3, 2, 3, 3)))
    with pytest.raises(ValueError, match=rf"{name}: bias must have shape \(3,\), got \(2,\)"):
        version(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.ones(2))
    with pytest.raises(ValueError, match=rf"{name}: kernel 7x7 is larger than the padded input"):
        version(np.ones((1, 1, 5, 5)), np.ones((1, 1, 7, 7)))
    with pytest.raises(ValueError, match=rf"{name}: stride must be >= 1 and padding >= 0"):
        version(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0)


def test_padding_lets_a_kernel_exceed_the_image(rng):
    x, weight = rng.standard_normal((1, 1, 2, 2)), rng.standard_normal((1, 1, 3, 3))
    expected = conv2d_loops(x, weight, padding=1)
    assert expected.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(conv2d_vectorized(x, weight, padding=1), expected, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("version", [linear_relu, fused_linear_relu])
def test_linear_relu_shape_errors(version):
    with pytest.raises(ValueError, match=rf"{version.__name__}: needs x \(n, k\), weight "
                                         rf"\(k, m\), bias \(m,\), got shapes \(2, 3\), "
                                         rf"\(4, 5\), \(5,\)"):
        version(np.ones((2, 3)), np.ones((4, 5)), np.ones(5))
    with pytest.raises(ValueError, match=r"got shapes \(2, 3\), \(3, 5\), \(4,\)"):
        version(np.ones((2, 3)), np.ones((3, 5)), np.ones(4))


def test_fused_output_buffer_must_fit():
    with pytest.raises(ValueError, match=r"out must have shape \(2, 5\), got \(5, 2\)"):
        fused_linear_relu(np.ones((2, 3)), np.ones((3, 5)), np.ones(5), out=np.empty((5, 2)))


def test_fused_result_does_not_depend_on_the_old_buffer_contents(rng):
    x, weight, bias = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), np.zeros(2)
    first = fused_linear_relu(x, weight, bias, out=np.full((4, 2), 1e30))
    second = fused_linear_relu(x, weight, bias, out=np.full((4, 2), np.nan))
    np.testing.assert_array_equal(first, second)


def test_row_sums_needs_a_matrix():
    with pytest.raises(ValueError, match=r"row_sums: needs a 2-D array, got shape \(3,\)"):
        row_sums(np.ones(3))


def test_compare_needs_variants():
    with pytest.raises(ValueError, match="compare needs at least one variant"):
        compare({})


def test_compare_with_one_variant_is_its_own_baseline():
    result = compare({"only": lambda: 1}, warmup=0, repeats=2,
                     timer=iter([0, 5, 10, 15]).__next__)
    assert result.speedups == {"only": 1.0} and result.medians == {"only": 5.0}


def test_compare_refuses_a_zero_median():
    frozen_clock = iter([0.0] * 4).__next__
    with pytest.raises(ValueError, match=r"variant 'a' has a median time of 0.0 s; time more "
                                         r"calls per sample \(number=\)"):
        compare({"a": lambda: 1}, warmup=0, repeats=2, timer=frozen_clock)


@pytest.mark.parametrize("kwargs, message", [
    (dict(repeats=0), "compare: repeats must be a positive integer, got 0"),
    (dict(repeats=1.5), "compare: repeats must be a positive integer, got 1.5"),
    (dict(warmup=-1), "compare: warmup must be a non-negative integer, got -1"),
    (dict(number=0), "measure_latency: number must be a positive integer, got 0"),
])
def test_compare_rejects_bad_timing_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare({"a": lambda: 1}, **kwargs)


def test_compare_warms_every_variant_up_before_timing():
    order = []
    timer = iter(range(100)).__next__
    compare({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, warmup=2,
            repeats=2, check=False, timer=lambda: order.append("tick") or timer())
    assert order == ["a", "a", "b", "b"] + ["tick", "a", "tick", "tick", "b", "tick"] * 2


def test_compare_check_tolerances_and_nan():
    same = compare({"a": lambda: np.array([1.0, np.nan]), "b": lambda: np.array([1.0, np.nan])},
                   warmup=0, repeats=1, timer=iter([0, 1, 2, 3]).__next__)
    assert same.speedups["b"] == 1.0                           # NaN in the same place agrees
    loose = compare({"a": lambda: 1.0, "b": lambda: 1.01}, warmup=0, repeats=1,
                    timer=iter([0, 1, 2, 3]).__next__, rtol=0.02)
    assert loose.speedups == {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match="differs from the baseline"):
        compare({"a": lambda: 1.0, "b": lambda: 1.01}, warmup=0, repeats=1)
    unchecked = compare({"a": lambda: 1.0, "b": lambda: "anything"}, check=False, warmup=0,
                        repeats=1, timer=iter([0, 1, 2, 4]).__next__)
    assert unchecked.speedups["b"] == 0.5
