"""Gradient flow: every differentiable operation of modules 01-04, checked against central
finite differences in float64 (`gradcheck`, and an independent helper), against formulas
derived by hand, and against PyTorch in float32.

Module 05 is the first module with autograd, so the gradient checks of 02, 03 and 04 live
here and are credited to them with `@pytest.mark.covers(...)`."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

covers_02 = pytest.mark.covers("02_activations")
covers_03 = pytest.mark.covers("03_layers")
covers_04 = pytest.mark.covers("04_losses")

TOLERANCE = 1e-6      # float64 central differences with eps=1e-6 agree far better than this


# Inputs are described by kind and shape, and made from a fixed seed.
def normal(*shape):
    return ("normal", shape)


def positive(*shape):
    """For log, sqrt, the base of a power, a divisor: values in [0.5, 2]."""
    return ("positive", shape)


def away_from_zero(*shape):
    """For kinks at 0 (ReLU, abs): |values| in [0.2, 2], so x +- eps stays on one side."""
    return ("away", shape)


def make(spec, rng):
    if isinstance(spec, np.ndarray):
        return Tensor(spec, dtype=np.float64, requires_grad=True)
    kind, shape = spec
    if kind == "normal":
        data = rng.standard_normal(shape)
    elif kind == "positive":
        data = rng.uniform(0.5, 2.0, shape)
    else:
        data = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return Tensor(data, dtype=np.float64, requires_grad=True)


def check(fn, specs, rng):
    inputs = [make(spec, rng) for spec in specs]
    error = gradcheck(fn, inputs)
    assert error < TOLERANCE


# ---- every differentiable operation of module 01 -------------------------------------------

MASK = np.array([[True, False, True, False], [False, False, True, True],
                 [True, True, False, False]])

OPS = [
    # arithmetic, with broadcasting
    ("add", lambda a, b: a + b, [normal(3, 4), normal(3, 4)]),
    ("add_row_broadcast", lambda a, b: a + b, [normal(3, 4), normal(4)]),
    ("add_outer_broadcast", lambda a, b: a + b, [normal(3, 1), normal(1, 4)]),
    ("add_0d_tensor", lambda a, b: a + b, [normal(), normal(2, 3)]),
    ("radd_number", lambda a: 1.5 + a, [normal(2, 3)]),
    ("sub", lambda a, b: a - b, [normal(3, 4), normal(3, 4)]),
    ("sub_broadcast_3d", lambda a, b: a - b, [normal(2, 3, 4), normal(3, 1)]),
    ("rsub_number", lambda a: 1 - a, [normal(3)]),
    ("mul", lambda a, b: a * b, [normal(3, 4), normal(3, 4)]),
    ("mul_column_broadcast", lambda a, b: a * b, [normal(2, 3), normal(2, 1)]),
    ("rmul_array", lambda a: np.arange(4.0) * a, [normal(3, 4)]),
    ("div", lambda a, b: a / b, [normal(3, 4), positive(3, 4)]),
    ("div_broadcast", lambda a, b: a / b, [normal(3, 4), positive(4)]),
    ("rtruediv_number", lambda a: 2 / a, [positive(3)]),
    ("pow_constant", lambda a: a ** 3, [normal(3, 4)]),
    ("pow_fraction", lambda a: a ** 1.5, [positive(3, 4)]),
    ("pow_negative_exponent", lambda a: a ** -2, [positive(5)]),
    ("pow_both", lambda a, b: a ** b, [positive(3, 2), normal(3, 2)]),
    ("pow_broadcast_exponent", lambda a, b: a ** b, [positive(2, 3), normal(3)]),
    ("rpow_number", lambda a: 2.0 ** a, [normal(3)]),
    ("neg", lambda a: -a, [normal(2, 3)]),
    ("maximum", lambda a, b: a.maximum(b), [normal(3, 4), normal(3, 4)]),
    ("maximum_broadcast", lambda a, b: a.maximum(b), [normal(3, 4), normal(4)]),
    ("maximum_number", lambda a: a.maximum(0.0), [away_from_zero(3, 4)]),
    # matrix multiplication
    ("matmul_1d_1d", lambda a, b: a @ b, [normal(4), normal(4)]),
    ("matmul_2d_1d", lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    ("matmul_1d_2d", lambda a, b: a @ b, [normal(4), normal(4, 3)]),
    ("matmul_2d_2d", lambda a, b: a @ b, [normal(2, 4), normal(4, 3)]),
    ("matmul_batched", lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
    ("matmul_batch_broadcast", lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
    ("matmul_method", lambda a, b: a.matmul(b), [normal(2, 3), normal(3, 2)]),
    ("rmatmul_array", lambda b: np.linspace(-1, 1, 6).reshape(2, 3) @ b, [normal(3, 4)]),
    # shapes
    ("reshape", lambda a: a.reshape(6, 4), [normal(2, 3, 4)]),
    ("reshape_tuple_minus_one", lambda a: a.reshape((4, -1)), [normal(2, 3, 4)]),
    ("reshape_flatten", lambda a: a.reshape(-1), [normal(2, 3, 4)]),
    ("transpose_reverse", lambda a: a.transpose(), [normal(2, 3, 4)]),
    ("transpose_swap_last_two", lambda a: a.transpose(-2, -1), [normal(2, 3, 4)]),
    ("transpose_permutation", lambda a: a.transpose((2, 0, 1)), [normal(2, 3, 4)]),
    ("transpose_permutation_args", lambda a: a.transpose(1, 2, 0), [normal(2, 3, 4)]),
    ("T", lambda a: a.T, [normal(3, 4)]),
    # indexing
    ("getitem_int", lambda a: a[1], [normal(3, 4)]),
    ("getitem_slices", lambda a: a[1:, ::2], [normal(3, 4)]),
    ("getitem_negative_step", lambda a: a[::-1, 1:3], [normal(3, 4)]),
    ("getitem_none_ellipsis", lambda a: a[None, ..., 2], [normal(3, 4)]),
    ("getitem_fancy_repeated", lambda a: a[[0, 2, 0, 0]], [normal(3, 4)]),
    ("getitem_fancy_pairs", lambda a: a[[0, 1, 1, 2], [3, 0, 0, 2]], [normal(3, 4)]),
    ("getitem_slice_and_fancy", lambda a: a[1:, [0, 2, 2]], [normal(3, 4)]),
    ("getitem_mask", lambda a: a[MASK], [normal(3, 4)]),
    ("getitem_mask_tensor", lambda a: a[Tensor(MASK)], [normal(3, 4)]),
    ("getitem_index_tensor", lambda a: a[Tensor([2, 0, 2])], [normal(3, 4)]),
    # elementwise math
    ("exp", lambda a: a.exp(), [normal(3, 4)]),
    ("log", lambda a: a.log(), [positive(3, 4)]),
    ("sqrt", lambda a: a.sqrt(), [positive(3, 4)]),
    ("abs", lambda a: a.abs(), [away_from_zero(3, 4)]),
    ("clip_both", lambda a: a.clip(-0.5, 1.0), [np.array([-1.3, -0.4, 0.2, 0.7, 1.6, -0.6])]),
    ("clip_min_only", lambda a: a.clip(min=0.0), [away_from_zero(3, 4)]),
    ("clip_max_only", lambda a: a.clip(max=0.0), [away_from_zero(3, 4)]),
    # a chain of several
    ("chain", lambda a, b: ((a @ b).exp().sum(axis=1, keepdims=True) / (b * b).mean()).log(),
     [normal(3, 2), normal(2, 4)]),
]


@pytest.mark.parametrize("fn, specs", [case[1:] for case in OPS], ids=[case[0] for case in OPS])
def test_tensor_op_gradcheck(fn, specs, rng):
    check(fn, specs, rng)


AXES = [(None, False), (None, True), (0, False), (1, True), (-1, False), (-2, True),
        ((0, 2), False), ((0, 2), True), ([1, 2], False), ((-1, 0), True)]


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis, keepdims", AXES, ids=[f"{a}-{k}" for a, k in AXES])
def test_reduction_gradcheck(op, axis, keepdims, rng):
    check(lambda a: getattr(a, op)(axis=axis, keepdims=keepdims), [normal(2, 3, 4)], rng)


# ---- an independent central difference, so the tests do not only trust gradcheck -----------

def independent(name, f, shape, *marks):
    return pytest.param(f, shape, id=name, marks=list(marks))


INDEPENDENT = [
    independent("matmul_broadcast",
                lambda x: (x @ Tensor(np.linspace(-1, 1, 20).reshape(4, 5))).sum(), (2, 3, 4)),
    independent("pow_self", lambda x: ((x.abs() + 0.5) ** x).sum(), (3, 2)),
    independent("max_axis", lambda x: (x.max(axis=1) * Tensor([1.0, -2.0, 3.0])).sum(), (3, 4)),
    independent("fancy_index", lambda x: (x[[0, 0, 2], [1, 1, 3]] ** 2).sum(), (3, 4)),
    independent("reshape_transpose",
                lambda x: (x.reshape(4, 3).T * Tensor(np.arange(12.0).reshape(3, 4))).sum(),
                (2, 6)),
    independent("softmax",
                lambda x: (Softmax(dim=0)(x) * Tensor(np.arange(12.0).reshape(3, 4))).sum(),
                (3, 4), covers_02),
    independent("log_softmax", lambda x: LogSoftmax()(x)[[0, 1, 2], [3, 0, 1]].sum(), (3, 4),
                covers_02),
    independent("gelu", lambda x: GELU()(x).sum(), (2, 5), covers_02),
    independent("linear", lambda x: Linear(4, 3, seed=0)(x).sum(), (2, 4), covers_03),
    independent("cross_entropy", lambda x: CrossEntropyLoss()(x, np.array([1, 0, 3])), (3, 4),
                covers_04),
    independent("bce_with_logits",
                lambda x: BinaryCrossEntropyLoss()(x, Tensor([[0.0, 1.0], [1.0, 0.3]])), (2, 2),
                covers_04),
    independent("mse", lambda x: MSELoss()(x, Tensor(np.ones((2, 3)))), (2, 3), covers_04),
]


@pytest.mark.parametrize("f, shape", INDEPENDENT)
def test_autograd_matches_independent_central_difference(f, shape, rng, central_difference):
    data = rng.standard_normal(shape)
    x = Tensor(data, dtype=np.float64, requires_grad=True)
    f(x).backward()
    numeric = central_difference(lambda array: f(Tensor(array, dtype=np.float64)).item(), data)
    np.testing.assert_allclose(x.grad.data, numeric, rtol=1e-5, atol=1e-7)


# ---- module 02: activations ------------------------------------------------------------------

ACTIVATIONS = [
    ("relu", ReLU(), away_from_zero(3, 4)),
    ("sigmoid", Sigmoid(), normal(3, 4)),
    ("tanh", Tanh(), normal(3, 4)),
    ("gelu", GELU(), normal(3, 4)),
    ("softmax_default", Softmax(), normal(3, 4)),
    ("softmax_dim0", Softmax(dim=0), normal(2, 3, 4)),
    ("softmax_dim1", Softmax(dim=1), normal(2, 3, 4)),
    ("softmax_dim-1", Softmax(dim=-1), normal(2, 3, 4)),
    ("log_softmax_default", LogSoftmax(), normal(3, 4)),
    ("log_softmax_dim0", LogSoftmax(dim=0), normal(2, 3, 4)),
    ("log_softmax_dim1", LogSoftmax(dim=1), normal(2, 3, 4)),
    ("log_softmax_dim-1", LogSoftmax(dim=-1), normal(2, 3, 4)),
]


@covers_02
@pytest.mark.parametrize("activation, spec", [c[1:] for c in ACTIVATIONS],
                         ids=[c[0] for c in ACTIVATIONS])
def test_activation_gradcheck(activation, spec, rng):
    check(lambda x: activation(x), [spec], rng)


@covers_02
def test_elementwise_activation_gradients_match_their_formulas():
    data = np.array([-3.0, -0.5, 0.25, 2.0])
    expected = {
        "relu": (ReLU(), (data > 0).astype(float)),
        "sigmoid": (Sigmoid(), np.exp(-data) / (1 + np.exp(-data)) ** 2),
        "tanh": (Tanh(), 1 - np.tanh(data) ** 2),
    }
    for name, (activation, derivative) in expected.items():
        x = Tensor(data, dtype=np.float64, requires_grad=True)
        activation(x).sum().backward()
        np.testing.assert_allclose(x.grad.data, derivative, rtol=1e-12, err_msg=name)


@covers_02
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_vector_jacobian_product_formula(dim, rng):
    # d sum(softmax(x) * w) / dx = s * (w - sum(s * w)) along dim
    data, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x = Tensor(data, dtype=np.float64, requires_grad=True)
    (Softmax(dim=dim)(x) * Tensor(w, dtype=np.float64)).sum().backward()
    s = np.exp(data) / np.exp(data).sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(x.grad.data, s * (w - (s * w).sum(axis=dim, keepdims=True)),
                               rtol=1e-10)


@covers_02
def test_log_softmax_gradient_rows_sum_to_zero_when_upstream_is_one_hot(rng):
    # d log_softmax(x)[y] / dx = onehot(y) - softmax(x): each row sums to 0
    data = rng.standard_normal((4, 5))
    x = Tensor(data, dtype=np.float64, requires_grad=True)
    LogSoftmax()(x)[np.arange(4), np.array([0, 4, 2, 2])].sum().backward()
    onehot = np.eye(5)[[0, 4, 2, 2]]
    s = np.exp(data) / np.exp(data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.data, onehot - s, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(x.grad.data.sum(axis=1), 0.0, atol=1e-14)


# ---- module 03: layers ----------------------------------------------------------------------


@covers_03
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape", [(4, 3), (2, 5, 3), (3,)],
                         ids=["batch", "batch_time", "single"])
def test_linear_gradcheck_wrt_input_weight_and_bias(bias, input_shape, rng):
    layer = Linear(3, 2, bias=bias, seed=0)
    x = Tensor(rng.standard_normal(input_shape), dtype=np.float64, requires_grad=True)
    params = [x, layer.weight] + ([layer.bias] if bias else [])
    assert gradcheck(lambda *_: layer(x), params) < TOLERANCE


@covers_03
def test_linear_gradients_match_matrix_formulas(rng):
    layer = Linear(3, 2, seed=0)
    layer.bias.data = np.array([0.5, -0.5], dtype=np.float32)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    upstream = rng.standard_normal((4, 2)).astype(np.float32)
    layer(x).backward(upstream)
    # dW = x^T G, db = sum_rows G, dx = G W^T
    np.testing.assert_allclose(layer.weight.grad.data, x.data.T @ upstream, rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.data, upstream.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(x.grad.data, upstream @ layer.weight.data.T, rtol=1e-6)


@covers_03
@pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
def test_dropout_gradcheck_with_fixed_seed(p, rng):
    # A fresh Dropout with the same seed draws the same mask on every call.
    check(lambda x: Dropout(p, seed=3)(x), [normal(4, 5)], rng)


@covers_03
@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout_gradient_is_zero_where_dropped_and_scaled_elsewhere(p, rng):
    x = Tensor(rng.uniform(0.5, 1.5, (6, 7)), requires_grad=True)   # nonzero: dropped <=> output 0
    out = Dropout(p, seed=1)(x)
    out.backward(np.ones(out.shape))
    kept = out.data != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(x.grad.data, np.where(kept, 1 / (1 - p), 0.0), rtol=1e-6)


@covers_03
def test_dropout_in_eval_mode_passes_the_gradient_unchanged(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    Dropout(0.5, seed=0).eval()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((3, 4)))


@covers_03
@pytest.mark.parametrize("activation", [Tanh, ReLU, Sigmoid, GELU])
def test_sequential_mlp_gradcheck_wrt_all_parameters(activation, rng):
    model = Sequential(Linear(3, 5, seed=0), activation(), Linear(5, 4, seed=1), activation(),
                       Linear(4, 2, seed=2))
    for p in model.parameters():                               # nonzero biases, too
        if p.ndim == 1:
            p.data = rng.standard_normal(p.shape).astype(np.float32)
    x = Tensor(rng.standard_normal((6, 3)))
    params = model.parameters()
    assert len(params) == 6
    assert gradcheck(lambda *_: model(x), params) < TOLERANCE


@covers_03
@covers_04
@pytest.mark.parametrize("loss_name", ["mse", "cross_entropy", "bce"])
def test_mlp_with_loss_gradcheck_wrt_all_parameters(loss_name, rng):
    model = Sequential(Linear(4, 6, seed=0), Tanh(), Linear(6, 3, seed=1))
    x = Tensor(rng.standard_normal((5, 4)))
    targets = {
        "mse": (MSELoss(), Tensor(rng.standard_normal((5, 3)))),
        "cross_entropy": (CrossEntropyLoss(), np.array([0, 2, 1, 1, 0])),
        "bce": (BinaryCrossEntropyLoss(), Tensor((rng.random((5, 3)) > 0.5).astype(float))),
    }
    loss, target = targets[loss_name]
    assert gradcheck(lambda *_: loss(model(x), target), model.parameters()) < TOLERANCE


# ---- module 04: losses ----------------------------------------------------------------------


@covers_04
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 2)])
def test_mse_gradcheck_wrt_prediction_and_target(shape, rng):
    check(lambda p, t: MSELoss()(p, t), [normal(*shape), normal(*shape)], rng)


@covers_04
@pytest.mark.parametrize("n, c", [(1, 2), (5, 4), (8, 10)])
def test_cross_entropy_gradcheck_wrt_logits(n, c, rng):
    labels = rng.integers(0, c, n)
    check(lambda logits: CrossEntropyLoss()(logits, labels), [normal(n, c)], rng)


@covers_04
def test_cross_entropy_accepts_tensor_labels_in_gradcheck(rng):
    check(lambda logits: CrossEntropyLoss()(logits, Tensor([2, 0, 1])), [normal(3, 3)], rng)


@covers_04
@pytest.mark.parametrize("shape", [(6,), (4, 3)])
def test_bce_with_logits_gradcheck_wrt_logits_and_target(shape, rng):
    target = Tensor(rng.uniform(0.05, 0.95, shape), dtype=np.float64, requires_grad=True)
    logits = make(away_from_zero(*shape), rng)
    assert gradcheck(lambda x, y: BinaryCrossEntropyLoss()(x, y), [logits, target]) < TOLERANCE


@covers_04
def test_loss_gradients_match_their_formulas(rng):
    logits_data = rng.standard_normal((4, 3))
    labels = np.array([2, 0, 0, 1])
    n = len(labels)

    logits = Tensor(logits_data, dtype=np.float64, requires_grad=True)
    CrossEntropyLoss()(logits, labels).backward()
    softmax = np.exp(logits_data) / np.exp(logits_data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad.data, (softmax - np.eye(3)[labels]) / n, rtol=1e-10)

    y = (rng.random((4, 3)) > 0.5).astype(float)
    logits = Tensor(logits_data, dtype=np.float64, requires_grad=True)
    BinaryCrossEntropyLoss()(logits, Tensor(y, dtype=np.float64)).backward()
    sigmoid = 1 / (1 + np.exp(-logits_data))
    np.testing.assert_allclose(logits.grad.data, (sigmoid - y) / y.size, rtol=1e-10)

    pred = Tensor(logits_data, dtype=np.float64, requires_grad=True)
    MSELoss()(pred, Tensor(y, dtype=np.float64)).backward()
    np.testing.assert_allclose(pred.grad.data, 2 * (logits_data - y) / y.size, rtol=1e-12)


# ---- PyTorch as the oracle (float32) -----------------------------------------------------------

RTOL = ATOL = 1e-5


def torch_leaf(torch, array):
    return torch.tensor(np.asarray(array, dtype=np.float32), requires_grad=True)


@covers_03
@covers_04
def test_mlp_with_cross_entropy_matches_torch(torch, rng):
    model = Sequential(Linear(5, 16, seed=0), ReLU(), Linear(16, 3, seed=1))
    for layer in (model[0], model[2]):
        layer.bias.data = rng.standard_normal(layer.bias.shape).astype(np.float32) * 0.1
    x_data = rng.standard_normal((8, 5)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0, 2, 2, 0])

    x = Tensor(x_data, requires_grad=True)
    loss = CrossEntropyLoss()(model(x), labels)
    loss.backward()

    tx = torch_leaf(torch, x_data)
    tw1, tb1 = torch_leaf(torch, model[0].weight.data), torch_leaf(torch, model[0].bias.data)
    tw2, tb2 = torch_leaf(torch, model[2].weight.data), torch_leaf(torch, model[2].bias.data)
    logits = torch.relu(tx @ tw1 + tb1) @ tw2 + tb2
    tloss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    tloss.backward()

    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=RTOL)
    pairs = [(x, tx), (model[0].weight, tw1), (model[0].bias, tb1),
             (model[2].weight, tw2), (model[2].bias, tb2)]
    for ours, theirs in pairs:
        assert ours.grad.shape == tuple(theirs.grad.shape) and ours.grad.dtype == np.float32
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=RTOL, atol=ATOL)


@covers_02
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_chain_matches_torch(dim, torch, rng):
    x_data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    w_data = rng.standard_normal((2, 3, 4)).astype(np.float32)

    x = Tensor(x_data, requires_grad=True)
    w = Tensor(w_data)
    out = (Softmax(dim)(x) * w).sum() + (LogSoftmax(dim)(x * 2) * w).mean() \
        - LogSoftmax(dim)(Softmax(dim)(x)).sum()
    out.backward()

    tx = torch_leaf(torch, x_data)
    tw = torch.tensor(w_data)
    F = torch.nn.functional
    tout = (F.softmax(tx, dim) * tw).sum() + (F.log_softmax(tx * 2, dim) * tw).mean() \
        - F.log_softmax(F.softmax(tx, dim), dim).sum()
    tout.backward()
    np.testing.assert_allclose(out.item(), tout.item(), rtol=RTOL)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=RTOL, atol=ATOL)


@covers_02
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu"])
def test_elementwise_activation_gradients_match_torch(name, torch, rng):
    x_data = rng.uniform(-4, 4, (5, 6)).astype(np.float32)
    ours = {"relu": ReLU(), "sigmoid": Sigmoid(), "tanh": Tanh(), "gelu": GELU()}[name]
    F = torch.nn.functional
    theirs = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
              "gelu": lambda t: F.gelu(t, approximate="tanh")}[name]
    upstream = rng.standard_normal((5, 6)).astype(np.float32)

    x = Tensor(x_data, requires_grad=True)
    ours(x).backward(upstream)
    tx = torch_leaf(torch, x_data)
    theirs(tx).backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_broadcasting_chain_matches_torch(torch, rng):
    a_data = rng.standard_normal((3, 1)).astype(np.float32)
    b_data = rng.standard_normal((1, 4)).astype(np.float32)
    c_data = rng.standard_normal((4,)).astype(np.float32)
    s_data = np.float32(0.7)

    def graph(a, b, c, s, amax, exp, mean, column_sums):
        h = (a * b + c) / (exp(b) + 1) - s * a          # (3, 1) op (1, 4) op (4,) -> (3, 4)
        return amax(h).sum() + mean(h * h) + (column_sums(h) * c).sum()

    a, b, c, s = (Tensor(v, requires_grad=True) for v in (a_data, b_data, c_data, s_data))
    out = graph(a, b, c, s, lambda h: h.max(axis=0), lambda t: t.exp(), lambda t: t.mean(),
                lambda h: h.sum(axis=0, keepdims=True))
    out.backward()

    ta, tb, tc, ts = (torch_leaf(torch, v) for v in (a_data, b_data, c_data, s_data))
    tout = graph(ta, tb, tc, ts, lambda h: h.amax(dim=0), torch.exp, torch.mean,
                 lambda h: h.sum(dim=0, keepdim=True))
    tout.backward()
    np.testing.assert_allclose(out.item(), tout.item(), rtol=RTOL)
    for ours, theirs in ((a, ta), (b, tb), (c, tc), (s, ts)):
        assert ours.grad.shape == tuple(theirs.grad.shape)
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=RTOL, atol=ATOL)


@covers_04
def test_bce_and_mse_match_torch(torch, rng):
    logits_data = rng.standard_normal((6, 2)).astype(np.float32) * 3
    y_data = (rng.random((6, 2)) > 0.5).astype(np.float32)
    F = torch.nn.functional

    logits = Tensor(logits_data, requires_grad=True)
    loss = BinaryCrossEntropyLoss()(logits, Tensor(y_data)) + MSELoss()(logits, Tensor(y_data))
    loss.backward()
    tl = torch_leaf(torch, logits_data)
    ty = torch.tensor(y_data)
    (F.binary_cross_entropy_with_logits(tl, ty) + F.mse_loss(tl, ty)).backward()
    np.testing.assert_allclose(logits.grad.data, tl.grad.numpy(), rtol=RTOL, atol=ATOL)
