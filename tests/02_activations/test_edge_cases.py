"""Zeros, empty and 0-d tensors, single elements, NaN and infinities."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

ELEMENTWISE = [ReLU(), Sigmoid(), Tanh(), GELU()]
ALL_ACTIVATIONS = ELEMENTWISE + [Softmax(), LogSoftmax()]


@pytest.mark.parametrize("activation, expected", [
    (ReLU(), 0.0), (Sigmoid(), 0.5), (Tanh(), 0.0), (GELU(), 0.0),
    (Softmax(), 0.25), (LogSoftmax(), np.log(0.25)),
])
def test_values_at_zero(activation, expected):
    result = activation(Tensor(np.zeros((2, 4))))
    np.testing.assert_allclose(result.data, np.full((2, 4), expected), rtol=1e-6)


def test_relu_at_exactly_zero_and_tiny_values():
    tiny = float(np.finfo(np.float32).tiny)
    np.testing.assert_array_equal(ReLU()(Tensor([-tiny, 0.0, tiny])).data, [0.0, 0.0, tiny])


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_empty_batch(activation):
    result = activation(Tensor(np.zeros((0, 5))))
    assert result.shape == (0, 5) and result.dtype == np.float32


@pytest.mark.parametrize("activation, expected", [
    (ReLU(), 0.5), (Sigmoid(), 0.62245933), (Tanh(), 0.46211716), (GELU(), 0.34571401),
], ids=repr)
def test_zero_d_input(activation, expected):
    result = activation(Tensor(0.5))
    assert result.shape == () and result.item() == pytest.approx(expected, rel=1e-6)


def test_single_class_softmax_is_certain():
    np.testing.assert_array_equal(Softmax()(Tensor([[3.0], [-7.0]])).data, [[1.0], [1.0]])
    np.testing.assert_array_equal(LogSoftmax()(Tensor([[3.0], [-7.0]])).data, [[0.0], [0.0]])


def test_equal_scores_give_a_uniform_distribution():
    np.testing.assert_allclose(Softmax()(Tensor(np.full((3, 8), 4.2))).data, 1 / 8, rtol=1e-6)


@pytest.mark.parametrize("make", [Softmax, LogSoftmax])
def test_softmax_over_an_empty_axis_is_empty(make):
    assert make(dim=0)(Tensor(np.zeros((0, 3)))).shape == (0, 3)


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_nan_propagates(activation):
    result = activation(Tensor([[1.0, np.nan, -1.0]]))
    assert np.isnan(result.data[0, 1])


def test_nan_poisons_its_softmax_row_only():
    probs = Softmax()(Tensor([[1.0, np.nan], [1.0, 1.0]]))
    assert np.isnan(probs.data[0]).all()
    np.testing.assert_array_equal(probs.data[1], [0.5, 0.5])


def test_infinities_in_elementwise_activations():
    x = Tensor([-np.inf, np.inf])
    np.testing.assert_array_equal(ReLU()(x).data, [0.0, np.inf])
    np.testing.assert_array_equal(Sigmoid()(x).data, [0.0, 1.0])
    np.testing.assert_array_equal(Tanh()(x).data, [-1.0, 1.0])
    assert GELU()(Tensor([np.inf])).item() == np.inf


def test_minus_inf_scores_get_zero_probability():
    x = Tensor([[0.0, -np.inf, 1.0]])
    probs = Softmax()(x)
    np.testing.assert_allclose(probs.data, [[1 / (1 + np.e), 0.0, np.e / (1 + np.e)]], rtol=1e-6)
    log_probs = LogSoftmax()(x).data
    assert log_probs[0, 1] == -np.inf and np.isfinite(log_probs[0, [0, 2]]).all()


def test_fully_masked_row_is_nan_like_pytorch(torch):
    # every score -inf: 0/0, no distribution exists; PyTorch also answers NaN
    x = np.array([[-np.inf, -np.inf], [0.0, 0.0]], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        ours = Softmax()(Tensor(x)).data
    theirs = torch.nn.functional.softmax(torch.from_numpy(x), dim=-1).numpy()
    np.testing.assert_array_equal(ours, theirs)          # NaN positions compare equal
    assert np.isnan(ours[0]).all()


def test_softmax_dim_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="out of bounds"):       # numpy's AxisError
        Softmax(dim=2)(Tensor([[1.0, 2.0]]))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_activation_dtypes_follow_pytorch(torch, name, dtype):
    from tinytorch.core.activations import ReLU, Sigmoid, Tanh
    values = np.array([-2, 0, 3]).astype(dtype)
    ours = {"sigmoid": Sigmoid(), "tanh": Tanh(), "relu": ReLU()}[name](Tensor(values, dtype=dtype))
    theirs = getattr(torch, name)(torch.tensor(values))
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_gelu_and_softmax_of_integers_are_float32_a_documented_difference(dtype):
    from tinytorch.core.activations import GELU, Softmax
    x = Tensor(np.array([-2, 0, 3]), dtype=dtype)
    assert GELU()(x).dtype == np.float32 and Softmax()(x).dtype == np.float32
