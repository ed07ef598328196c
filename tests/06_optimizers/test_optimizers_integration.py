"""Integration with layers (03), losses (04) and autograd (05): an MLP trained by each optimizer
follows torch's trajectory, and checkpoints through state_dict resume training exactly."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor


def mlp(seed):
    return Sequential(Linear(4, 8, seed=seed), Tanh(), Linear(8, 3, seed=seed + 1))


def torch_twin(torch, model):
    """Leaf torch tensors with the same values as the model's parameters (same layout)."""
    return [torch.tensor(p.data.copy(), requires_grad=True) for p in model.parameters()]


def test_mlp_trajectory_matches_torch_for_ten_steps(torch, setting, rng):
    name, optimizer_class, kwargs = setting
    x = rng.standard_normal((12, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=12)
    model = mlp(seed=3)
    optimizer = optimizer_class(model.parameters(), **kwargs)
    w1, b1, w2, b2 = twin = torch_twin(torch, model)
    torch_optimizer = getattr(torch.optim, optimizer_class.__name__)(twin, **kwargs)
    tx, tlabels = torch.from_numpy(x), torch.from_numpy(labels)
    for step in range(10):
        optimizer.zero_grad()
        CrossEntropyLoss()(model(Tensor(x)), labels).backward()
        optimizer.step()
        torch_optimizer.zero_grad()
        logits = torch.tanh(tx @ w1 + b1) @ w2 + b2
        torch.nn.functional.cross_entropy(logits, tlabels).backward()
        torch_optimizer.step()
        for i, (ours, theirs) in enumerate(zip(model.parameters(), twin)):
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), atol=1e-5, rtol=0,
                                       err_msg=f"{name}, parameter {i}, step {step + 1}")


def test_regression_with_every_optimizer_reduces_the_loss_tenfold(setting, rng):
    _, optimizer_class, kwargs = setting
    x = rng.uniform(-1, 1, size=(64, 1)).astype(np.float32)
    y = (np.sin(2 * x) + 0.5 * x).astype(np.float32)
    model = Sequential(Linear(1, 16, seed=0), Tanh(), Linear(16, 1, seed=1))
    optimizer = optimizer_class(model.parameters(), **kwargs)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = MSELoss()(model(Tensor(x)), Tensor(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_model_with_dropout_and_parameterless_layers_trains(rng):
    model = Sequential(Linear(4, 16, seed=0), ReLU(), Dropout(0.2, seed=0), Linear(16, 3, seed=1))
    assert len(model.parameters()) == 4
    optimizer = SGD(model.parameters(), lr=0.2, momentum=0.9)
    x = Tensor(rng.standard_normal((30, 4)))
    labels = (rng.standard_normal(30) > 0).astype(np.int64) + (rng.standard_normal(30) > 1)
    first = None
    for _ in range(60):
        optimizer.zero_grad()
        loss = CrossEntropyLoss()(model(x), labels)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    model.eval()
    assert CrossEntropyLoss()(model(x), labels).item() < first / 2


@pytest.mark.parametrize("split", [1, 4])
def test_state_dict_checkpoint_resumes_training_exactly(setting, rng, split):
    _, optimizer_class, kwargs = setting
    x = Tensor(rng.standard_normal((10, 4)))
    labels = rng.integers(0, 3, size=10)

    def train(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            CrossEntropyLoss()(model(x), labels).backward()
            optimizer.step()

    model = mlp(seed=0)
    optimizer = optimizer_class(model.parameters(), **kwargs)
    train(model, optimizer, split)
    saved_params = [p.data.copy() for p in model.parameters()]
    saved_state = optimizer.state_dict()
    train(model, optimizer, 6 - split)

    resumed = mlp(seed=10)                                 # different initial weights
    for p, data in zip(resumed.parameters(), saved_params):
        p.data[...] = data
    resumed_optimizer = optimizer_class(resumed.parameters(), lr=123.0)
    resumed_optimizer.load_state_dict(saved_state)
    train(resumed, resumed_optimizer, 6 - split)
    for ours, reference in zip(resumed.parameters(), model.parameters()):
        np.testing.assert_array_equal(ours.data, reference.data)
