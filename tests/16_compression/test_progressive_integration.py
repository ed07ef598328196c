"""Module 16 on top of 01-05, 08, 09 and 14: what importing it loads, and the earlier
modules still working on compressed models."""
import importlib

import numpy as np

from tinytorch.compression import factorize_linear, prune_global, prune_structured
from tinytorch.core import layers, tensor
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.losses import MSELoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d


def test_importing_compression_loads_exactly_its_closure(loaded_modules):
    # losses (04) for distillation, autograd (05, with activations 02), layers (03), spatial
    # (09), and the profiler (14)
    assert loaded_modules("tinytorch.compression") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.losses", "tinytorch.core.autograd", "tinytorch.core.spatial",
        "tinytorch.profiling", "tinytorch.compression"}


def test_layers_are_found_by_module_14s_walk():
    compression = importlib.import_module("tinytorch.compression")
    profiling = importlib.import_module("tinytorch.profiling")
    assert compression.leaf_layers is profiling.leaf_layers
    assert compression.Linear is layers.Linear and compression.Tensor is tensor.Tensor


def test_compressed_models_are_made_of_module_03_and_09_layers(rng):
    model = layers.Sequential(Conv2d(1, 4, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                              Flatten(), layers.Linear(16, 2, seed=1))
    small = prune_structured(model, 0.5)
    assert type(small[0]) is Conv2d and type(small[4]) is layers.Linear
    factored = factorize_linear(layers.Linear(4, 4, seed=0), 2)
    assert all(type(layer) is layers.Linear for layer in factored)


def test_gradients_through_pruned_and_factorized_layers_match_finite_differences(rng):
    model = layers.Sequential(Conv2d(1, 2, 3, padding=1, seed=0), ReLU(), Flatten(),
                              factorize_linear(layers.Linear(32, 3, seed=1), 2))
    prune_global(model, 0.5)
    x = tensor.Tensor(rng.uniform(0.1, 1, (2, 1, 4, 4)))
    target = tensor.Tensor(np.zeros((2, 3)))
    error = gradcheck(lambda *ps: MSELoss()(model(x), target), model.parameters())
    assert error < 1e-5
