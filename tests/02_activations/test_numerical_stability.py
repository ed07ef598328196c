"""No overflow, no NaN, no warning for huge inputs (pytest turns numpy's warnings
into errors), and values that agree with PyTorch and float64 references."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

TORCH_EQUIVALENTS = {
    "ReLU": (ReLU(), lambda torch, x: torch.relu(x)),
    "Sigmoid": (Sigmoid(), lambda torch, x: torch.sigmoid(x)),
    "Tanh": (Tanh(), lambda torch, x: torch.tanh(x)),
    "GELU": (GELU(), lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh")),
    "Softmax": (Softmax(), lambda torch, x: torch.softmax(x, dim=-1)),
    "LogSoftmax": (LogSoftmax(), lambda torch, x: torch.log_softmax(x, dim=-1)),
}
EXTREME_CASES = [(name, scale) for name in TORCH_EQUIVALENTS for scale in (1e4, 1e30)]


@pytest.mark.parametrize("name, scale", EXTREME_CASES)
def test_extreme_inputs_stay_finite_and_match_pytorch(torch, name, scale):
    ours, theirs = TORCH_EQUIVALENTS[name]
    x = np.array([[-scale, -1.0, 0.0, 1.0, scale]], dtype=np.float32)
    result = ours(Tensor(x))                 # any numpy warning fails the test here
    expected = theirs(torch, torch.from_numpy(x)).numpy()
    assert np.isfinite(result.data).all()
    np.testing.assert_allclose(result.data, expected, rtol=1e-6, atol=1e-7)


def test_textbook_sigmoid_overflows_but_sigmoid_does_not():
    x = np.array([-1000.0, 1000.0], dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="overflow"):
        1 / (1 + np.exp(-x))
    np.testing.assert_array_equal(Sigmoid()(Tensor(x)).data, [0.0, 1.0])


def test_sigmoid_keeps_tiny_probabilities():
    # exp(x) / (1 + exp(x)) for x < 0: no cancellation, relative accuracy down to 1e-35
    x = np.array([-80.0, -40.0, -20.0, -5.0])
    result = Sigmoid()(Tensor(x)).data
    np.testing.assert_allclose(result, np.exp(x) / (1 + np.exp(x)), rtol=1e-6)
    assert (result > 0).all()


def test_sigmoid_and_tanh_saturate_exactly_and_monotonically():
    x = Tensor(np.linspace(-50.0, 50.0, 1001))
    for activation, low in ((Sigmoid(), 0.0), (Tanh(), -1.0)):
        y = activation(x).data
        assert (np.diff(y) >= 0).all()
        assert y[0] == pytest.approx(low, abs=1e-20) and y[-1] == 1.0


def test_textbook_softmax_overflows_but_softmax_does_not():
    x = np.array([1000.0, 999.0, 0.0], dtype=np.float32)
    with pytest.warns(RuntimeWarning):
        np.exp(x) / np.exp(x).sum()
    e = np.exp([0.0, -1.0])
    np.testing.assert_allclose(Softmax()(Tensor(x)).data, [*(e / e.sum()), 0.0], rtol=1e-6)


def test_softmax_of_huge_equal_scores():
    np.testing.assert_array_equal(Softmax()(Tensor([1e30, 1e30])).data, [0.5, 0.5])
    np.testing.assert_allclose(LogSoftmax()(Tensor([1e30, 1e30])).data, np.log([0.5, 0.5]),
                               rtol=1e-6)


def test_log_softmax_is_finite_where_softmax_underflows():
    x = Tensor([0.0, -200.0])
    assert Softmax()(x).data[1] == 0.0                      # exp(-200) underflows float32
    np.testing.assert_array_equal(LogSoftmax()(x).data, [0.0, -200.0])


@pytest.mark.parametrize("make", [Softmax, LogSoftmax])
def test_float32_agrees_with_float64_for_large_logits(rng, make):
    x = 50 * rng.standard_normal((8, 10))
    single = make()(Tensor(x.astype(np.float32))).data
    double = make()(Tensor(x, dtype=np.float64)).data
    np.testing.assert_allclose(single, double, rtol=1e-5, atol=1e-6)


def test_scores_near_float32_max():
    x = Tensor([3e38, -3e38])
    np.testing.assert_array_equal(Softmax()(x).data, [1.0, 0.0])
    log_probs = LogSoftmax()(x).data
    assert log_probs[0] == 0.0 and log_probs[1] <= -3e38      # PyTorch: -inf


def test_gelu_large_inputs_pass_or_block_exactly():
    large = Tensor([1e4, 1e12])
    np.testing.assert_array_equal(GELU()(large).data, large.data)       # x * 1
    np.testing.assert_array_equal(GELU()(-large).data, [0.0, 0.0])      # x * 0
