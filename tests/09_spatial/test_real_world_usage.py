"""Module 09 on real data: a small CNN learns the shipped UCI digits (8x8, 10 classes).

The digits are read with numpy (gzip + loadtxt) and the optimizer is written out by
hand (SGD with momentum), so this test needs only modules 01-05 and 09."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor

DIGITS = Path(__file__).resolve().parents[2] / "data" / "digits" / "digits.csv.gz"


@pytest.fixture(scope="module")
def digits():
    """(images float32 (1797, 1, 8, 8) in [0, 1], labels int64), split 80/20 with seed 0."""
    with gzip.open(DIGITS, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = (table[:, :64] / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    labels = table[:, 64]
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = len(labels) // 5                                   # 359 held out
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


def accuracy(model, images, labels):
    with no_grad():
        return float((model(Tensor(images)).data.argmax(axis=1) == labels).mean())


def test_small_cnn_learns_the_digits(digits):
    (train_x, train_y), (test_x, test_y) = digits
    assert train_x.shape == (1438, 1, 8, 8) and test_x.shape == (359, 1, 8, 8)
    model = Sequential(Conv2d(1, 8, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(8 * 4 * 4, 10, seed=1))
    loss_fn = CrossEntropyLoss()
    params = model.parameters()
    velocity = [np.zeros_like(p.data) for p in params]
    lr, momentum, batch = 0.05, 0.9, 32
    shuffle = np.random.default_rng(1)
    untrained = accuracy(model, test_x, test_y)

    epoch_losses = []
    for _ in range(10):
        order = shuffle.permutation(len(train_y))
        losses = []
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            loss = loss_fn(model(Tensor(train_x[idx])), train_y[idx])
            model.zero_grad()
            loss.backward()
            for p, v in zip(params, velocity):              # SGD with momentum, by hand
                v *= momentum
                v -= lr * p.grad.data
                p.data += v
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))

    test_accuracy = accuracy(model, test_x, test_y)
    print(f"digits CNN: untrained {untrained:.3f}, test accuracy {test_accuracy:.4f}, "
          f"epoch losses {epoch_losses[0]:.3f} -> {epoch_losses[-1]:.3f}")
    assert untrained < 0.3
    assert epoch_losses[-1] < 0.25 * epoch_losses[0]
    assert test_accuracy >= 0.95


def test_a_hand_set_edge_filter_on_real_digits(digits, reference):
    """A fixed vertical-edge (Sobel) filter on real images agrees with the loop version,
    and responds more to a '1' stroke's sides than a blank border does."""
    (images, labels), _ = digits
    conv = Conv2d(1, 1, 3, padding=1, bias=False)
    conv.weight.data[0, 0] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    batch = images[:64]
    edges = conv(Tensor(batch)).data
    assert np.allclose(edges, reference.conv2d(batch, conv.weight.data, None, (1, 1), (1, 1)),
                       atol=1e-5)
    ones = images[labels == 1][:20]
    response = np.abs(conv(Tensor(ones)).data)
    assert response[:, 0, :, 2:6].mean() > 2 * response[:, 0, :, [0, 7]].mean()
