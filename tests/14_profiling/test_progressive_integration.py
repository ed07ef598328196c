"""Module 14 on top of 01-05 and 09: what importing it loads, and the earlier modules
still working with it in place."""

import numpy as np

from tinytorch.core import layers, spatial, tensor
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck, is_grad_enabled
from tinytorch.profiling import count_parameters, model_flops, profile_model


def test_importing_profiling_loads_exactly_its_closure(loaded_modules):
    # layers (03) and spatial (09), which bring tensor (01), activations (02) and
    # autograd (05); not losses, attention, data or anything after 14.
    assert loaded_modules("tinytorch.profiling") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.autograd", "tinytorch.core.spatial", "tinytorch.profiling"}


def test_profiling_leaves_autograd_working(rng):
    model = layers.Sequential(spatial.Conv2d(1, 2, 3, padding=1, seed=0), ReLU(),
                              spatial.Flatten(), layers.Linear(2 * 4 * 4, 1, seed=0))
    profile_model(model, (2, 1, 4, 4), repeats=2)
    assert is_grad_enabled()                          # no_grad() of the profiler has ended
    x = tensor.Tensor(rng.standard_normal((2, 1, 4, 4)))
    assert gradcheck(lambda *ps: model(x).sum(), model.parameters()) < 1e-5


def test_counts_follow_the_layers_of_modules_03_and_09():
    model = layers.Sequential(spatial.Conv2d(1, 4, 3, seed=0), ReLU(), spatial.MaxPool2d(2),
                              spatial.Flatten(), layers.Linear(4 * 3 * 3, 5, seed=0))
    assert count_parameters(model).total == (4 * 9 + 4) + (36 * 5 + 5)
    assert model_flops(model, (1, 1, 8, 8)) == (
        2 * 4 * 36 * 9 + 4 * 36 + 4 * 36 + 4 * 9 * 3 + 2 * 36 * 5 + 5)
    out = model(tensor.Tensor(np.zeros((1, 1, 8, 8))))
    assert out.shape == (1, 5)
