"""Module 08 builds only on module 01: it loads nothing else and leaves Tensor as it was."""
import numpy as np

from tinytorch.core import tensor as tensor_module
from tinytorch.data import dataloader


def test_importing_the_loader_loads_exactly_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.data.dataloader") == {"tinytorch.core.tensor",
                                                           "tinytorch.data.dataloader"}


def test_loader_builds_the_same_tensor_class_as_module_01():
    (x,) = next(iter(dataloader.DataLoader(dataloader.TensorDataset(np.ones((2, 3))))))
    assert type(x) is tensor_module.Tensor
    assert dataloader.Tensor is tensor_module.Tensor


def test_module_01_behaviour_is_unchanged_by_importing_08():
    t = tensor_module.Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == np.float32 and (t @ t).data.tolist() == [[7.0, 10.0], [15.0, 22.0]]
    assert tensor_module.Tensor([1, 2]).dtype == np.int64
