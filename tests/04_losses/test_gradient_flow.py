"""Gradient flow within module 04's reach: a loss computed from a model's output
records a graph back to every parameter of the model and to nothing else that
could be trained, and records nothing when no input needs a gradient.

Module 05 (autograd) computes the gradients; numeric gradient checks of these
losses live in its suite. Here we read module 01's record: `_op` and `_parents`."""
import numpy as np
import pytest

from tests.support.recorded_graph import graph_of
from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def trainable_leaves(output):
    """The leaves of the recorded graph that a backward pass would give a gradient."""
    return {id(node) for node in graph_of(output) if node.is_leaf and node.requires_grad}


X = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [-1.0, 1.0, 1.0], [0.0, 2.0, 0.5]])
LOSSES = {   # loss, the model's output width, targets for the 4 rows of X
    "MSELoss": (MSELoss(), 2, np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [2.0, -1.0]])),
    "CrossEntropyLoss": (CrossEntropyLoss(), 3, np.array([0, 2, 1, 2])),
    "BinaryCrossEntropyLoss": (BinaryCrossEntropyLoss(), 1, np.array([[1.0], [0.0], [1.0], [0.0]])),
}


def model_with_outputs(width):
    return Sequential(Linear(3, 5, seed=0), Tanh(), Linear(5, width, seed=1))


@pytest.mark.parametrize("name", LOSSES)
def test_loss_graph_reaches_exactly_the_model_parameters(name):
    loss_fn, width, target = LOSSES[name]
    model = model_with_outputs(width)
    loss = loss_fn(model(Tensor(X)), target)
    assert loss.requires_grad and loss.shape == ()   # a scalar: backward() needs no seed
    assert len(model.parameters()) == 4
    assert trainable_leaves(loss) == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("name", LOSSES)
def test_no_graph_without_anything_to_train(name):
    loss_fn, width, target = LOSSES[name]
    model = model_with_outputs(width)
    for p in model.parameters():
        p.requires_grad = False
    loss = loss_fn(model(Tensor(X)), target)
    assert not loss.requires_grad
    assert loss._op is None and loss._parents == ()


def test_mse_is_the_mean_of_recorded_squares():
    pred = Tensor([1.0, 2.0], requires_grad=True)
    loss = MSELoss()(pred, Tensor([0.0, 0.0]))
    assert loss._op == "mean"
    square = loss._parents[0]
    assert square._op == "pow" and square._parents[0]._op == "sub"
    assert square._parents[0]._parents[0] is pred


def test_mse_reaches_a_target_that_requires_grad():
    """Regressing one network's output onto another's: both sides get gradients."""
    pred = Tensor([1.0, 2.0], requires_grad=True)
    target = Tensor([0.5, 0.5], requires_grad=True)
    assert trainable_leaves(MSELoss()(pred, target)) == {id(pred), id(target)}


def test_cross_entropy_detaches_its_max_shift():
    """The row max only keeps exp() finite; it must not be differentiated."""
    logits = Tensor([[2.0, 1.0, 0.0], [0.0, 5.0, 1.0]], requires_grad=True)
    ops = [node._op for node in graph_of(CrossEntropyLoss()(logits, [0, 1]))]
    assert "max" not in ops
    assert {"exp", "log", "getitem", "mean"} <= set(ops)


def test_binary_cross_entropy_records_its_own_operation():
    """One `bce_with_logits` node, whose gradient sigmoid(x) - y module 05 supplies."""
    logits = Tensor([0.5, -2.0], requires_grad=True)
    target = Tensor([1.0, 0.0])
    loss = BinaryCrossEntropyLoss()(logits, target)
    assert loss._op == "mean"
    elementwise = loss._parents[0]
    assert elementwise._op == "bce_with_logits"
    assert elementwise._parents[0] is logits
    np.testing.assert_array_equal(elementwise._parents[1].data, target.data)
    assert not elementwise._parents[1].requires_grad


def test_zero_grad_after_a_loss_clears_the_model():
    model = model_with_outputs(2)
    loss_fn, _, target = LOSSES["MSELoss"]
    loss_fn(model(Tensor(X)), target)
    for p in model.parameters():
        p.grad = Tensor(np.ones(p.shape))            # as a backward pass would leave them
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
