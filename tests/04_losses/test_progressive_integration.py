"""Module 04 on top of 01 (Tensor) and 03 (layers): it loads exactly what it builds
on, exports its public API, and losses are ordinary Modules of module 03."""
import numpy as np
import pytest

from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

API = ["MSELoss", "CrossEntropyLoss", "BinaryCrossEntropyLoss"]


def test_importing_losses_loads_only_its_closure(loaded_modules):
    # Not the activations (the losses write their own log-sum-exp), and not autograd.
    assert loaded_modules("tinytorch.core.losses") == {"tinytorch.core.tensor",
                                                        "tinytorch.core.layers",
                                                        "tinytorch.core.losses"}


@pytest.mark.export_import
def test_public_api_is_exported(export_api):
    found = export_api("tinytorch.core.losses", API)
    assert all(isinstance(obj, type) and issubclass(obj, Module) for obj in found.values())


@pytest.mark.export_import
def test_notebook_demo_cells_are_not_exported():
    import tinytorch.core.losses as losses
    assert not any(hasattr(losses, name) for name in ("mse", "ce", "bce", "logits"))


def test_a_model_holding_its_loss_lists_only_model_parameters(rng):
    class Regressor(Module):
        def __init__(self):
            self.net = Sequential(Linear(2, 4, seed=0), Tanh(), Linear(4, 1, seed=1))
            self.criterion = MSELoss()

        def forward(self, x, y):
            return self.criterion(self.net(x), y)

    model = Regressor()
    assert len(model.parameters()) == 4
    assert model.eval() is model and not model.criterion.training
    loss = model(Tensor(rng.normal(size=(5, 2))), Tensor(np.zeros((5, 1))))
    assert loss.shape == () and loss.item() > 0


def test_tensor_and_layer_behaviour_is_unchanged_by_losses():
    layer = Linear(2, 2, bias=False, seed=0)
    layer.weight.data[...] = np.eye(2)
    x = Tensor([[1.0, -2.0]])
    np.testing.assert_array_equal(layer(x).data, x.data)
    assert CrossEntropyLoss()(layer(x), [0]).dtype == np.float32
    assert BinaryCrossEntropyLoss()(layer(x), [[1.0, 0.0]]).dtype == np.float32
