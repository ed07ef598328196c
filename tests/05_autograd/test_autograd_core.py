"""Core behaviour of the autograd engine: hand-computed gradients for every rule,
accumulation, broadcasting, grad mode, detach, backward's arguments and errors."""
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core import activations, autograd, layers, losses, tensor
from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.autograd import (
    BACKWARD_RULES,
    GradcheckError,
    enable_grad,
    gradcheck,
    is_grad_enabled,
    no_grad,
    rule,
    topological_order,
    unbroadcast,
)
from tinytorch.core.losses import binary_cross_entropy_with_logits
from tinytorch.core.tensor import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(values, dtype=dtype, requires_grad=True)


# ---- each backward rule against its derivative, computed by hand ---------------------------

A = np.array([1.0, 2.0, 4.0])
B = np.array([3.0, -1.0, 0.5])

# (name, f(a, b) -> scalar Tensor, expected d/da, expected d/db or None)
HAND_CASES = [
    ("add", lambda a, b: (a + b).sum(), np.ones(3), np.ones(3)),
    ("sub", lambda a, b: (a - b).sum(), np.ones(3), -np.ones(3)),
    ("mul", lambda a, b: (a * b).sum(), B, A),
    ("div", lambda a, b: (a / b).sum(), 1 / B, -A / B ** 2),
    ("pow_const", lambda a, b: (a ** 3).sum(), 3 * A ** 2, None),
    ("pow_both", lambda a, b: (a ** b).sum(), B * A ** (B - 1), A ** B * np.log(A)),
    ("rpow", lambda a, b: (2 ** a).sum(), 2 ** A * np.log(2), None),
    ("neg", lambda a, b: (-a).sum(), -np.ones(3), None),
    ("maximum", lambda a, b: a.maximum(b).sum(), np.array([0.0, 1, 1]), np.array([1.0, 0, 0])),
    ("dot", lambda a, b: a @ b, B, A),
    ("sum", lambda a, b: (a.sum() * b).sum(), np.full(3, B.sum()), np.full(3, A.sum())),
    ("mean", lambda a, b: a.mean(), np.full(3, 1 / 3), None),
    ("max", lambda a, b: a.max() * 2, np.array([0.0, 0, 2]), None),
    ("min", lambda a, b: b.min() * 2, None, np.array([0.0, 2, 0])),
    ("exp", lambda a, b: a.exp().sum(), np.exp(A), None),
    ("log", lambda a, b: a.log().sum(), 1 / A, None),
    ("sqrt", lambda a, b: a.sqrt().sum(), 0.5 / np.sqrt(A), None),
    ("abs", lambda a, b: b.abs().sum(), None, np.sign(B)),
    ("clip", lambda a, b: (a.clip(1.5, 3.0) * b).sum(), np.array([0.0, -1, 0]), A.clip(1.5, 3.0)),
    ("reshape", lambda a, b: (a.reshape(3, 1) * b.reshape(1, 3)).sum(),
     np.full(3, B.sum()), np.full(3, A.sum())),
    ("getitem", lambda a, b: a[[0, 0, 2]].sum(), np.array([2.0, 0, 1]), None),
]


@pytest.mark.parametrize("name, f, grad_a, grad_b", HAND_CASES, ids=[c[0] for c in HAND_CASES])
def test_rule_matches_hand_derivative(name, f, grad_a, grad_b):
    a, b = leaf(A), leaf(B)
    f(a, b).backward()
    for operand, expected in ((a, grad_a), (b, grad_b)):
        if expected is None:
            assert operand.grad is None
        else:
            np.testing.assert_allclose(operand.grad.data, expected, rtol=1e-12, atol=1e-12)


def test_transpose_gradient_moves_entries_back():
    x = leaf(np.arange(6.0).reshape(2, 3))
    weights = np.arange(6.0).reshape(3, 2) * 10
    (x.T * Tensor(weights)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, weights.T)


def test_matmul_matrix_gradient_formulas():
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([[5.0, 6.0, 7.0], [8.0, 9.0, 10.0]])
    upstream = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    (a @ b).backward(upstream)
    np.testing.assert_array_equal(a.grad.data, upstream @ b.data.T)   # dA = G B^T
    np.testing.assert_array_equal(b.grad.data, a.data.T @ upstream)   # dB = A^T G


def test_micrograd_example_chain_rule():
    # f = (x*y + z) * x at x=2, y=-3, z=10: df/dx = 2xy + z = -2, df/dy = x^2 = 4, df/dz = x = 2
    x, y, z = leaf(2.0), leaf(-3.0), leaf(10.0)
    ((x * y + z) * x).backward()
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-2.0, 4.0, 2.0)


# ---- accumulation ------------------------------------------------------------------------


def test_gradients_accumulate_across_two_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3 + 2, 3 + 4])


@pytest.mark.parametrize("f, expected", [
    (lambda x: x * x, lambda v: 2 * v),
    (lambda x: x + x, lambda v: np.full_like(v, 2)),
    (lambda x: x * x * x, lambda v: 3 * v ** 2),
    (lambda x: x / x, lambda v: np.zeros_like(v)),
    (lambda x: x - x * 2, lambda v: -np.ones_like(v)),
], ids=["x*x", "x+x", "x*x*x", "x/x", "x-2x"])
def test_tensor_used_twice_gets_both_contributions(f, expected):
    x = leaf([1.5, -2.0, 3.0])
    f(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, expected(x.data), rtol=1e-12, atol=1e-15)


def test_intermediate_used_twice_sums_both_paths():
    x = leaf([2.0])
    h = x * 3                       # h = 6
    (h * h + h).sum().backward()    # d/dx (9x^2 + 3x) = 18x + 3
    assert x.grad.item() == 39.0
    assert h.grad is None           # only leaves keep .grad


# ---- broadcasting ------------------------------------------------------------------------


def test_bias_gradient_is_sum_over_batch():
    x = Tensor(np.arange(12.0).reshape(4, 3))
    bias = leaf(np.zeros(3))
    upstream = np.arange(12.0).reshape(4, 3) * 0.5
    (x + bias).backward(upstream)
    assert bias.grad.shape == (3,)
    np.testing.assert_array_equal(bias.grad.data, upstream.sum(axis=0))


def test_size_one_axis_gradient_is_summed_with_keepdims():
    column = leaf(np.ones((3, 1)))
    upstream = np.arange(12.0).reshape(3, 4)
    (column * Tensor(np.ones((3, 4)))).backward(upstream)
    np.testing.assert_array_equal(column.grad.data, upstream.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("grad_shape, shape", [
    ((4, 3), (3,)), ((4, 3), (1, 3)), ((4, 3), (4, 1)), ((2, 4, 3), (4, 1)),
    ((2, 4, 3), ()), ((2, 4, 3), (2, 1, 3)), ((5,), (5,)), ((2, 1, 3), (1, 1, 3)),
])
def test_unbroadcast_sums_to_the_input_shape(grad_shape, shape):
    grad = np.arange(np.prod(grad_shape), dtype=np.float64).reshape(grad_shape)
    reduced = unbroadcast(grad, shape)
    assert reduced.shape == shape
    assert reduced.sum() == grad.sum()              # every entry counted exactly once
    # summing broadcast copies == the gradient of sum(broadcast(x) * grad)
    ones = np.ones(shape)
    np.testing.assert_array_equal(reduced,
                                  unbroadcast(np.broadcast_to(ones, grad_shape) * grad, shape))


# ---- grad mode ---------------------------------------------------------------------------


def test_grad_mode_is_enabled_by_default():
    assert is_grad_enabled() is True


def test_no_grad_records_nothing_and_restores():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert is_grad_enabled() is False
        y = x * 2
    assert is_grad_enabled() is True
    assert not y.requires_grad and y.is_leaf and y._parents == ()
    np.testing.assert_array_equal(y.data, [2.0, 4.0])    # the values are still computed


def test_enable_grad_inside_no_grad_records():
    x = leaf([1.0, 2.0])
    with no_grad():
        with enable_grad():
            assert is_grad_enabled() is True
            y = (x * x).sum()
        assert is_grad_enabled() is False
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_nesting_restores_each_level():
    seen = []
    with no_grad():
        seen.append(is_grad_enabled())
        with enable_grad():
            seen.append(is_grad_enabled())
            with no_grad():
                seen.append(is_grad_enabled())
                with no_grad():
                    seen.append(is_grad_enabled())
                seen.append(is_grad_enabled())
            seen.append(is_grad_enabled())
        seen.append(is_grad_enabled())
    seen.append(is_grad_enabled())
    assert seen == [False, True, False, False, False, True, False, True]


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf([3.0])

    @no_grad()
    def evaluate(t):
        return t * 2, is_grad_enabled()

    @enable_grad()
    def record(t):
        return t * 2, is_grad_enabled()

    out, mode = evaluate(x)
    assert mode is False and not out.requires_grad
    with no_grad():
        out, mode = record(x)
    assert mode is True and out.requires_grad and out._op == "mul"
    out, mode = evaluate(x)           # a decorator can be used more than once
    assert mode is False
    assert is_grad_enabled() is True


@pytest.mark.parametrize("make_context", [no_grad, enable_grad])
def test_exception_inside_block_restores_mode(make_context):
    for outer in (True, False):
        with (enable_grad() if outer else no_grad()):
            with pytest.raises(KeyError):
                with make_context():
                    raise KeyError("boom")
            assert is_grad_enabled() is outer
    assert is_grad_enabled() is True


def test_exception_inside_decorated_function_restores_mode():
    @no_grad()
    def fails():
        assert is_grad_enabled() is False
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        fails()
    assert is_grad_enabled() is True


def test_leaf_created_under_no_grad_still_requires_grad():
    with no_grad():
        w = Tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])


# ---- detach ------------------------------------------------------------------------------


def test_detach_stops_gradients():
    x = leaf([1.0, 2.0, 3.0])
    y = x.detach()
    assert not y.requires_grad and y.is_leaf
    assert y.data is x.data                          # same numbers, no copy (as in PyTorch)
    (y * x).sum().backward()                         # only the path through x counts
    np.testing.assert_array_equal(x.grad.data, x.data)


def test_detached_branch_contributes_nothing():
    x = leaf([2.0])
    ((x * 5).detach() * 0 + x * 4).sum().backward()
    assert x.grad.item() == 4.0


# ---- backward's arguments and errors ---------------------------------------------------------


def test_backward_on_non_scalar_without_grad_raises_clearly():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match=r"one-element tensor.*\(2,\).*grad="):
        y.backward()


@pytest.mark.parametrize("grad",
                         [Tensor([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]],
                         ids=["Tensor", "ndarray", "list"])
def test_backward_with_explicit_grad(grad):
    x = leaf([1.0, 1.0, 1.0])
    (x * Tensor([2.0, 3.0, 4.0])).backward(grad)
    np.testing.assert_array_equal(x.grad.data, [2.0, 6.0, 12.0])


def test_backward_grad_of_wrong_shape_raises():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(ValueError, match=r"grad shape \(3,\) does not match.*\(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()
    with no_grad():
        y = leaf([1.0]).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_unknown_op_has_a_clear_error():
    x = leaf([1.0])
    y = Tensor._make(x.data * 2, "no_such_op_for_this_test", (x,))
    with pytest.raises(RuntimeError, match="no backward rule for op 'no_such_op_for_this_test'"):
        y.backward()


def test_only_leaves_keep_grad():
    x = leaf([1.0, 2.0])
    h = x * 2
    (h.exp()).sum().backward()
    assert x.is_leaf and not h.is_leaf
    assert h.grad is None and x.grad is not None


@pytest.mark.shape
@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 3, 4), (2, 1, 3, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_shape_and_dtype_match_the_parameter(shape, dtype):
    p = Tensor(np.ones(shape), dtype=dtype, requires_grad=True)
    other = Tensor(np.full((2,) + shape, 3.0), dtype=np.float64)     # broadcast, other dtype
    (p * other).sum().backward()
    assert p.grad.shape == shape and p.grad.dtype == dtype
    assert isinstance(p.grad, Tensor) and not p.grad.requires_grad
    np.testing.assert_array_equal(p.grad.data, np.full(shape, 6.0))


# ---- the engine's pieces --------------------------------------------------------------------


def test_topological_order_puts_each_tensor_after_its_parents():
    x, w = leaf([1.0]), leaf([2.0])
    constant = Tensor([5.0])
    a = x * w
    b = a + constant
    c = (a * b).sum()
    order = topological_order(c)
    position = {id(t): i for i, t in enumerate(order)}
    assert order[-1] is c and len(order) == 6          # x, w, a, b, a*b, c: not the constant
    assert id(constant) not in position
    for node in order:
        for parent in node._parents:
            if parent.requires_grad:
                assert position[id(parent)] < position[id(node)]


# ---- gradcheck itself --------------------------------------------------------------------


def test_gradcheck_returns_a_small_error_for_correct_rules(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    error = gradcheck(lambda t: (t * t).exp().sum(axis=1), [x])
    assert 0 <= error < 1e-6


def test_gradcheck_catches_a_wrong_rule(monkeypatch):
    # A deliberately wrong rule for "doubling": 3 * grad instead of 2 * grad.
    monkeypatch.setitem(BACKWARD_RULES, "wrong_double", lambda out, grad: (3 * grad,))
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 at index \(0,\)"):
        gradcheck(lambda t: Tensor._make(2 * t.data, "wrong_double", (t,)), [x])


def test_rule_decorator_registers_under_every_name(monkeypatch):
    monkeypatch.setattr(autograd, "BACKWARD_RULES", dict(BACKWARD_RULES))   # register into a copy

    @rule("twice_a", "twice_b")
    def _twice(out, grad):
        return (2 * grad,)

    assert autograd.BACKWARD_RULES["twice_a"] is _twice is autograd.BACKWARD_RULES["twice_b"]
    x = Tensor([1.0, 2.0], requires_grad=True)
    Tensor._make(2 * x.data, "twice_b", (x,)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_gradcheck_restores_data_dtype_and_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)           # float32
    x.grad = Tensor([7.0, 7.0])
    gradcheck(lambda t: t * t, [x])
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    np.testing.assert_array_equal(x.grad.data, [7.0, 7.0])


def test_gradcheck_argument_errors():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        gradcheck(lambda t: t * 2, [Tensor([1.0])])
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        gradcheck(lambda t: 2.0, [Tensor([1.0], requires_grad=True)])


# ---- export and API ---------------------------------------------------------------------------

API = ["no_grad", "enable_grad", "is_grad_enabled", "gradcheck"]   # graph.toml's api


@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.core.autograd", API)
    assert all(callable(obj) for obj in found.values())
    assert issubclass(GradcheckError, AssertionError)       # `pytest.raises(AssertionError)` works


@pytest.mark.export_import
def test_import_has_no_output_and_no_demo_code(run_python):
    # The notebook's demo cells ("Trying it out") must not be exported.
    assert run_python("import tinytorch.core.autograd") == ""
    text = Path(autograd.__file__).read_text(encoding="utf-8")
    assert text.startswith("# Generated from modules/05_autograd/autograd_dev.py")
    assert "print(" not in text


def own_rules():
    """The ops module 05 registers rules for (later modules, like 09's conv2d, add their own)."""
    return {op for op, fn in BACKWARD_RULES.items() if fn.__module__ == autograd.__name__}


@pytest.mark.api_consistency
def test_every_recorded_op_has_a_rule_and_every_rule_an_op():
    # Read modules 01-04 for the op names they record (with parents), and compare.
    source = "".join(inspect.getsource(m) for m in (tensor, activations, layers, losses))
    recorded = set(re.findall(r'_make\([^"\n]*"(\w+)",\s*\((?!\))', source))    # not `()` parents
    recorded |= set(re.findall(r'_binary\(\w+,\s*"(\w+)"', source))
    recorded |= set(re.findall(r'_reduce\("(\w+)"', source))
    assert len(recorded) == 24
    assert recorded == own_rules()


@pytest.mark.api_consistency
def test_every_rule_returns_one_gradient_per_parent():
    a, b = leaf([[0.5, 2.0]]), leaf([[1.5], [0.25]])
    outputs = [a + b, a - b, a * b, a / b, a ** b, -a, a.maximum(b), a @ b, a.sum(), a.mean(),
               a.max(), a.min(), a.reshape(2), a.T, a[0], a.exp(), a.log(), a.sqrt(), a.abs(),
               a.clip(0, 1), ReLU()(a), Sigmoid()(a), Tanh()(a),
               binary_cross_entropy_with_logits(a, leaf([[1.0, 0.0]]))]
    assert {out._op for out in outputs} == own_rules()
    for out in outputs:
        grads = BACKWARD_RULES[out._op](out, np.ones(out.shape))
        assert len(grads) == len(out._parents), out._op
        for parent, grad in zip(out._parents, grads):
            assert grad is None or np.broadcast_shapes(np.shape(grad), parent.shape), out._op


@pytest.mark.api_consistency
def test_grad_mode_names_mirror_pytorch(torch):
    for name in API[:3]:
        assert hasattr(torch, name)
    with torch.no_grad(), no_grad():
        assert torch.is_grad_enabled() == is_grad_enabled() == False   # noqa: E712
        with torch.enable_grad(), enable_grad():
            assert torch.is_grad_enabled() == is_grad_enabled() == True   # noqa: E712


@pytest.mark.api_consistency
def test_graph_flags_match_pytorch(torch):
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    c = Tensor([5.0, 6.0], dtype=np.float64)
    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    tw = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    tc = torch.tensor([5.0, 6.0], dtype=torch.float64)
    ours = {"x": x, "c": c, "xw": x * w, "cc": c * c, "detached": (x * w).detach()}
    theirs = {"x": tx, "c": tc, "xw": tx * tw, "cc": tc * tc, "detached": (tx * tw).detach()}
    with no_grad():
        ours["no_grad"] = x * w
    with torch.no_grad():
        theirs["no_grad"] = tx * tw
    for name in ours:
        assert (ours[name].requires_grad, ours[name].is_leaf) == \
            (theirs[name].requires_grad, theirs[name].is_leaf), name

    loss, tloss = (ours["xw"] * ours["xw"]).sum(), (theirs["xw"] * theirs["xw"]).sum()
    loss.backward(1.0)                         # the upstream gradient positionally, as in PyTorch
    tloss.backward(torch.tensor(1.0, dtype=torch.float64))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    np.testing.assert_array_equal(w.grad.data, tw.grad.numpy())
    assert ours["xw"].grad is None     # a non-leaf keeps no grad (PyTorch: None, with a warning)
