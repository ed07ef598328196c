"""Progressive integration: importing the optimizers loads exactly what they build on, installs
the autograd engine, and modules 01-05 keep working together with them."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinytorch.core.activations import ReLU, Sigmoid
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor

ROOT = Path(__file__).resolve().parents[2]
CLOSURE = {"tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
           "tinytorch.core.losses", "tinytorch.core.autograd"}


def test_import_loads_only_the_autograd_chain(loaded_modules):
    loaded = loaded_modules("tinytorch.core.optimizers")
    # the optimizers need Tensor and no_grad; autograd brings activations (stable_sigmoid)
    assert loaded == {"tinytorch.core.optimizers", "tinytorch.core.tensor",
                      "tinytorch.core.autograd", "tinytorch.core.activations"}
    assert loaded - {"tinytorch.core.optimizers"} <= CLOSURE


def test_importing_the_optimizers_makes_backward_available():
    code = ("from tinytorch.core.tensor import Tensor\n"
            "import tinytorch.core.optimizers as optim\n"
            "p = Tensor([3.0], requires_grad=True)\n"
            "opt = optim.SGD([p], lr=0.5)\n"
            "(p * p).sum().backward()\n"
            "opt.step()\n"
            "print(p.data[0])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert float(out) == 0.0          # 3 - 0.5 * 2 * 3


def test_earlier_modules_still_behave_after_training():
    # a training run must not change how tensors, layers, activations or losses compute
    x = Tensor([[1.0, -1.0], [0.5, 2.0]])
    layer = Linear(2, 2, seed=0)
    before = layer(x).data.copy()
    model = Sequential(Linear(2, 4, seed=1), ReLU(), Linear(4, 1, seed=2))
    optimizer = Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        optimizer.zero_grad()
        BinaryCrossEntropyLoss()(model(x), Tensor([[1.0], [0.0]])).backward()
        optimizer.step()
    np.testing.assert_array_equal(layer(x).data, before)
    np.testing.assert_allclose(Sigmoid()(Tensor([0.0])).data, [0.5])
    with no_grad():
        assert not model(x).requires_grad


def test_full_stack_logistic_regression_with_every_earlier_module(rng):
    # 01 data, 03 Linear, 02 Sigmoid for probabilities, 04 loss, 05 backward, 06 update
    x = rng.standard_normal((40, 2)).astype(np.float32)
    labels = (x[:, 0] - x[:, 1] > 0).astype(np.float32)[:, None]
    model = Linear(2, 1, seed=0)
    optimizer = Adam(model.parameters(), lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        BinaryCrossEntropyLoss()(model(Tensor(x)), Tensor(labels)).backward()
        optimizer.step()
    with no_grad():
        probabilities = Sigmoid()(model(Tensor(x))).data
    assert np.mean((probabilities > 0.5) == (labels > 0.5)) == 1.0
    w = model.weight.data[:, 0]
    assert w[0] > 0 > w[1]                         # the boundary x0 = x1
