"""Core behaviour of Tensor: creation, arithmetic, matmul, reductions, shapes,
indexing, comparisons, elementwise math and the recorded graph, checked against
numpy and hand-computed values."""
import inspect

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

# ---- creation and dtypes ------------------------------------------------------------

def test_float_data_defaults_to_float32():
    t = Tensor([[1.5, 2.5], [3.5, 4.5]])
    assert t.dtype == np.float32
    assert t.shape == (2, 2) and t.ndim == 2 and t.size == 4
    np.testing.assert_array_equal(t.data, [[1.5, 2.5], [3.5, 4.5]])


def test_float64_array_is_stored_as_float32():
    t = Tensor(np.array([0.1, 0.2], dtype=np.float64))
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.float32([0.1, 0.2]))


@pytest.mark.parametrize("data, kind", [([1, 2, 3], "i"), (np.array([1, 2], np.uint8), "u"),
                                        ([True, False], "b")])
def test_integer_and_bool_data_keep_their_kind(data, kind):
    assert Tensor(data).dtype.kind == kind


def test_explicit_dtype_wins():
    assert Tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    t = Tensor([1.7, -2.7], dtype=np.int32)
    assert t.dtype == np.int32
    np.testing.assert_array_equal(t.data, [1, -2])   # numpy's truncation toward zero


def test_scalar_tensor_is_0d():
    t = Tensor(3.5)
    assert t.shape == () and t.ndim == 0 and t.size == 1
    assert t.item() == 3.5 and isinstance(t.item(), float)


def test_constructor_copies_array():
    source = np.array([1.0, 2.0], dtype=np.float32)
    t = Tensor(source)
    source[0] = 100.0
    assert t.data[0] == 1.0


def test_tensor_from_tensor_copies_and_keeps_dtype():
    original = Tensor([1, 2], dtype=np.int8)
    copy = Tensor(original)
    original.data[0] = 50
    assert copy.dtype == np.int8
    np.testing.assert_array_equal(copy.data, [1, 2])


def test_new_tensor_has_no_grad_and_no_history():
    t = Tensor([1.0], requires_grad=True)
    assert t.requires_grad and t.grad is None and t.is_leaf
    assert t._op is None and t._parents == ()


# ---- arithmetic with broadcasting (numpy is the reference) ---------------------------

BINARY_OPS = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.true_divide),
    "maximum": (lambda a, b: a.maximum(b), np.maximum),
}


@pytest.mark.shape
@pytest.mark.parametrize("name", BINARY_OPS)
@pytest.mark.parametrize("shape_a, shape_b", [((4, 3), (3,)), ((4, 1), (1, 5)),
                                              ((2, 1, 3), (4, 1))])
def test_binary_ops_broadcast_like_numpy(rng, name, shape_a, shape_b):
    ours, reference = BINARY_OPS[name]
    a = rng.uniform(0.5, 2.0, shape_a).astype(np.float32)
    b = rng.uniform(0.5, 2.0, shape_b).astype(np.float32)
    result = ours(Tensor(a), Tensor(b))
    expected = reference(a, b)
    assert result.shape == expected.shape and result.dtype == np.float32
    np.testing.assert_allclose(result.data, expected, rtol=1e-6)


def test_bias_is_added_to_every_row():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal((x + Tensor([10.0, 20.0, 30.0])).data,
                                  [[11, 22, 33], [14, 25, 36]])


def test_power_and_negation():
    x = Tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal((x ** 2).data, [1, 4, 9])
    np.testing.assert_allclose((x ** 0.5).data, np.sqrt([1, 2, 3], dtype=np.float32))
    np.testing.assert_array_equal((-x).data, [-1, -2, -3])


@pytest.mark.parametrize("expression, expected", [
    (lambda t: 1 + t, [3.0, 5.0]),
    (lambda t: 1 - t, [-1.0, -3.0]),
    (lambda t: 3 * t, [6.0, 12.0]),
    (lambda t: 8 / t, [4.0, 2.0]),
    (lambda t: 2 ** t, [4.0, 16.0]),
])
def test_reflected_ops_keep_operand_order(expression, expected):
    result = expression(Tensor([2.0, 4.0]))
    assert isinstance(result, Tensor) and result.dtype == np.float32
    np.testing.assert_array_equal(result.data, expected)


def test_python_numbers_do_not_promote_float32():
    x = Tensor([1.0, 2.0])
    assert (x * 0.5).dtype == np.float32
    assert (x + np.float64(1.0)).dtype == np.float32
    assert (x + np.ones(2)).dtype == np.float32          # float64 array takes x's dtype


def test_two_tensors_follow_the_promotion_rule():
    a, b = Tensor([1.0]), Tensor([1.0], dtype=np.float64)
    assert (a + b).dtype == np.float64                    # same kind: the wider one
    assert (Tensor([1, 2]) + 2.5).dtype == np.float32     # int and a float: the default float
    assert (Tensor([1, 2]) + a).dtype == np.float32       # int and float32: float32, not float64
    assert (Tensor([1, 2], dtype=np.int32) + 2).dtype == np.int32
    np.testing.assert_array_equal((Tensor([7, 8]) / Tensor([2, 2])).data, [3.5, 4.0])


# ---- matrix multiplication -----------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("shape_a, shape_b", [
    ((2, 3), (3, 4)),          # plain matrices
    ((5, 2, 3), (5, 3, 4)),    # batched
    ((5, 2, 3), (3, 4)),       # a batch times one matrix
    ((2, 1, 2, 3), (4, 3, 2)),  # batch dims broadcast
    ((3,), (3, 4)),            # vector @ matrix
    ((2, 3), (3,)),            # matrix @ vector
    ((3,), (3,)),              # dot product -> 0-d
])
def test_matmul_matches_numpy(rng, shape_a, shape_b):
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    result = Tensor(a) @ Tensor(b)
    expected = a @ b
    assert result.shape == expected.shape
    np.testing.assert_allclose(result.data, expected, rtol=1e-5, atol=1e-6)


def test_matmul_by_hand():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_array_equal(a.matmul(b).data, [[19, 22], [43, 50]])
    np.testing.assert_array_equal((Tensor([1.0, 2.0]) @ Tensor([3.0, 4.0])).data, 11.0)


# ---- reductions -----------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("method", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (-1, True), ([0, 2], False)])
def test_reductions_match_numpy(rng, method, axis, keepdims):
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    result = getattr(Tensor(data), method)(axis=axis, keepdims=keepdims)
    numpy_axis = tuple(axis) if isinstance(axis, list) else axis
    expected = getattr(np, method)(data, axis=numpy_axis, keepdims=keepdims)
    assert result.shape == np.shape(expected)
    np.testing.assert_allclose(result.data, expected, rtol=1e-6, atol=1e-6)


def test_reductions_by_hand():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.sum().item() == 21.0 and x.mean().item() == 3.5
    np.testing.assert_array_equal(x.sum(axis=0).data, [5, 7, 9])
    np.testing.assert_array_equal(x.max(axis=1).data, [3, 6])
    np.testing.assert_array_equal(x.min(axis=1, keepdims=True).data, [[1], [4]])


# ---- shapes: reshape and transpose ------------------------------------------------------

def test_reshape_keeps_row_major_order():
    x = Tensor(np.arange(6.0))
    np.testing.assert_array_equal(x.reshape(2, 3).data, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(x.reshape((3, -1)).data, [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(x.reshape([6]).data, x.data)


def test_transpose_of_matrix():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    expected = [[1, 4], [2, 5], [3, 6]]
    np.testing.assert_array_equal(x.T.data, expected)
    np.testing.assert_array_equal(x.transpose().data, expected)
    np.testing.assert_array_equal(x.transpose(0, 1).data, expected)   # PyTorch: swap dims 0, 1


@pytest.mark.shape
@pytest.mark.parametrize("args, numpy_order", [
    ((), (2, 1, 0)),                # reverse all axes
    ((0, 2), (2, 1, 0)),            # PyTorch-style: swap two dims
    ((-2, -1), (0, 2, 1)),          # swap the last two (keys in attention)
    ((0, 1), (1, 0, 2)),
    (((2, 0, 1),), (2, 0, 1)),      # a full permutation as one tuple
    ((1, 2, 0), (1, 2, 0)),         # a full permutation as arguments
])
def test_transpose_forms_match_numpy(rng, args, numpy_order):
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(Tensor(data).transpose(*args).data,
                                  data.transpose(numpy_order))


# ---- indexing ---------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("index", [
    1, -1, slice(1, None), (slice(None), 2), (0, slice(None, None, 2)),
    [2, 0], ([0, 2], [1, 3]), (Ellipsis, None), (1, Ellipsis),
])
def test_indexing_matches_numpy(index):
    data = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    expected = data[index]
    result = Tensor(data)[index]
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result.data, expected)


def test_boolean_mask_selects_matching_values():
    x = Tensor([[1.0, -2.0], [-3.0, 4.0]])
    np.testing.assert_array_equal(x[x > 0].data, [1.0, 4.0])
    np.testing.assert_array_equal(x[np.array([False, True])].data, [[-3.0, 4.0]])


def test_integer_tensor_as_index():
    table = Tensor([[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]])
    rows = table[Tensor([2, 0, 2])]                    # an embedding lookup
    np.testing.assert_array_equal(rows.data, [[2.0, 2.5], [0.0, 0.5], [2.0, 2.5]])
    picked = table[(Tensor([0, 1, 2]), Tensor([1, 0, 1]))]
    np.testing.assert_array_equal(picked.data, [0.5, 1.0, 2.5])


# ---- comparisons ----------------------------------------------------------------------------

@pytest.mark.parametrize("compare, expected", [
    (lambda t: t == 2.0, [False, True, False]),
    (lambda t: t != 2.0, [True, False, True]),
    (lambda t: t < 2.0, [True, False, False]),
    (lambda t: t <= 2.0, [True, True, False]),
    (lambda t: t > 2.0, [False, False, True]),
    (lambda t: t >= 2.0, [False, True, True]),
    (lambda t: t > Tensor([0.0, 5.0, 0.0]), [True, False, True]),
    (lambda t: 2.0 < t, [False, False, True]),        # reflected: t > 2
])
def test_comparisons_return_bool_tensors(compare, expected):
    result = compare(Tensor([1.0, 2.0, 3.0]))
    assert isinstance(result, Tensor) and result.dtype == np.bool_
    np.testing.assert_array_equal(result.data, expected)


def test_comparisons_are_never_recorded():
    x = Tensor([1.0, 2.0], requires_grad=True)
    mask = x > 1.5
    assert not mask.requires_grad and mask._parents == ()


# ---- elementwise math -----------------------------------------------------------------------

def test_exp_log_sqrt_abs_by_hand():
    x = Tensor([1.0, 4.0, 9.0])
    np.testing.assert_allclose(x.exp().data, np.exp(np.float32([1, 4, 9])), rtol=1e-6)
    np.testing.assert_allclose(x.log().data, [0.0, np.log(4.0), np.log(9.0)], rtol=1e-6)
    np.testing.assert_array_equal(x.sqrt().data, [1, 2, 3])
    np.testing.assert_array_equal(Tensor([-1.5, 0.0, 2.0]).abs().data, [1.5, 0.0, 2.0])
    np.testing.assert_allclose(x.log().exp().data, x.data, rtol=1e-6)


@pytest.mark.parametrize("bounds, expected", [
    ({"min": 0.0, "max": 1.0}, [0.0, 0.5, 1.0]),
    ({"min": 0.0}, [0.0, 0.5, 2.0]),
    ({"max": 0.0}, [-1.0, 0.0, 0.0]),
])
def test_clip(bounds, expected):
    np.testing.assert_array_equal(Tensor([-1.0, 0.5, 2.0]).clip(**bounds).data, expected)


def test_maximum_with_a_number_is_relu():
    np.testing.assert_array_equal(Tensor([-2.0, 0.0, 3.0]).maximum(0.0).data, [0, 0, 3])


# ---- the recorded graph (read by module 05) ------------------------------------------------

def test_operations_record_op_and_parents_when_an_input_requires_grad():
    a = Tensor([2.0, 3.0], requires_grad=True)
    b = Tensor([4.0, 5.0])
    product = a * b
    total = product.sum()
    assert product._op == "mul" and product._parents[0] is a and product._parents[1] is b
    assert total._op == "sum" and total._parents[0] is product
    assert total.requires_grad and not total.is_leaf and a.grad is None


def test_reflected_op_records_operands_in_math_order():
    a = Tensor([2.0], requires_grad=True)
    result = 1 - a
    assert result._op == "sub" and result._parents[1] is a
    np.testing.assert_array_equal(result._parents[0].data, [1.0])


def test_saved_values_for_backward_rules():
    x = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    assert x.sum(axis=[0, 2], keepdims=True)._saved == {"axis": (0, 2), "keepdims": True}
    assert x.transpose(-2, -1)._saved == {"axes": (0, 2, 1)}
    assert x.transpose(2, 0, 1)._saved == {"axes": (2, 0, 1)}
    assert x[1]._saved == {"index": 1}


def test_nothing_recorded_without_requires_grad():
    result = (Tensor([1.0]) * 2).exp().sum()
    assert not result.requires_grad and result._op is None and result._parents == ()


def test_detach_cuts_the_graph_but_keeps_values():
    x = Tensor([1.0, 2.0], requires_grad=True)
    cut = (x * 3).detach()
    assert not cut.requires_grad and cut.is_leaf
    np.testing.assert_array_equal(cut.data, [3.0, 6.0])


# ---- PyTorch as an oracle -------------------------------------------------------------------
# Each case: input shapes, our expression, the same expression in PyTorch's spelling.

TORCH_CASES = {
    "broadcast arithmetic": (((4, 1, 3), (5, 1)),
                             lambda a, b: (a + b) * b - a / (b * b + 1),
                             lambda a, b: (a + b) * b - a / (b * b + 1)),
    "batched matmul, broadcast batch": (((2, 1, 3, 4), (5, 4, 2)),
                                        lambda a, b: a @ b, lambda a, b: a @ b),
    "vector @ batch of matrices": (((4,), (3, 4, 2)), lambda a, b: a @ b, lambda a, b: a @ b),
    "attention-style scores": (((2, 3, 4), (2, 5, 4)),
                               lambda a, b: a @ b.transpose(-2, -1),
                               lambda a, b: a @ b.transpose(-2, -1)),
    "sum over a tuple, keepdims": (((2, 3, 4),), lambda a: a.sum(axis=(0, 2), keepdims=True),
                                   lambda a: a.sum(dim=(0, 2), keepdim=True)),
    "mean over last axis": (((2, 3, 4),), lambda a: a.mean(axis=-1),
                            lambda a: a.mean(dim=-1)),
    "max and min over an axis": (((3, 5),), lambda a: a.max(axis=1) - a.min(axis=0).sum(),
                                 lambda a: a.max(dim=1).values - a.min(dim=0).values.sum()),
    "elementwise math": (((3, 4),), lambda a: (a.abs() + 1).log() + (a * 0.5).exp().sqrt(),
                         lambda a: (a.abs() + 1).log() + (a * 0.5).exp().sqrt()),
    "clip and maximum": (((3, 4), (4,)), lambda a, b: a.clip(-0.5, 0.5).maximum(b),
                         lambda a, b: a.clip(-0.5, 0.5).maximum(b)),
    "reshape and index": (((2, 3, 4),), lambda a: a.reshape(6, 4)[[0, 5, 2], 1:3],
                          lambda a: a.reshape(6, 4)[[0, 5, 2], 1:3]),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_pytorch(torch, rng, case):
    shapes, ours, theirs = TORCH_CASES[case]
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    result = ours(*[Tensor(a) for a in arrays])
    expected = theirs(*[torch.from_numpy(a) for a in arrays]).numpy()
    assert result.shape == expected.shape and result.dtype == expected.dtype
    np.testing.assert_allclose(result.data, expected, rtol=1e-5, atol=1e-6)


# ---- API consistency -------------------------------------------------------------------------

@pytest.mark.api_consistency
@pytest.mark.parametrize("method", ["sum", "mean", "max", "min"])
def test_reductions_share_one_signature(method):
    parameters = inspect.signature(getattr(Tensor, method)).parameters
    assert list(parameters) == ["self", "axis", "keepdims"]
    assert parameters["axis"].default is None and parameters["keepdims"].default is False


OPERATIONS = {
    "add": lambda t: t + 1, "sub": lambda t: t - t, "mul": lambda t: t * t,
    "div": lambda t: t / 2, "pow": lambda t: t ** 2, "neg": lambda t: -t,
    "matmul": lambda t: t @ t.T, "sum": lambda t: t.sum(), "mean": lambda t: t.mean(axis=0),
    "max": lambda t: t.max(), "min": lambda t: t.min(), "reshape": lambda t: t.reshape(-1),
    "T": lambda t: t.T, "getitem": lambda t: t[0], "exp": lambda t: t.exp(),
    "log": lambda t: t.log(), "sqrt": lambda t: t.sqrt(), "abs": lambda t: t.abs(),
    "clip": lambda t: t.clip(0, 1), "maximum": lambda t: t.maximum(2.0),
    "gt": lambda t: t > 1, "detach": lambda t: t.detach(),
}


@pytest.mark.api_consistency
def test_every_operation_returns_a_tensor_holding_an_ndarray():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    for name, operation in OPERATIONS.items():
        result = operation(t)
        assert type(result) is Tensor, name
        assert isinstance(result.data, np.ndarray), name


@pytest.mark.api_consistency
def test_numpy_like_attributes():
    t = Tensor(np.zeros((2, 3, 4)))
    assert (t.shape, t.ndim, t.size, t.dtype) == ((2, 3, 4), 3, 24, np.float32)
    assert len(t) == 2 and [row.shape for row in t] == [(3, 4), (3, 4)]
    assert t.numpy() is t.data


@pytest.mark.api_consistency
def test_repr_shows_values_and_non_default_details():
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(Tensor([1, 2])) == "Tensor([1, 2], dtype=int64)"
    assert repr(Tensor([1.0], requires_grad=True)) == "Tensor([1.], requires_grad=True)"
    assert repr(Tensor([1.0], requires_grad=True) * 2) == "Tensor([2.], op='mul')"
