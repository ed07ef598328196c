"""The digits workflow of the tests of 15 (quantization) and 16 (compression), as
session fixtures: the shipped digits split 80/20, mini-batch SGD with momentum
(module 06 is in neither closure), held-out accuracy, and two seeded models trained
once per session, an MLP 64-32-10 and a small CNN.

Like every helper here it imports nothing from the package: a conftest that uses these
fixtures provides `digits_kit`, a namespace of its own Tensor, no_grad, layers, loss
and load_digits, so each module's tests stay inside their closure:

    from tests.support.digits import accuracy, digits, digits_cnn, digits_mlp, train
"""
import numpy as np
import pytest


def split(images, labels):
    """Digits in [0, 1], split 80/20 with seed 0 (1,438 training and 359 held-out images),
    as images (N, 1, 8, 8) for CNNs and flat rows (N, 64) for MLPs."""
    from types import SimpleNamespace
    images = (images / 16).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:len(labels) // 5], order[len(labels) // 5:]
    return SimpleNamespace(train_images=images[train], test_images=images[test],
                           train_flat=images[train].reshape(-1, 64),
                           test_flat=images[test].reshape(-1, 64),
                           train_labels=labels[train], test_labels=labels[test])


def sgd_train(kit, model, x, y, epochs, lr=0.05, momentum=0.9, batch=32, seed=1, masks=None,
              loss_fn=None):
    """Mini-batch SGD with momentum; returns the mean loss of each epoch.

    loss_fn(logits, batch_indices) defaults to cross-entropy with y; `masks` (from a
    pruning function) are re-applied after every update, so pruned weights stay 0."""
    if loss_fn is None:
        cross_entropy = kit.CrossEntropyLoss()
        loss_fn = lambda logits, idx: cross_entropy(logits, y[idx])   # noqa: E731
    params = model.parameters()
    velocity = [np.zeros_like(p.data) for p in params]
    shuffle = np.random.default_rng(seed)
    epoch_losses = []
    for _ in range(epochs):
        order, losses = shuffle.permutation(len(y)), []
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            loss = loss_fn(model(kit.Tensor(x[idx])), idx)
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


@pytest.fixture(scope="session")
def digits(digits_kit):
    return split(*digits_kit.load_digits())


@pytest.fixture(scope="session")
def train(digits_kit):
    """train(model, x, y, epochs, lr=0.05, momentum=0.9, batch=32, seed=1, masks=None,
    loss_fn=None) -> the mean loss of each epoch (see sgd_train)."""
    return lambda *args, **options: sgd_train(digits_kit, *args, **options)


@pytest.fixture(scope="session")
def accuracy(digits_kit):
    def accuracy(model, x, y):
        with digits_kit.no_grad():
            return float((model(digits_kit.Tensor(x)).data.argmax(axis=1) == y).mean())
    return accuracy


@pytest.fixture(scope="session")
def digits_mlp(digits_kit, digits, train):
    """MLP 64-32-10, 20 epochs of SGD (lr 0.1, momentum 0.9): about 98% held out."""
    k = digits_kit
    model = k.Sequential(k.Linear(64, 32, seed=0), k.ReLU(), k.Linear(32, 10, seed=1))
    train(model, digits.train_flat, digits.train_labels, epochs=20, lr=0.1)
    return model


@pytest.fixture(scope="session")
def digits_cnn(digits_kit, digits, train):
    """Conv2d(1, 8, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(128, 10),
    10 epochs of SGD (lr 0.05, momentum 0.9): about 98% held out."""
    k = digits_kit
    model = k.Sequential(k.Conv2d(1, 8, 3, padding=1, seed=0), k.ReLU(), k.MaxPool2d(2),
                         k.Flatten(), k.Linear(8 * 4 * 4, 10, seed=1))
    train(model, digits.train_images, digits.train_labels, epochs=10, lr=0.05)
    return model
