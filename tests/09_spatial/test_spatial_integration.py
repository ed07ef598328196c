"""Module 09 with modules 01-05: Tensor ops, activations, Module/Sequential, losses, autograd."""
import numpy as np

from tinytorch.core.activations import ReLU, Softmax
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor


class TinyCNN(Module):
    """A custom Module holding spatial layers as attributes (03's parameter walk)."""

    def __init__(self):
        self.conv = Conv2d(1, 4, 3, padding=1, seed=0)
        self.pool = MaxPool2d(2)
        self.head = Sequential(Flatten(), Dropout(0.5, seed=0), Linear(4 * 4 * 4, 3, seed=1))

    def forward(self, x):
        return self.head(self.pool(ReLU()(self.conv(x))))


def test_module_finds_conv_parameters_and_sets_modes():
    model = TinyCNN()
    params = model.parameters()
    assert [p.shape for p in params] == [(4, 1, 3, 3), (4,), (64, 3), (3,)]
    model.eval()
    assert not model.conv.training and not model.head[1].training
    model.train()
    assert model.pool.training and model.head[1].training


def test_cross_entropy_backward_reaches_the_filters_and_zero_grad_clears_them(rng):
    model = TinyCNN()
    x = Tensor(rng.random((6, 1, 8, 8)))
    loss = CrossEntropyLoss()(model(x), np.array([0, 1, 2, 0, 1, 2]))
    assert loss.shape == () and np.isfinite(loss.item())
    loss.backward()
    assert model.conv.weight.grad.shape == (4, 1, 3, 3)
    assert np.abs(model.conv.weight.grad.data).sum() > 0
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_eval_under_no_grad_records_nothing_and_is_deterministic(rng):
    model = TinyCNN().eval()
    x = Tensor(rng.random((3, 1, 8, 8)))
    with no_grad():
        first, second = model(x), model(x)
    assert not first.requires_grad and first._parents == ()
    assert np.array_equal(first.data, second.data)            # Dropout is off in eval()
    probs = Softmax()(first)
    assert np.allclose(probs.data.sum(axis=1), 1.0, atol=1e-6)


def test_conv_output_feeds_tensor_ops_and_gradients_add_up(rng):
    conv = Conv2d(2, 2, 3, padding=1, seed=0)
    x = Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    y = conv(x)
    loss = (y * y).mean() + AvgPool2d(5)(y).sum()              # y used twice
    loss.backward()
    assert x.grad.shape == x.shape and conv.bias.grad.shape == (2,)
    # d/dbias_o = mean over (2*5*5) of 2 y + 1 for each of channel o's 25 positions
    expected = 2 * y.data.sum(axis=(0, 2, 3)) / y.size + 1.0
    assert np.allclose(conv.bias.grad.data, expected, rtol=1e-5)


def test_one_sgd_step_on_a_batch_lowers_the_loss(rng):
    model = Sequential(Conv2d(1, 3, 3, seed=0), ReLU(), Flatten(), Linear(3 * 4 * 4, 2, seed=1))
    x = Tensor(rng.standard_normal((8, 1, 6, 6)))
    y = np.array([0, 1] * 4)
    loss_fn = CrossEntropyLoss()
    before = loss_fn(model(x), y)
    before.backward()
    for p in model.parameters():
        p.data -= 0.1 * p.grad.data
    after = loss_fn(model(x), y)
    assert after.item() < before.item()
