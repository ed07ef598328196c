"""Precision, overflow, underflow and NaN/Inf: Tensor behaves exactly like numpy in
its dtype, and numpy's floating-point warnings reach the caller unchanged."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

FLOAT32_MAX = float(np.finfo(np.float32).max)   # about 3.4e38


def test_float32_rounding_matches_numpy():
    assert (Tensor([1.0]) + 1e-8).item() == 1.0                       # below float32 epsilon
    assert (Tensor([1.0], dtype=np.float64) + 1e-8).item() == 1.0 + 1e-8


def test_float32_sum_is_close_to_the_exact_sum(rng):
    data = rng.uniform(0.0, 1.0, 100_000).astype(np.float32)
    exact = data.astype(np.float64).sum()
    total = Tensor(data).sum().item()
    assert total == pytest.approx(exact, rel=1e-6)       # numpy's pairwise summation


def test_float32_mean_of_large_offsets_matches_numpy(rng):
    data = (1e6 + rng.standard_normal(10_000)).astype(np.float32)
    assert Tensor(data).mean().item() == np.mean(data)


def test_multiplication_overflow_gives_inf_like_numpy():
    big = Tensor([FLOAT32_MAX, -FLOAT32_MAX])
    with pytest.warns(RuntimeWarning, match="overflow"):
        result = big * 10
    np.testing.assert_array_equal(result.data, [np.inf, -np.inf])


def test_sum_overflow_gives_inf_like_numpy():
    with pytest.warns(RuntimeWarning, match="overflow"):
        total = Tensor([3e38, 3e38]).sum()
    assert total.item() == np.inf


def test_value_beyond_float32_range_becomes_inf_on_creation():
    with pytest.warns(RuntimeWarning, match="overflow encountered in cast"):
        t = Tensor([1e39, -1e39])
    np.testing.assert_array_equal(t.data, [np.inf, -np.inf])
    assert Tensor([1e39], dtype=np.float64).item() == 1e39           # float64 holds it


def test_exp_overflow_and_underflow():
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(Tensor([89.0]).exp().data, [np.inf])   # e^89 > 3.4e38
    np.testing.assert_array_equal(Tensor([-200.0]).exp().data, [0.0])        # silent underflow
    assert Tensor([88.0]).exp().item() == pytest.approx(np.exp(88.0), rel=1e-6)


@pytest.mark.parametrize("operation, warning, expected", [
    (lambda t: t.log(), "divide by zero", -np.inf),
    (lambda t: 1.0 / t, "divide by zero", np.inf),
    (lambda t: (t - 1).log(), "invalid value", np.nan),
    (lambda t: (t - 1).sqrt(), "invalid value", np.nan),
])
def test_invalid_math_warns_and_gives_ieee_values(operation, warning, expected):
    with pytest.warns(RuntimeWarning, match=warning):
        result = operation(Tensor([0.0]))
    np.testing.assert_array_equal(result.data, [expected])


@pytest.mark.parametrize("operation", [
    lambda t: t + 1, lambda t: t * 0, lambda t: t.exp(), lambda t: t.sum(),
    lambda t: t.max(), lambda t: t.maximum(0.0), lambda t: t.reshape(3, 1) @ Tensor([[1.0, 1.0]]),
])
def test_nan_propagates(operation):
    result = operation(Tensor([1.0, np.nan, 2.0]))
    assert np.isnan(result.data).any()


def test_inf_arithmetic_follows_ieee():
    inf = Tensor([np.inf, -np.inf])
    np.testing.assert_array_equal((inf * 2).data, [np.inf, -np.inf])
    np.testing.assert_array_equal((1.0 / inf).data, [0.0, -0.0])
    np.testing.assert_array_equal(inf.exp().data, [np.inf, 0.0])
    with pytest.warns(RuntimeWarning, match="invalid value"):
        assert np.isnan((inf + Tensor([-np.inf, np.inf])).data).all()


def test_comparisons_with_nan_are_false_without_warning():
    t = Tensor([np.nan, 1.0])
    np.testing.assert_array_equal((t > 0).data, [False, True])
    np.testing.assert_array_equal((t == t).data, [False, True])


def test_clip_bounds_extreme_values():
    result = Tensor([-np.inf, -1e30, 0.5, 1e30, np.inf]).clip(-1.0, 1.0)
    np.testing.assert_array_equal(result.data, [-1.0, -1.0, 0.5, 1.0, 1.0])


def test_float64_tensors_keep_double_precision(rng):
    a = rng.standard_normal((20, 30))
    b = rng.standard_normal((30, 10))
    result = Tensor(a, dtype=np.float64) @ Tensor(b, dtype=np.float64)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result.data, a @ b, rtol=1e-14, atol=1e-14)


def test_float32_matmul_error_is_float32_sized(rng):
    a = rng.standard_normal((64, 64))
    b = rng.standard_normal((64, 64))
    result = Tensor(a) @ Tensor(b)
    error = np.abs(result.data - a @ b).max()
    assert 0 < error < 1e-4                # float32 rounding: visible, but small
