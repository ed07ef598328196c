"""What module 02 can check about gradients without module 05: every activation
records its operation in the graph (so module 05 can differentiate it), keeps
`requires_grad` on its output, records nothing when no input needs a gradient,
and `backward()` without the engine says which module to import. The gradient
values themselves are checked in module 05's suite (05 is the first module with
autograd)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.recorded_graph import graph_of
from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

ROOT = Path(__file__).resolve().parents[2]
ALL_ACTIVATIONS = [ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(), Softmax(dim=0), LogSoftmax(),
                   LogSoftmax(dim=0)]


def recorded_ops(output):
    return {node._op for node in graph_of(output) if node._op is not None}


def only_leaf_is(output, leaf):
    """True when `leaf` is the one tensor requiring grad that `output` was computed from."""
    leaves = [node for node in graph_of(output) if node.is_leaf and node.requires_grad]
    return len(leaves) == 1 and leaves[0] is leaf


@pytest.mark.parametrize("activation, op", [(ReLU(), "relu"), (Sigmoid(), "sigmoid"),
                                            (Tanh(), "tanh")])
def test_elementwise_activations_record_their_own_op(activation, op):
    x = Tensor([[-1.0, 0.5], [2.0, -3.0]], requires_grad=True)
    y = activation(x)
    assert y.requires_grad and not y.is_leaf
    assert y._op == op and len(y._parents) == 1 and y._parents[0] is x


def test_gelu_is_recorded_as_tensor_ops_through_tanh():
    x = Tensor([0.5, -1.0], requires_grad=True)
    y = GELU()(x)
    assert y.requires_grad and y._op == "mul"
    assert {"tanh", "clip", "mul", "add"} <= recorded_ops(y)
    assert only_leaf_is(y, x)


@pytest.mark.parametrize("make, last_op", [(Softmax, "div"), (LogSoftmax, "sub")])
def test_softmaxes_are_recorded_with_the_max_shift_detached(make, last_op):
    x = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = make()(x)
    ops = recorded_ops(y)
    assert y.requires_grad and y._op == last_op
    assert {"sub", "exp", "sum"} <= ops
    assert "max" not in ops        # the shift is detach()ed: no gradient flows through it
    assert only_leaf_is(y, x)


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_every_activation_keeps_requires_grad_and_reaches_its_input(activation):
    x = Tensor([[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]], requires_grad=True)
    y = activation(x)
    assert y.requires_grad and y.grad is None
    assert any(node is x for node in graph_of(y))


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_nothing_is_recorded_without_requires_grad(activation):
    y = activation(Tensor([[0.5, -1.0, 2.0]]))
    assert not y.requires_grad and y._op is None and y._parents == ()


def test_one_input_requiring_grad_is_enough():
    # a frozen input and a trainable weight: the activation of their product is recorded
    x, w = Tensor([[1.0, -2.0]]), Tensor([[0.5], [0.25]], requires_grad=True)
    y = Sigmoid()(x @ w)
    assert y.requires_grad and y._parents[0]._op == "matmul"
    assert only_leaf_is(y, w)


def test_recording_does_not_change_values(rng):
    data = rng.standard_normal((3, 4))
    for activation in ALL_ACTIVATIONS:
        tracked = activation(Tensor(data, requires_grad=True))
        plain = activation(Tensor(data))
        np.testing.assert_array_equal(tracked.data, plain.data)


def test_detached_output_is_a_leaf_again():
    y = ReLU()(Tensor([1.0, -1.0], requires_grad=True)).detach()
    assert not y.requires_grad and y.is_leaf
    np.testing.assert_array_equal(y.data, [1.0, 0.0])


def test_backward_without_autograd_names_the_module():
    # A fresh interpreter: in a full-suite run another test may have imported autograd.
    code = ("import sys\n"
            "from tinytorch.core.activations import ReLU, Softmax\n"
            "from tinytorch.core.tensor import Tensor\n"
            "x = Tensor([[1.0, -2.0]], requires_grad=True)\n"
            "loss = Softmax()(ReLU()(x)).sum()\n"
            "print('tinytorch.core.autograd' in sys.modules)\n"
            "try:\n"
            "    loss.backward()\n"
            "except RuntimeError as error:\n"
            "    print(error)\n"
            "print(x.grad)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[0] == "False"
    assert "import tinytorch.core.autograd" in out[1] and "Tensor.backward()" in out[1]
    assert out[2] == "None"             # no partial gradients were written
