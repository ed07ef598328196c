"""Module 03 on top of 01 (Tensor) and 02 (activations): it loads exactly what it
builds on, exports its public API, and the earlier modules still behave."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor

API = ["Module", "Linear", "Dropout", "Sequential"]


def test_importing_layers_loads_only_tensor_and_layers(loaded_modules):
    # 02 is a dependency of the tests and the notebook demo, not of the exported code;
    # autograd (05) must not be pulled in before its time.
    assert loaded_modules("tinytorch.core.layers") == {"tinytorch.core.tensor",
                                                        "tinytorch.core.layers"}


@pytest.mark.export_import
def test_public_api_is_exported(export_api):
    found = export_api("tinytorch.core.layers", API)
    assert all(isinstance(obj, type) for obj in found.values())
    assert all(issubclass(found[name], found["Module"]) for name in API)


@pytest.mark.export_import
def test_notebook_demo_cells_are_not_exported():
    import tinytorch.core.layers as layers
    assert not hasattr(layers, "model")              # the "Trying it out" cell's variable
    assert not hasattr(layers, "ReLU")               # imported only by that cell


def test_linear_takes_float_tensors_and_refuses_integers():
    layer = Linear(2, 3, seed=0)
    with pytest.raises(TypeError, match="Linear expects a floating-point input, got int64"):
        layer(Tensor([[1, 2]]))                     # integers stay integers: PyTorch refuses too
    from_floats = layer(Tensor([[1.0, 2.0]]))       # float data becomes float32
    assert from_floats.dtype == np.float32
    np.testing.assert_allclose(from_floats.data, [[1, 2]] @ layer.weight.data, rtol=1e-6)


def test_layers_and_activations_compose_in_both_directions(rng):
    layer = Linear(3, 3, seed=0)
    x = Tensor(rng.normal(size=(4, 3)))
    via_sequential = Sequential(Sigmoid(), layer, ReLU())(x).data
    by_hand = ReLU()(layer(Sigmoid()(x))).data
    np.testing.assert_array_equal(via_sequential, by_hand)
    assert (via_sequential >= 0).all()


def test_tensor_errors_surface_through_modules():
    class AddWrongBias(Module):
        def forward(self, x):
            return x + Tensor(np.ones(5))

    with pytest.raises(ValueError, match=r"\(2, 3\) and \(5,\)"):
        AddWrongBias()(Tensor(np.ones((2, 3))))


def test_dropout_works_on_activation_outputs():
    x = Sigmoid()(Tensor(np.zeros(10_000)))          # all 0.5
    out = Dropout(0.5, seed=0)(x).data
    assert set(np.unique(out)) == {0.0, 1.0}
