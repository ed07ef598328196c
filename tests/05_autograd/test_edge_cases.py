"""Edge cases: deep and wide graphs, broadcasting corners, repeated indices, ties and kinks,
empty and 0-d tensors, misuse errors, and points where a derivative needs care."""
import sys

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import GradcheckError, gradcheck, no_grad
from tinytorch.core.tensor import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(values, dtype=dtype, requires_grad=True)


# ---- graph size -------------------------------------------------------------------------------


def test_ten_thousand_chained_ops_need_no_recursion():
    steps = 10_000
    assert steps > sys.getrecursionlimit()            # a recursive walk would fail here
    x = leaf([1.0])
    y = x
    for _ in range(steps):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001 ** steps], rtol=1e-9)


def test_deep_chain_of_mixed_ops():
    x = leaf([0.5, -0.25])
    y = x
    for _ in range(2_500):                            # 4 ops per round: 10,000 ops
        y = ((y + 1.0) - 1.0).reshape(2, 1).reshape(2)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data, rtol=1e-9)


def test_wide_fan_out_accumulates_every_use():
    x = leaf([2.0, 3.0])
    total = x * 0
    for i in range(1_000):
        total = total + x * float(i % 3)
    total.sum().backward()
    expected = sum(i % 3 for i in range(1_000))       # = 999
    np.testing.assert_array_equal(x.grad.data, [expected, expected])


def test_diamond_graph_sums_both_branches():
    x = leaf([3.0])
    a, b = x * 2, x.exp()
    (a * b).backward(np.ones(1))                      # d/dx 2x e^x = 2 e^x + 2x e^x
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(3) + 6 * np.exp(3), rtol=1e-12)


# ---- broadcasting corners -------------------------------------------------------------------


@pytest.mark.shape
@pytest.mark.parametrize("shape_a, shape_b", [
    ((), (2, 3)), ((1,), (2, 3)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)),
    ((1, 1), (5,)), ((4, 1, 1), (1, 3, 2)), ((2, 3), (2, 3)),
])
def test_broadcast_gradients_sum_back_to_each_shape(shape_a, shape_b, rng):
    a = leaf(rng.standard_normal(shape_a))
    b = leaf(rng.standard_normal(shape_b))
    out = a * b
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    # the sum of all gradient entries is preserved by the reduction
    np.testing.assert_allclose(a.grad.data.sum(),
                               (upstream * np.broadcast_to(b.data, out.shape)).sum())
    np.testing.assert_allclose(b.grad.data.sum(),
                               (upstream * np.broadcast_to(a.data, out.shape)).sum())
    assert gradcheck(lambda p, q: p * q + p / (q * q + 1), [a, b]) < 1e-6


def test_scalar_parameter_scaling_a_matrix():
    scale = leaf(2.0)
    m = Tensor(np.arange(6.0).reshape(2, 3))
    (scale * m).sum().backward()
    assert scale.grad.shape == () and scale.grad.item() == 15.0


def test_python_scalar_and_array_operands_get_no_gradient():
    x = leaf([1.0, 2.0])
    constant = np.array([3.0, 4.0])
    (constant * x + 5.0 - constant / 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, constant)


# ---- indexing ---------------------------------------------------------------------------------


def test_repeated_indices_accumulate_like_an_embedding_lookup():
    table = leaf(np.arange(8.0).reshape(4, 2))
    table[[0, 0, 0, 2, 3, 2]].sum().backward()
    np.testing.assert_array_equal(table.grad.data, [[3, 3], [0, 0], [2, 2], [1, 1]])


def test_overlapping_slices_accumulate():
    x = leaf(np.zeros(5))
    (x[:3].sum() + x[2:].sum() + x[2] * 10).backward()
    np.testing.assert_array_equal(x.grad.data, [1, 1, 12, 1, 1])


def test_boolean_mask_gradient_is_zero_off_the_mask():
    x = leaf([[1.0, -2.0], [-3.0, 4.0]])
    (x[x > 0] * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[5, 0], [0, 5]])


def test_empty_selection_gives_a_zero_gradient():
    x = leaf([1.0, 2.0, 3.0])
    (x[x > 10].sum() + x[0]).backward()
    np.testing.assert_array_equal(x.grad.data, [1, 0, 0])


def test_iterating_over_a_tensor_builds_getitem_nodes():
    x = leaf([1.0, 2.0, 3.0])
    sum(row * row for row in x).backward()              # Python's sum starts with 0 + row
    np.testing.assert_array_equal(x.grad.data, [2, 4, 6])


# ---- ties, kinks and boundaries -----------------------------------------------------------------


def test_max_ties_share_the_gradient_equally():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    x.max().backward()                                  # 3.0 appears twice overall
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [0, 0, 0]])


def test_min_ties_share_the_gradient_equally():
    x = leaf([4.0, 1.0, 1.0, 7.0])
    x.min().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0.5, 0.5, 0])


def test_maximum_tie_splits_in_half():
    a, b = leaf([1.0, 2.0, 5.0]), leaf([1.0, 3.0, 4.0])
    a.maximum(b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 0, 1])
    np.testing.assert_array_equal(b.grad.data, [0.5, 1, 0])


def test_relu_and_abs_have_zero_gradient_at_zero():
    x = leaf([-1.0, 0.0, 2.0])
    (ReLU()(x) + x.abs()).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0 - 1, 0 + 0, 1 + 1])


def test_clip_passes_the_gradient_at_the_bounds():
    x = leaf([-2.0, -1.0, 0.0, 1.0, 2.0])
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0])


def test_gradcheck_reports_a_kink_it_cannot_check():
    # At exactly 0 the one-sided slopes of ReLU differ (0 and 1): the central difference
    # sees half of each, autograd says 0, and gradcheck names the entry.
    x = leaf([0.0, 1.0])
    with pytest.raises(GradcheckError,
                       match=r"input 0 at index \(0,\): autograd 0, finite difference"):
        gradcheck(lambda t: ReLU()(t).sum(), [x])
    assert gradcheck(lambda t: ReLU()(t).sum(), [leaf([0.5, 1.0])]) < 1e-6


# ---- sizes 0 and 1 -------------------------------------------------------------------------------


@pytest.mark.shape
def test_empty_tensor_gets_an_empty_gradient():
    x = leaf(np.zeros((0, 3)))
    (x.sum(axis=0) * 2).sum().backward()
    assert x.grad.shape == (0, 3)


def test_one_element_non_scalar_backward_needs_no_grad():
    x = leaf([[2.0]])
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.data, [[4.0]])


def test_backward_on_a_leaf_itself():
    x = leaf(3.0)
    x.backward()
    assert x.grad.item() == 1.0
    y = leaf([1.0, 2.0])
    y.backward(np.array([5.0, 6.0]))
    np.testing.assert_array_equal(y.grad.data, [5.0, 6.0])


def test_backward_twice_through_the_same_graph_accumulates():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    loss.backward()                           # the graph is kept; the gradient adds up
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])


# ---- what does not get a gradient ---------------------------------------------------------------


def test_parameter_that_does_not_reach_the_output_keeps_none():
    used, unused = leaf([1.0]), leaf([1.0])
    _ = unused * 2
    (used * 3).sum().backward()
    assert unused.grad is None and used.grad.item() == 3.0


def test_tensor_computed_under_no_grad_is_a_constant_later():
    x = leaf([2.0])
    with no_grad():
        frozen = x * x
    (frozen * x).sum().backward()             # only the direct use of x counts
    np.testing.assert_array_equal(x.grad.data, [4.0])


def test_comparison_results_never_carry_a_graph():
    x = leaf([1.0, -1.0])
    mask = x > 0
    assert not mask.requires_grad and mask.dtype == np.bool_


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point"):
        Tensor([1, 2], requires_grad=True)


def test_backward_on_a_detached_tensor_raises():
    y = (leaf([1.0]) * 2).detach()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_backward_under_no_grad_still_differentiates_a_recorded_graph():
    x = leaf([1.0, 2.0])
    loss = (x ** 3).sum()
    with no_grad():
        loss.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 12.0])


# ---- dtypes --------------------------------------------------------------------------------------


@pytest.mark.shape
def test_mixed_precision_gradients_take_each_parameters_dtype():
    single = Tensor([1.0, 2.0], requires_grad=True)                   # float32
    double = Tensor([3.0, 4.0], dtype=np.float64, requires_grad=True)
    out = single * double
    assert out.dtype == np.float64
    out.sum().backward()
    assert single.grad.dtype == np.float32 and double.grad.dtype == np.float64
    np.testing.assert_array_equal(single.grad.data, [3.0, 4.0])


def test_float32_root_gradient_cast_from_float64_upstream():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(np.array([0.1, 0.2], dtype=np.float64))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, np.array([0.2, 0.4], dtype=np.float32))


# ---- transposes in PyTorch's two-argument form ---------------------------------------------------


def test_two_argument_transpose_swaps_like_pytorch(rng):
    x = leaf(rng.standard_normal((2, 3)))
    out = x.transpose(0, 1)                   # PyTorch: swap dims 0 and 1 (numpy: identity)
    assert out.shape == (3, 2)
    upstream = rng.standard_normal((3, 2))
    out.backward(upstream)
    np.testing.assert_array_equal(x.grad.data, upstream.T)


# ---- powers at 0: PyTorch gives 0 where the derivative is 0 --------------------------------------


def test_pow_exponent_gradient_at_zero_base_is_zero():
    base, exponent = leaf([0.0, 2.0]), leaf([2.0, 2.0])
    (base ** exponent).sum().backward()
    np.testing.assert_allclose(base.grad.data, [0.0, 4.0])
    np.testing.assert_allclose(exponent.grad.data, [0.0, 4 * np.log(2)])


def test_pow_zero_exponent_gradient_at_zero_is_zero():
    x = leaf([0.0, 2.0])
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_pow_with_constant_zero_base_differentiates_the_exponent():
    w = leaf([0.5, 0.5])
    (Tensor([0.0, 1.0], dtype=np.float64) ** w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])
