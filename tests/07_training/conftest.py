"""Shared by the training tests: fixed data sets and a model that records the mode it ran in."""
import numpy as np
import pytest

from tinytorch.core.autograd import is_grad_enabled
from tinytorch.core.layers import Linear, Module


@pytest.fixture
def xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return x, np.array([0, 1, 1, 0])


@pytest.fixture
def linear_data():
    """y = X w + b + noise, noise ~ N(0, 0.1^2): (X, y, w, b, noise_std), 256 examples."""
    rng = np.random.default_rng(7)
    w, b, noise_std = np.array([2.0, -3.0, 0.5]), 1.5, 0.1
    X = rng.standard_normal((256, 3))
    y = X @ w + b + noise_std * rng.standard_normal(256)
    return X.astype(np.float32), y.astype(np.float32)[:, None], w, b, noise_std


class Recorder(Module):
    """A Linear layer that remembers, for each forward call, (training?, grad enabled?)."""

    def __init__(self, in_features, out_features, seed=0):
        self.linear = Linear(in_features, out_features, seed=seed)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, is_grad_enabled()))
        return self.linear(x)


@pytest.fixture
def recorder():
    return Recorder
