"""Losses on the outputs of layers (03), and agreement with the activations (02)
they fold in: cross-entropy is LogSoftmax picked at the target, binary
cross-entropy is the log-likelihood of Sigmoid."""
import numpy as np
import pytest

from tinytorch.core.activations import LogSoftmax, ReLU, Sigmoid, Softmax
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def test_mse_of_a_linear_layer_matches_numpy(rng):
    layer = Linear(3, 2, seed=0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    expected = np.mean((x @ layer.weight.data + layer.bias.data - y) ** 2)
    assert MSELoss()(layer(Tensor(x)), Tensor(y)).item() == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_of_a_linear_layer_matches_torch(torch, rng):
    layer = Linear(4, 3, seed=1)
    layer.bias.data[...] = [0.5, -0.5, 0.0]
    x = rng.normal(size=(10, 4)).astype(np.float32)
    target = rng.integers(0, 3, size=10)
    F = torch.nn.functional
    logits = F.linear(torch.from_numpy(x), torch.from_numpy(layer.weight.data.T),
                      torch.from_numpy(layer.bias.data))
    expected = F.cross_entropy(logits, torch.from_numpy(target)).item()
    assert CrossEntropyLoss()(layer(Tensor(x)), target).item() == pytest.approx(expected, rel=1e-5)


def test_binary_cross_entropy_of_a_one_output_layer_matches_numpy(rng):
    layer = Linear(2, 1, seed=2)
    x = rng.normal(size=(6, 2)).astype(np.float32)
    labels = np.array([[1.0], [0.0], [0.0], [1.0], [1.0], [0.0]], dtype=np.float32)
    z = (x @ layer.weight.data + layer.bias.data).astype(np.float64)
    expected = np.mean(np.logaddexp(0, z) - z * labels)
    loss = BinaryCrossEntropyLoss()(layer(Tensor(x)), Tensor(labels))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_is_log_softmax_at_the_target(rng):
    logits = Tensor(rng.normal(size=(9, 4)) * 3)
    target = rng.integers(0, 4, size=9)
    log_probs = LogSoftmax()(logits).data
    probs = Softmax()(logits).data
    loss = CrossEntropyLoss()(logits, target).item()
    assert loss == pytest.approx(-log_probs[np.arange(9), target].mean(), rel=1e-6)
    assert loss == pytest.approx(-np.log(probs[np.arange(9), target]).mean(), rel=1e-5)


def test_binary_cross_entropy_is_the_log_likelihood_of_sigmoid(rng):
    logits = Tensor(rng.uniform(-5, 5, size=20))
    labels = rng.integers(0, 2, size=20).astype(np.float32)
    p = Sigmoid()(logits).data.astype(np.float64)
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    loss = BinaryCrossEntropyLoss()(logits, Tensor(labels))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_loss_of_an_eval_mode_network_is_deterministic(rng):
    model = Sequential(Linear(3, 16, seed=0), ReLU(), Dropout(0.5, seed=0), Linear(16, 3, seed=1))
    x, target = Tensor(rng.normal(size=(12, 3))), rng.integers(0, 3, size=12)
    loss_fn = CrossEntropyLoss()
    training = {loss_fn(model(x), target).item() for _ in range(3)}
    model.eval()
    evaluating = {loss_fn(model(x), target).item() for _ in range(3)}
    assert len(training) == 3 and len(evaluating) == 1
