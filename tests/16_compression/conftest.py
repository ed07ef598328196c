"""Shared by module 16's tests: the shipped digits split 80/20, a hand-written SGD with
momentum that re-applies pruning masks after every step (module 06 is not in this
module's closure), and digits models trained once per session (seeded).

Pruning changes a model in place: tests work on `copy.deepcopy` of the session models."""
from types import SimpleNamespace

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import load_digits


def sgd_train(model, x, y, epochs, lr=0.05, momentum=0.9, batch=32, seed=1, masks=None,
              loss_fn=None):
    """Mini-batch SGD with momentum; returns the mean loss of each epoch.

    loss_fn(logits, batch_indices) defaults to cross-entropy with y; `masks` (from a
    pruning function) are re-applied after every update, so pruned weights stay 0."""
    if loss_fn is None:
        cross_entropy = CrossEntropyLoss()
        loss_fn = lambda logits, idx: cross_entropy(logits, y[idx])   # noqa: E731
    params = model.parameters()
    velocity = [np.zeros_like(p.data) for p in params]
    shuffle = np.random.default_rng(seed)
    epoch_losses = []
    for _ in range(epochs):
        order, losses = shuffle.permutation(len(y)), []
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            loss = loss_fn(model(Tensor(x[idx])), idx)
            model.zero_grad()
            loss.backward()
            for p, v in zip(params, velocity):
                v *= momentum
                v -= lr * p.grad.data
                p.data += v
            if masks is not None:
                masks.apply()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
    return epoch_losses


def accuracy(model, x, y):
    with no_grad():
        return float((model(Tensor(x)).data.argmax(axis=1) == y).mean())


@pytest.fixture(scope="session")
def digits():
    """The digits in [0, 1], split 80/20 with seed 0: 1,438 training and 359 held-out
    images, as images (N, 1, 8, 8) for the CNN and flat rows (N, 64) for the MLPs."""
    images, labels = load_digits()
    images = (images / 16).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:len(labels) // 5], order[len(labels) // 5:]
    return SimpleNamespace(train_images=images[train], test_images=images[test],
                           train_flat=images[train].reshape(-1, 64),
                           test_flat=images[test].reshape(-1, 64),
                           train_labels=labels[train], test_labels=labels[test])


@pytest.fixture(scope="session")
def train():
    return sgd_train


@pytest.fixture(scope="session", name="accuracy")
def accuracy_fixture():
    return accuracy


@pytest.fixture(scope="session")
def digits_mlp(digits):
    """MLP 64-32-10, 20 epochs of SGD (lr 0.1, momentum 0.9): about 98% held out."""
    model = Sequential(Linear(64, 32, seed=0), ReLU(), Linear(32, 10, seed=1))
    sgd_train(model, digits.train_flat, digits.train_labels, epochs=20, lr=0.1)
    return model


@pytest.fixture(scope="session")
def digits_cnn(digits):
    """Conv2d(1, 8, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(128, 10),
    10 epochs of SGD (lr 0.05, momentum 0.9): about 98% held out."""
    model = Sequential(Conv2d(1, 8, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(8 * 4 * 4, 10, seed=1))
    sgd_train(model, digits.train_images, digits.train_labels, epochs=10, lr=0.05)
    return model
