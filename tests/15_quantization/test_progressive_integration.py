"""Module 15 on top of 01-05, 08, 09 and 14: what importing it loads, and the earlier
modules still working beside it."""
import importlib

import numpy as np

from tinytorch.core import layers, tensor
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.quantization import QuantizedLinear, quantize_model


def test_importing_quantization_loads_exactly_its_closure(loaded_modules):
    # autograd (05, with activations 02), layers (03), spatial (09) and the profiler (14)
    assert loaded_modules("tinytorch.quantization") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.autograd", "tinytorch.core.spatial", "tinytorch.profiling",
        "tinytorch.quantization"}


def test_the_byte_count_is_module_14s():
    quantization = importlib.import_module("tinytorch.quantization")
    profiling = importlib.import_module("tinytorch.profiling")
    assert quantization.parameter_bytes is profiling.parameter_bytes
    assert quantization.Tensor is tensor.Tensor and quantization.Linear is layers.Linear


def test_quantized_layers_are_modules_that_return_module_01_tensors():
    q = QuantizedLinear.from_float(layers.Linear(3, 2, seed=0), (0.1, 0))
    assert isinstance(q, layers.Module)
    assert type(q(tensor.Tensor(np.ones((1, 3))))) is tensor.Tensor


def test_the_float_model_still_trains_after_being_quantized(rng):
    # quantize_model leaves the float model as it was: gradients still match finite
    # differences afterwards (05), through the CNN layers (09)
    model = layers.Sequential(Conv2d(1, 2, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                              Flatten(), layers.Linear(8, 3, seed=1))
    x = tensor.Tensor(rng.uniform(0, 1, (4, 1, 4, 4)))
    before = [p.data.copy() for p in model.parameters()]
    quantize_model(model, x)
    assert all(np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    assert all(p.requires_grad for p in model.parameters())
    error = gradcheck(lambda *ps: CrossEntropyLoss()(model(x), [0, 1, 2, 1]), model.parameters())
    assert error < 1e-5
