"""Tensor next to numpy: arrays in, arrays out, mixed expressions in both orders."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor


@pytest.mark.parametrize("array, dtype", [
    (np.array([1.5, 2.5], dtype=np.float16), np.float32),   # any float becomes float32
    (np.array([1.5, 2.5], dtype=np.float64), np.float32),
    (np.array([1, 2], dtype=np.int32), np.int32),           # integers keep their type
    (np.array([0, 255], dtype=np.uint8), np.uint8),
    (np.array([True, False]), np.bool_),
])
def test_numpy_arrays_in(array, dtype):
    t = Tensor(array)
    assert t.dtype == dtype and t.shape == array.shape
    np.testing.assert_array_equal(t.data, array.astype(dtype))


def test_non_contiguous_array_in():
    array = np.arange(6.0).reshape(2, 3).T           # a transposed view
    np.testing.assert_array_equal(Tensor(array).data, [[0, 3], [1, 4], [2, 5]])


def test_numpy_and_asarray_share_the_data():
    t = Tensor([1.0, 2.0, 3.0])
    assert t.numpy() is t.data
    assert np.shares_memory(np.asarray(t), t.data)


def test_asarray_with_dtype_converts():
    converted = np.asarray(Tensor([1.5, 2.5]), dtype=np.float64)
    assert converted.dtype == np.float64
    np.testing.assert_array_equal(converted, [1.5, 2.5])


def test_np_array_returns_an_independent_copy():
    t = Tensor([1.0, 2.0])
    copy = np.array(t)               # np.array copies by default (copy=True)
    copy[0] = 99.0
    np.testing.assert_array_equal(t.data, [1.0, 2.0])


def test_numpy_testing_and_stacking_accept_tensors():
    rows = [Tensor([1.0, 2.0]), Tensor([3.0, 4.0])]
    batch = np.stack(rows)             # goes through __array__
    np.testing.assert_array_equal(batch, [[1, 2], [3, 4]])
    np.testing.assert_allclose(rows[0] * 2, [2.0, 4.0])


@pytest.mark.parametrize("expression, expected", [
    (lambda a, t: a + t, [[11, 22], [13, 24]]),
    (lambda a, t: a - t, [[-9, -18], [-7, -16]]),
    (lambda a, t: a * t, [[10, 40], [30, 80]]),
    (lambda a, t: t / a, [[10, 10], [10 / 3, 5]]),
    (lambda a, t: a @ t.reshape(2, 1), [[50], [110]]),
])
def test_ndarray_on_the_left_gives_a_tensor(expression, expected):
    array = np.array([[1.0, 2.0], [3.0, 4.0]])
    result = expression(array, Tensor([10.0, 20.0]))
    assert isinstance(result, Tensor) and result.dtype == np.float32
    np.testing.assert_allclose(result.data, expected, rtol=1e-6)


def test_ndarray_comparison_gives_a_bool_tensor():
    result = np.array([1.0, 5.0]) < Tensor([2.0, 2.0])
    assert isinstance(result, Tensor)
    np.testing.assert_array_equal(result.data, [True, False])


def test_numpy_scalars_mix_like_python_numbers():
    t = Tensor([1.0, 2.0])
    for scalar in (np.float64(2.0), np.int64(2), np.float32(2.0)):
        assert (scalar * t).dtype == np.float32
        np.testing.assert_array_equal((scalar * t).data, [2.0, 4.0])


def test_numpy_ufuncs_step_aside():
    # __array_ufunc__ = None: numpy refuses instead of returning a bare ndarray
    # that would silently lose the recorded graph.
    with pytest.raises(TypeError):
        np.exp(Tensor([1.0]))


def test_numpy_index_arrays():
    t = Tensor(np.arange(10.0))
    np.testing.assert_array_equal(t[np.array([7, 3])].data, [7.0, 3.0])
    np.testing.assert_array_equal(t[np.arange(10) % 4 == 0].data, [0.0, 4.0, 8.0])


def test_round_trip_through_numpy(rng):
    data = rng.standard_normal((3, 4)).astype(np.float32)
    again = Tensor(Tensor(data).numpy())
    assert again.dtype == np.float32
    np.testing.assert_array_equal(again.data, data)
