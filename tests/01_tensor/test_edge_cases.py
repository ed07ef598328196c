"""Empty and 0-d tensors, zeros, bad inputs, and the errors that explain them."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

# ---- empty tensors ------------------------------------------------------------------------

def test_empty_tensor_arithmetic_and_sum():
    empty = Tensor(np.zeros((0, 3)))
    assert (empty + Tensor([1.0, 2.0, 3.0])).shape == (0, 3)
    assert empty.sum().item() == 0.0
    np.testing.assert_array_equal(empty.sum(axis=0).data, [0.0, 0.0, 0.0])
    assert empty.sum(axis=1).shape == (0,)


def test_empty_batch_matmul():
    result = Tensor(np.zeros((0, 3))) @ Tensor(np.ones((3, 2)))
    assert result.shape == (0, 2)
    inner_empty = Tensor(np.zeros((2, 0))) @ Tensor(np.zeros((0, 4)))
    np.testing.assert_array_equal(inner_empty.data, np.zeros((2, 4)))   # an empty sum is 0


def test_mean_of_empty_is_nan_with_numpy_warning():
    # numpy warns twice: "Mean of empty slice", then 0/0 in its divide.
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"), np.errstate(invalid="ignore"):
        result = Tensor([]).mean()
    assert np.isnan(result.item())


def test_max_of_empty_raises():
    with pytest.raises(ValueError, match="zero-size array"):
        Tensor([]).max()


def test_empty_list_is_a_float32_tensor():
    empty = Tensor([])
    assert empty.shape == (0,) and empty.dtype == np.float32 and len(empty) == 0
    assert list(empty) == []


# ---- 0-d tensors and zeros ----------------------------------------------------------------

def test_zero_d_tensor_behaviour():
    t = Tensor(2.0)
    assert (t * Tensor([1.0, 2.0])).shape == (2,)
    assert t.sum().shape == () and t.T.shape == () and t.reshape(1, 1).shape == (1, 1)
    with pytest.raises(TypeError, match="0-d"):
        len(t)


def test_zeros_are_handled_exactly():
    zeros = Tensor(np.zeros((2, 2)))
    assert not (zeros * 1e30).data.any()
    np.testing.assert_array_equal((zeros @ zeros).data, np.zeros((2, 2)))
    np.testing.assert_array_equal(zeros.sqrt().data, np.zeros((2, 2)))
    np.testing.assert_array_equal(zeros.exp().data, np.ones((2, 2)))
    assert np.signbit((-zeros).data).all()           # IEEE negative zero, as numpy


def test_bool_of_one_element_and_of_many():
    assert bool(Tensor([3.0])) is True and bool(Tensor(0.0)) is False
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_item_needs_exactly_one_element():
    assert Tensor([[7.0]]).item() == 7.0
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor([1.0, 2.0]).item()


# ---- shape errors name both shapes ----------------------------------------------------------

@pytest.mark.parametrize("operation", [
    lambda a, b: a + b, lambda a, b: a / b, lambda a, b: a.maximum(b), lambda a, b: a == b,
])
def test_broadcast_error_names_both_shapes(operation):
    with pytest.raises(ValueError) as error:
        operation(Tensor(np.ones((32, 10))), Tensor(np.ones(32)))
    assert "(32, 10)" in str(error.value) and "(32,)" in str(error.value)


@pytest.mark.parametrize("shape_a, shape_b, words", [
    ((2, 3), (2, 3), "do not align"),
    ((4,), (3,), "do not align"),
    ((2, 2, 3), (3, 3, 2), "batch dimensions"),
    ((), (3,), "at least one dimension"),
])
def test_matmul_error_names_both_shapes(shape_a, shape_b, words):
    with pytest.raises(ValueError) as error:
        Tensor(np.ones(shape_a)) @ Tensor(np.ones(shape_b))
    message = str(error.value)
    assert str(shape_a) in message and str(shape_b) in message and words in message


def test_transpose_dims_out_of_range():
    with pytest.raises(ValueError, match=r"\(0, 3\).*\(2, 3, 4\)"):
        Tensor(np.ones((2, 3, 4))).transpose(0, 3)


def test_reshape_to_wrong_size():
    with pytest.raises(ValueError, match=r"size 6 into shape \(4,\)"):
        Tensor(np.ones((2, 3))).reshape(4)


def test_index_out_of_bounds():
    with pytest.raises(IndexError):
        Tensor([1.0, 2.0])[2]


# ---- type errors: what was expected ----------------------------------------------------------

@pytest.mark.parametrize("operation", [
    lambda t, x: t + x, lambda t, x: x + t, lambda t, x: t * x, lambda t, x: t @ x,
    lambda t, x: t < x,
])
def test_non_numeric_operand_is_a_type_error(operation):
    for bad in ("1", None, object(), {"a": 1}):
        message = f"unsupported operand.*Tensor and {type(bad).__name__}"
        with pytest.raises(TypeError, match=message):
            operation(Tensor([1.0]), bad)


@pytest.mark.parametrize("data", ["abc", None, ["1.5"], {"x": 1}])
def test_non_numeric_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="must be numbers"):
        Tensor(data)


def test_ragged_list_is_a_value_error():
    with pytest.raises(ValueError, match="cannot make a Tensor from this list"):
        Tensor([[1.0, 2.0], [3.0]])


def test_non_numeric_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="dtype must be bool, int or float"):
        Tensor([1.0], dtype=str)


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor([1, 2], dtype=np.int64, requires_grad=True)


def test_equality_with_unrelated_objects_is_false():
    t = Tensor([1.0])
    assert (t == None) is False and (t != "x") is True   # noqa: E711


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of min and max"):
        Tensor([1.0]).clip()


def test_tensors_hash_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b"


# ---- check_int: the curriculum's one size check ------------------------------------------------

@pytest.mark.parametrize("value, minimum, wanted", [
    (0, 1, "a positive integer"), (2.0, 1, "a positive integer"), (True, 1, "a positive integer"),
    ("3", 1, "a positive integer"), (-1, 0, "a non-negative integer"), (1, 2, "an integer >= 2"),
])
def test_check_int_names_the_owner_the_name_and_what_was_wanted(value, minimum, wanted):
    from tinytorch.core.tensor import check_int
    with pytest.raises(ValueError, match=f"^Layer: size must be {wanted}, got {value!r}$"):
        check_int("Layer", "size", value, minimum)


def test_check_int_returns_a_python_int_for_numpy_integers():
    from tinytorch.core.tensor import check_int
    checked = check_int("Layer", "size", np.int32(3))
    assert checked == 3 and type(checked) is int
    assert check_int("Layer", "size", 0, minimum=0) == 0
