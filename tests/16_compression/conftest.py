"""Module 16's tests use the digits fixtures of tests/support/digits.py (the shipped
digits split 80/20, SGD with momentum, accuracy, an MLP and a CNN trained once per
session, seeded), given this module's own classes through `digits_kit`.
Pruning changes a model in place: tests work on `copy.deepcopy` of the session models."""
from types import SimpleNamespace

import pytest

from tests.support.digits import accuracy, digits, digits_cnn, digits_mlp, train  # noqa: F401
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import load_digits


@pytest.fixture(scope="session")
def digits_kit():
    return SimpleNamespace(Tensor=Tensor, no_grad=no_grad, CrossEntropyLoss=CrossEntropyLoss,
                           Linear=Linear, ReLU=ReLU, Sequential=Sequential, Conv2d=Conv2d,
                           MaxPool2d=MaxPool2d, Flatten=Flatten, load_digits=load_digits)
