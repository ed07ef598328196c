"""Shared by the optimizer tests: the optimizer settings every comparison runs over, and a
small least-squares problem whose gradients are the same in tinytorch and in torch."""
import numpy as np
import pytest

import tinytorch.core.autograd  # noqa: F401  (installs backward())
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor

# name -> (optimizer class, keyword arguments). The keywords are spelled as in torch.optim,
# so the same dict builds the torch optimizer the results are compared with.
SETTINGS = {
    "sgd": (SGD, dict(lr=0.1)),
    "sgd_momentum": (SGD, dict(lr=0.05, momentum=0.9)),
    "sgd_dampening": (SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "sgd_nesterov": (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": (SGD, dict(lr=0.05, momentum=0.5, weight_decay=0.1)),
    "adam": (Adam, dict(lr=0.05)),
    "adam_betas_eps": (Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3)),
    "adam_weight_decay": (Adam, dict(lr=0.05, weight_decay=0.1)),
    "adamw": (AdamW, dict(lr=0.05, weight_decay=0.1)),
}


@pytest.fixture(params=sorted(SETTINGS), ids=str)
def setting(request):
    """(name, optimizer class, kwargs) for each entry of SETTINGS in turn."""
    optimizer_class, kwargs = SETTINGS[request.param]
    return request.param, optimizer_class, dict(kwargs)


@pytest.fixture
def least_squares(rng):
    """A fixed linear regression: X (16, 3), y (16,), and a starting point p0 (3,)."""
    X = rng.standard_normal((16, 3)).astype(np.float32)
    y = (X @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.standard_normal(16)).astype(np.float32)
    p0 = np.array([0.3, 0.2, -0.4], dtype=np.float32)
    return X, y, p0


@pytest.fixture
def ls_loss():
    """ls_loss(p, X, y) -> mean((X @ p - y)^2) as a tinytorch scalar Tensor."""
    def loss(p, X, y):
        return ((Tensor(X) @ p - Tensor(y)) ** 2).mean()
    return loss
