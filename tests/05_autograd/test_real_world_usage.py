"""Real-world usage: gradients from autograd train real models with a hand-written SGD loop
(module 06 brings optimizers; here the update is three lines)."""
import numpy as np

from tinytorch.core.activations import Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def sgd(parameters, lr):
    with no_grad():
        for p in parameters:
            p.data -= lr * p.grad.data


def train(model, loss_fn, x, y, lr, steps):
    for _ in range(steps):
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        sgd(model.parameters(), lr)
    return loss_fn(model(x), y).item()


def test_two_layer_mlp_learns_xor():
    # Measured: final loss 0.0178 after 300 full-batch steps (seeds 0 and 1).
    x = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = Tensor([[0], [1], [1], [0]], dtype=np.float32)
    model = Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 1, seed=1))
    initial = BinaryCrossEntropyLoss()(model(x), y).item()
    final = train(model, BinaryCrossEntropyLoss(), x, y, lr=0.5, steps=300)
    assert initial > 0.6 and final < 0.05
    predictions = (model(x).data > 0).astype(int).ravel()       # logit > 0 <=> p > 0.5
    assert predictions.tolist() == [0, 1, 1, 0]


def test_linear_regression_recovers_known_weights():
    # y = x @ [2, -3, 0.5] + 1.5 + noise(0.1): gradient descent reaches the least-squares
    # solution, which is within 0.02 of the true weights for 200 samples (seed 0).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    true_w, true_b = np.array([[2.0], [-3.0], [0.5]]), 1.5
    y = x @ true_w + true_b + 0.1 * rng.standard_normal((200, 1))
    model = Linear(3, 1, seed=0)
    final = train(model, MSELoss(), Tensor(x), Tensor(y), lr=0.1, steps=300)

    least_squares = np.linalg.lstsq(np.c_[x, np.ones(200)], y, rcond=None)[0].ravel()
    learned = np.r_[model.weight.data.ravel(), model.bias.data]
    np.testing.assert_allclose(learned, least_squares, atol=1e-4)
    np.testing.assert_allclose(learned, np.r_[true_w.ravel(), true_b], atol=0.02)
    assert abs(final - 0.01) < 0.002                           # the noise variance


def test_softmax_classifier_separates_three_gaussian_blobs():
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    labels = np.repeat(np.arange(3), 30)
    x = Tensor(centers[labels] + rng.standard_normal((90, 2)))
    model = Sequential(Linear(2, 16, seed=0), Tanh(), Linear(16, 3, seed=1))
    final = train(model, CrossEntropyLoss(), x, labels, lr=0.5, steps=100)
    accuracy = (model(x).data.argmax(axis=1) == labels).mean()
    assert final < 0.1 and accuracy >= 0.97


def test_gradient_descent_finds_the_minimum_of_a_function():
    # minimise (a - 3)^2 + 2 (b + 1)^2 + (a * b + 3)^2, whose minimum is at a = 3, b = -1
    p = Tensor([0.0, 0.0], dtype=np.float64, requires_grad=True)
    for _ in range(500):
        p.grad = None
        a, b = p[0], p[1]
        ((a - 3) ** 2 + 2 * (b + 1) ** 2 + (a * b + 3) ** 2).backward()
        sgd([p], lr=0.05)
    np.testing.assert_allclose(p.data, [3.0, -1.0], atol=1e-6)
