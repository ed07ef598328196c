"""Gradient flow within module 03's reach: every parameter is trainable and listed, a
forward pass records a graph that leads back to every parameter, and Dropout's mask
is what a backward pass will multiply by.

Module 05 (autograd) computes the gradients themselves; numeric gradient checks of
these layers live in its suite. Here we only read the graph that module 01 records:
`_op` (the operation's name) and `_parents` (its inputs)."""
import numpy as np
import pytest

from tests.support.recorded_graph import graph_of
from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


def reaches(output, tensor):
    return any(node is tensor for node in graph_of(output))


def test_linear_parameters_require_grad_and_are_listed():
    layer = Linear(3, 2, seed=0)
    assert layer.weight.requires_grad and layer.bias.requires_grad
    params = layer.parameters()
    assert len(params) == 2 and params[0] is layer.weight and params[1] is layer.bias


def test_linear_without_bias_has_only_the_weight():
    layer = Linear(3, 2, bias=False, seed=0)
    assert len(layer.parameters()) == 1 and layer.parameters()[0] is layer.weight


def test_linear_forward_records_matmul_then_add():
    layer = Linear(3, 2, seed=0)
    x = Tensor(np.ones((4, 3)))
    y = layer(x)
    assert y.requires_grad and y._op == "add"
    product, bias = y._parents
    assert bias is layer.bias
    assert product._op == "matmul"
    assert product._parents[0] is x and product._parents[1] is layer.weight


def test_linear_without_bias_records_only_the_matmul():
    layer = Linear(3, 2, bias=False, seed=0)
    y = layer(Tensor(np.ones((4, 3))))
    assert y._op == "matmul" and y._parents[1] is layer.weight


def test_input_that_requires_grad_is_in_the_graph():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    assert reaches(Linear(3, 2, seed=0)(x), x)


def test_sequential_forward_reaches_every_parameter():
    model = Sequential(Linear(4, 8, seed=0), ReLU(), Dropout(0.5, seed=0),
                       Linear(8, 8, seed=1), Tanh(), Linear(8, 2, seed=2))
    out = model(Tensor(np.ones((5, 4)))).sum()
    params = model.parameters()
    assert len(params) == 6
    assert all(reaches(out, p) for p in params)


def test_custom_module_with_shared_layer_reaches_its_parameters():
    class Tied(Module):
        def __init__(self):
            self.shared = Linear(3, 3, seed=0)
            self.head = Linear(3, 1, seed=1)

        def forward(self, x):
            return self.head(self.shared(self.shared(x)))   # the shared layer used twice

    model = Tied()
    out = model(Tensor(np.ones((2, 3))))
    weight_uses = sum(1 for node in graph_of(out)
                      if node._op == "matmul" and node._parents[1] is model.shared.weight)
    assert weight_uses == 2                          # both uses will contribute a gradient
    assert all(reaches(out, p) for p in model.parameters())


def test_frozen_parameters_are_not_listed_and_not_recorded():
    layer = Linear(3, 2, seed=0)
    layer.weight.requires_grad = False
    layer.bias.requires_grad = False
    assert layer.parameters() == []
    y = layer(Tensor(np.ones((2, 3))))
    assert not y.requires_grad and y._parents == ()


def test_zero_grad_clears_every_gradient():
    model = Sequential(Linear(2, 3, seed=0), ReLU(), Sequential(Linear(3, 1, seed=1)))
    for p in model.parameters():
        p.grad = Tensor(np.ones(p.shape))            # as a backward pass would leave them
    model.zero_grad()
    assert len(model.parameters()) == 4
    assert all(p.grad is None for p in model.parameters())


def test_dropout_in_eval_mode_adds_nothing_to_the_graph():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    assert Dropout(0.5, seed=0).eval()(x) is x


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout_in_train_mode_multiplies_by_a_constant_mask(p):
    x = Tensor(np.ones((50, 40)), requires_grad=True)
    out = Dropout(p, seed=0)(x)
    assert out._op == "mul" and out._parents[0] is x
    mask = out._parents[1]
    assert not mask.requires_grad                    # the mask itself is not trained
    values = np.unique(mask.data)
    np.testing.assert_allclose(values, [0.0, 1 / (1 - p)], rtol=1e-6)
    # The gradient of x * mask with respect to x is the mask: zero where dropped.
    np.testing.assert_array_equal(mask.data == 0, out.data == 0)


def test_nothing_is_recorded_without_gradients_or_parameters():
    x = Tensor(np.ones((4, 3)))
    out = Sequential(ReLU(), Dropout(0.5, seed=0), Tanh())(x)
    assert not out.requires_grad
    assert out._op is None and out._parents == ()
