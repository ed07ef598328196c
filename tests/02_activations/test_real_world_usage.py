"""Activations doing their jobs in small networks with fixed weights: hidden
nonlinearities, class probabilities, log-probabilities for a loss."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax
from tinytorch.core.tensor import Tensor

# Three classes of 2-D points: right (0), up (1), bottom-left (2).
POINTS = np.array([[2.0, 0.5], [3.0, -0.5], [0.5, 2.0], [-0.5, 3.0], [-2.0, -2.0], [-1.0, -3.0]],
                  dtype=np.float32)
LABELS = np.array([0, 0, 1, 1, 2, 2])

# Hidden units: relu(x), relu(-x), relu(y), relu(-y).
W1 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]], dtype=np.float32)
# Scores: class 0 = 2 relu(x), class 1 = 2 relu(y), class 2 = relu(-x) + relu(-y).
W2 = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]],
              dtype=np.float32)
# The logits those weights give, worked out by hand from the comments above.
HAND_LOGITS = np.array([[4, 1, 0], [6, 0, 0.5], [1, 4, 0], [0, 6, 0.5], [0, 0, 4], [0, 0, 4]])


def classifier_logits(points):
    hidden = ReLU()(Tensor(points) @ Tensor(W1))
    return hidden @ Tensor(W2)


def test_two_layer_classifier_probabilities_and_predictions():
    probs = Softmax()(classifier_logits(POINTS))
    exps = np.exp(HAND_LOGITS)
    assert probs.shape == (6, 3)
    np.testing.assert_allclose(probs.data, exps / exps.sum(axis=1, keepdims=True), rtol=1e-6)
    # e^4, e^1, e^0 over their sum 58.316431
    np.testing.assert_allclose(probs.data[0], [0.93623955, 0.04661262, 0.01714783], rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(probs.data, axis=1), LABELS)


def test_negative_log_likelihood_from_log_softmax(torch):
    log_probs = LogSoftmax()(classifier_logits(POINTS))
    picked = log_probs[np.arange(6), LABELS]                     # log p(true class)
    loss = -picked.mean()
    shifted = HAND_LOGITS - HAND_LOGITS.max(axis=1, keepdims=True)
    expected = -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))[np.arange(6), LABELS]
    assert loss.item() == pytest.approx(expected.mean(), rel=1e-6)
    reference = torch.nn.functional.cross_entropy(torch.tensor(HAND_LOGITS), torch.tensor(LABELS))
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


def test_logistic_regression_with_sigmoid():
    # p(y=1) = sigmoid(3x - 3y): points below the diagonal are class 1
    x = Tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.9], [-1.0, 1.0], [0.5, -0.5]])
    probs = Sigmoid()(x @ Tensor([[3.0], [-3.0]]))
    logits = np.array([6.0, -6.0, 0.3, -6.0, 3.0])
    np.testing.assert_allclose(probs.data.ravel(), 1 / (1 + np.exp(-logits)), rtol=1e-6)
    np.testing.assert_array_equal((probs > 0.5).data.ravel(), [True, False, True, False, True])


def test_transformer_feed_forward_with_gelu_matches_pytorch(torch, rng):
    batch, seq, d_model, d_ff = 2, 5, 8, 32
    x = rng.standard_normal((batch, seq, d_model)).astype(np.float32)
    w1 = (rng.standard_normal((d_model, d_ff)) / np.sqrt(d_model)).astype(np.float32)
    w2 = (rng.standard_normal((d_ff, d_model)) / np.sqrt(d_ff)).astype(np.float32)

    out = GELU()(Tensor(x) @ Tensor(w1)) @ Tensor(w2)            # (B, T, C)

    F = torch.nn.functional
    expected = F.gelu(torch.from_numpy(x) @ torch.from_numpy(w1), approximate="tanh") \
        @ torch.from_numpy(w2)
    assert out.shape == (batch, seq, d_model)
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-5, atol=1e-5)
