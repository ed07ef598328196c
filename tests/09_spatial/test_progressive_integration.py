"""Module 09 on top of 01-05: what importing it loads, and the earlier modules still working."""
import numpy as np

from tinytorch.core import layers, tensor
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.losses import MSELoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d


def test_importing_spatial_loads_exactly_its_closure(loaded_modules):
    # layers (03) for Module, and autograd (05), which brings activations (02) and
    # installs the gradient rules, so a CNN can be trained right after this import.
    assert loaded_modules("tinytorch.core.spatial") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.autograd", "tinytorch.core.spatial"}


def test_spatial_layers_are_modules_of_module_03():
    assert issubclass(Conv2d, layers.Module) and issubclass(Flatten, layers.Module)
    out = Conv2d(1, 1, 1)(tensor.Tensor(np.ones((1, 1, 2, 2))))
    assert type(out) is tensor.Tensor


def test_earlier_modules_still_work_together(rng):
    # 01 -> 05 unchanged: a Linear + MSE gradient still matches finite differences.
    lin = layers.Linear(3, 2, seed=0)
    x = tensor.Tensor(rng.standard_normal((4, 3)))
    y = tensor.Tensor(rng.standard_normal((4, 2)))
    assert gradcheck(lambda *ps: MSELoss()(lin(x), y), lin.parameters()) < 1e-5


def test_cnn_stack_through_every_earlier_module(rng):
    model = layers.Sequential(Conv2d(1, 2, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                              Flatten(), layers.Linear(8, 1, seed=0))
    x = tensor.Tensor(rng.standard_normal((3, 1, 4, 4)))
    loss = MSELoss()(model(x), tensor.Tensor(np.zeros((3, 1))))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
