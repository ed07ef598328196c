"""Progressive integration: importing training loads exactly modules 01-06, and everything
built before keeps working through a Trainer."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, Sigmoid
from tinytorch.core.autograd import is_grad_enabled
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import ArrayBatches, Trainer

CLOSURE = {"tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
           "tinytorch.core.losses", "tinytorch.core.autograd", "tinytorch.core.optimizers"}


def test_import_loads_exactly_the_dependency_closure(loaded_modules):
    assert loaded_modules("tinytorch.core.training") == CLOSURE | {"tinytorch.core.training"}


@pytest.mark.parametrize("optimizer_class, kwargs", [
    (SGD, dict(lr=0.05, momentum=0.9)), (Adam, dict(lr=0.05)), (AdamW, dict(lr=0.05)),
])
def test_every_optimizer_of_module_06_trains_through_the_trainer(rng, optimizer_class, kwargs):
    x = rng.uniform(-2, 2, size=(64, 1)).astype(np.float32)
    y = np.tanh(x).astype(np.float32)
    model = Sequential(Linear(1, 8, seed=0), GELU(), Linear(8, 1, seed=1))
    trainer = Trainer(model, MSELoss(), optimizer_class(model.parameters(), **kwargs))
    history = trainer.fit(ArrayBatches(x, y, batch_size=16), epochs=20)
    assert history["train_loss"][-1] < history["train_loss"][0] / 10


def test_earlier_modules_behave_the_same_after_training(rng):
    probe = Tensor([[0.5, -1.0]])
    layer = Linear(2, 2, seed=3)
    before = layer(probe).data.copy()
    model = Linear(2, 1, seed=0)
    Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1)).fit(
        [(rng.standard_normal((4, 2)), rng.standard_normal((4, 1)))], epochs=3, val_data=[
            (rng.standard_normal((4, 2)), rng.standard_normal((4, 1)))])
    assert is_grad_enabled()                                  # evaluate's no_grad was undone
    np.testing.assert_array_equal(layer(probe).data, before)
    assert layer(probe).requires_grad                         # graphs are recorded again
    np.testing.assert_allclose(Sigmoid()(Tensor([0.0])).data, [0.5])
