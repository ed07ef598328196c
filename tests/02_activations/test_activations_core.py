"""Each activation's values: by hand, against the numpy formula, and against PyTorch."""
import inspect
import math

import numpy as np
import pytest

from tinytorch.core.activations import (
    GELU,
    Activation,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    stable_sigmoid,
)
from tinytorch.core.tensor import Tensor

LN2, LN3 = math.log(2), math.log(3)


def numpy_softmax(x, axis=-1):
    exps = np.exp(x - x.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def numpy_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


# Textbook formulas in float64, for moderate inputs where they are accurate.
NUMPY_FORMULAS = {
    "ReLU": (ReLU, lambda x: np.maximum(x, 0)),
    "Sigmoid": (Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "Tanh": (Tanh, np.tanh),
    "GELU": (GELU, numpy_gelu_tanh),
    "Softmax": (Softmax, numpy_softmax),
    "LogSoftmax": (LogSoftmax, lambda x: np.log(numpy_softmax(x))),
}

# The same activation in PyTorch (torch.nn.functional as F).
TORCH_EQUIVALENTS = {
    "ReLU": (ReLU(), lambda F, x: F.relu(x)),
    "Sigmoid": (Sigmoid(), lambda F, x: x.sigmoid()),
    "Tanh": (Tanh(), lambda F, x: x.tanh()),
    "GELU": (GELU(), lambda F, x: F.gelu(x, approximate="tanh")),
    "Softmax": (Softmax(), lambda F, x: F.softmax(x, dim=-1)),
    "Softmax(dim=0)": (Softmax(dim=0), lambda F, x: F.softmax(x, dim=0)),
    "LogSoftmax": (LogSoftmax(), lambda F, x: F.log_softmax(x, dim=-1)),
    "LogSoftmax(dim=1)": (LogSoftmax(dim=1), lambda F, x: F.log_softmax(x, dim=1)),
}


# ---- values by hand ----------------------------------------------------------------------

def test_relu_by_hand():
    result = ReLU()(Tensor([-2.0, -0.5, 0.0, 0.5, 3.0]))
    np.testing.assert_array_equal(result.data, [0.0, 0.0, 0.0, 0.5, 3.0])


def test_sigmoid_by_hand():
    # sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4
    result = Sigmoid()(Tensor([0.0, LN3, -LN3]))
    np.testing.assert_allclose(result.data, [0.5, 0.75, 0.25], rtol=1e-6)


def test_tanh_by_hand():
    # tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6
    result = Tanh()(Tensor([0.0, LN2, -LN2]))
    np.testing.assert_allclose(result.data, [0.0, 0.6, -0.6], rtol=1e-6, atol=1e-7)


def test_gelu_by_hand():
    # 0.5 * 1 * (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.841192; the exact erf form is 0.841345
    result = GELU()(Tensor([0.0, 1.0, -1.0]))
    np.testing.assert_allclose(result.data, [0.0, 0.841192, -0.158808], rtol=1e-5, atol=1e-7)


def test_softmax_by_hand():
    # exp(ln 3) = 3: [1, 3] / 4
    np.testing.assert_allclose(Softmax()(Tensor([0.0, LN3])).data, [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(Softmax()(Tensor([1.0, 2.0, 3.0])).data,
                               [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)


def test_log_softmax_by_hand():
    np.testing.assert_allclose(LogSoftmax()(Tensor([0.0, LN3])).data,
                               [math.log(0.25), math.log(0.75)], rtol=1e-6)


# ---- against formulas and PyTorch -----------------------------------------------------------

@pytest.mark.parametrize("name", NUMPY_FORMULAS)
def test_matches_numpy_formula_in_float64(rng, name):
    make, formula = NUMPY_FORMULAS[name]
    x = rng.uniform(-5.0, 5.0, (6, 7))
    result = make()(Tensor(x, dtype=np.float64))
    assert result.dtype == np.float64
    np.testing.assert_allclose(result.data, formula(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", TORCH_EQUIVALENTS)
def test_matches_pytorch(torch, rng, name):
    ours, theirs = TORCH_EQUIVALENTS[name]
    x = (3 * rng.standard_normal((4, 5, 6))).astype(np.float32)
    expected = theirs(torch.nn.functional, torch.from_numpy(x)).numpy()
    result = ours(Tensor(x))
    assert result.shape == expected.shape and result.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(result.data, expected, rtol=1e-5, atol=1e-6)


def test_gelu_tanh_form_is_within_5e4_of_exact_gelu():
    x = np.linspace(-8.0, 8.0, 1601)
    exact = x * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
    error = np.abs(GELU()(Tensor(x, dtype=np.float64)).data - exact)
    assert error.max() < 5e-4
    assert error.max() > 1e-4            # it is an approximation, not the erf form


# ---- Softmax and LogSoftmax over any axis ------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
def test_softmax_slices_are_distributions(rng, dim):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    probs = Softmax(dim=dim)(Tensor(x))
    assert (probs.data > 0).all()
    np.testing.assert_allclose(probs.sum(axis=dim).data, 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs.data, numpy_softmax(x.astype(np.float64), dim), rtol=1e-5)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_log_softmax_is_x_minus_logsumexp(rng, dim):
    x = rng.standard_normal((3, 4, 5))
    log_probs = LogSoftmax(dim=dim)(Tensor(x, dtype=np.float64)).data
    logsumexp = np.log(np.exp(x).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(log_probs, x - logsumexp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=dim), 1.0, rtol=1e-12)


def test_softmax_on_transposed_input_equals_other_axis(rng):
    x = Tensor(rng.standard_normal((3, 5)))
    np.testing.assert_allclose(Softmax(dim=0)(x.T).data, Softmax(dim=1)(x).T.data, rtol=1e-6)


# ---- identities ------------------------------------------------------------------------------

def test_identities_between_activations(rng):
    x = Tensor(rng.uniform(-4.0, 4.0, 50), dtype=np.float64)
    relu, sigmoid, tanh, gelu = ReLU(), Sigmoid(), Tanh(), GELU()
    np.testing.assert_allclose((relu(x) - relu(-x)).data, x.data, rtol=1e-15)
    np.testing.assert_allclose((sigmoid(x) + sigmoid(-x)).data, 1.0, rtol=1e-15)
    np.testing.assert_allclose(tanh(x).data, (2 * sigmoid(2 * x) - 1).data, atol=1e-15)
    np.testing.assert_allclose((gelu(x) - gelu(-x)).data, x.data, atol=1e-14)   # Phi(x)+Phi(-x)=1


def test_softmax_ignores_a_constant_shift(rng):
    x = Tensor(rng.standard_normal((4, 6)), dtype=np.float64)
    np.testing.assert_allclose(Softmax()(x + 100.0).data, Softmax()(x).data, rtol=1e-12)
    np.testing.assert_allclose(LogSoftmax()(x - 7.0).data, LogSoftmax()(x).data, rtol=1e-12)


def test_stable_sigmoid_on_arrays_matches_sigmoid(rng):
    z = rng.uniform(-30.0, 30.0, 100)
    np.testing.assert_array_equal(stable_sigmoid(z), Sigmoid()(Tensor(z, dtype=np.float64)).data)
    np.testing.assert_allclose(stable_sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-13)


# ---- dtypes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [ReLU, Sigmoid, Tanh, GELU, Softmax, LogSoftmax])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_preserved(make, dtype):
    assert make()(Tensor([[0.5, -1.5, 2.0]], dtype=dtype)).dtype == dtype


def test_relu_keeps_integer_tensors_integer():
    result = ReLU()(Tensor([-3, 0, 4]))
    assert result.dtype.kind == "i"
    np.testing.assert_array_equal(result.data, [0, 0, 4])


# ---- API consistency ---------------------------------------------------------------------------

ALL_ACTIVATIONS = [ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(), Softmax(dim=0), LogSoftmax(),
                   LogSoftmax(dim=0)]


@pytest.mark.api_consistency
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_same_interface_for_every_activation(activation):
    x = Tensor([[0.5, -1.0], [2.0, 0.0]])
    assert isinstance(activation, Activation) and callable(activation)
    called, forwarded = activation(x), activation.forward(x)
    assert type(called) is Tensor and called.shape == x.shape
    np.testing.assert_array_equal(called.data, forwarded.data)


@pytest.mark.api_consistency
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_every_activation_rejects_non_tensors(activation):
    for not_a_tensor in ([1.0, 2.0], np.array([1.0, 2.0]), 1.0, None):
        with pytest.raises(TypeError, match=f"{type(activation).__name__} expects a Tensor, "
                                            f"got {type(not_a_tensor).__name__}"):
            activation(not_a_tensor)


@pytest.mark.api_consistency
def test_constructors_and_reprs():
    assert [repr(make()) for make in (ReLU, Sigmoid, Tanh, GELU)] == \
        ["ReLU()", "Sigmoid()", "Tanh()", "GELU()"]
    for make in (Softmax, LogSoftmax):
        assert inspect.signature(make).parameters["dim"].default == -1
        assert repr(make(dim=1)) == f"{make.__name__}(dim=1)" and make(dim=1).dim == 1


@pytest.mark.api_consistency
def test_base_class_needs_a_forward():
    with pytest.raises(NotImplementedError, match="Activation must define forward"):
        Activation()(Tensor([1.0]))


# ---- shapes ------------------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_output_shape_equals_input_shape(rng, activation):
    for shape in [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 5), (1, 1)]:
        x = Tensor(rng.standard_normal(shape))
        assert activation(x).shape == shape, shape


@pytest.mark.shape
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_normalises_only_along_its_dim(rng, dim):
    x = Tensor(rng.standard_normal((2, 3, 4)))
    totals = Softmax(dim=dim)(x).sum(axis=dim)
    assert totals.shape == tuple(np.delete([2, 3, 4], dim))
    np.testing.assert_allclose(totals.data, 1.0, rtol=1e-6)
