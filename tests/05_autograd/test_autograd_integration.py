"""Autograd with the layers and losses of modules 02-04: gradients reach every parameter,
accumulate and reset as training needs, and graphs are freed once a step is over."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def mlp():
    return Sequential(Linear(4, 8, seed=0), ReLU(), Linear(8, 3, seed=1))


def batch(rng, n=6):
    return Tensor(rng.standard_normal((n, 4))), rng.integers(0, 3, n)


def sgd_step(model, lr):
    with no_grad():
        for p in model.parameters():
            p.data -= lr * p.grad.data


@pytest.mark.shape
def test_every_parameter_gets_a_gradient_of_its_own_shape(rng):
    model = mlp()
    x, y = batch(rng)
    CrossEntropyLoss()(model(x), y).backward()
    shapes = [(p.shape, p.grad.shape, p.grad.dtype) for p in model.parameters()]
    assert shapes == [((4, 8), (4, 8), np.float32), ((8,), (8,), np.float32),
                      ((8, 3), (8, 3), np.float32), ((3,), (3,), np.float32)]


def test_output_bias_gradient_is_the_batch_sum_of_softmax_minus_onehot(rng):
    model = mlp()
    x, y = batch(rng)
    logits = model(x)
    CrossEntropyLoss()(logits, y).backward()
    z = logits.data.astype(np.float64)
    softmax = np.exp(z - z.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    dlogits = (softmax - np.eye(3)[y]) / len(y)
    np.testing.assert_allclose(model[2].bias.grad.data, dlogits.sum(axis=0), rtol=1e-5, atol=1e-7)


def test_two_batches_accumulate_to_the_gradient_of_the_summed_loss(rng):
    model = mlp()
    (x1, y1), (x2, y2) = batch(rng), batch(rng)
    loss = CrossEntropyLoss()
    loss(model(x1), y1).backward()
    loss(model(x2), y2).backward()
    accumulated = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    (loss(model(x1), y1) + loss(model(x2), y2)).backward()
    for acc, p in zip(accumulated, model.parameters()):
        np.testing.assert_allclose(acc, p.grad.data, rtol=1e-6, atol=1e-7)


def test_layer_shared_by_two_positions_gets_both_contributions(rng):
    shared = Linear(3, 3, seed=0)
    model = Sequential(shared, Tanh(), shared)
    assert len(model.parameters()) == 2                  # listed once
    x = Tensor(rng.standard_normal((4, 3)))
    assert gradcheck(lambda *_: model(x), model.parameters()) < 1e-6

    # the same as the sum of the gradients of two independent copies
    first, second = Linear(3, 3, seed=0), Linear(3, 3, seed=0)
    Sequential(first, Tanh(), second)(x).sum().backward()
    model(x).sum().backward()
    np.testing.assert_allclose(shared.weight.grad.data,
                               first.weight.grad.data + second.weight.grad.data, rtol=1e-6)


def test_custom_module_with_parameters_in_a_list(rng):
    class Ensemble(Module):
        def __init__(self):
            self.heads = [Linear(2, 1, seed=i) for i in range(3)]
            self.scale = Tensor([0.5], requires_grad=True)

        def forward(self, x):
            return sum(head(x) for head in self.heads) * self.scale

    model = Ensemble()
    assert len(model.parameters()) == 7
    x = Tensor(rng.standard_normal((5, 2)))
    assert gradcheck(lambda *_: model(x), model.parameters()) < 1e-6


def test_evaluation_under_no_grad_builds_no_graph_and_leaves_grads_alone(rng):
    model = mlp()
    x, y = batch(rng)
    CrossEntropyLoss()(model(x), y).backward()
    before = [p.grad.data.copy() for p in model.parameters()]
    with no_grad():
        loss = CrossEntropyLoss()(model(x), y)
    assert not loss.requires_grad and loss.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        loss.backward()
    for old, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(old, p.grad.data)


def test_sgd_step_keeps_parameters_as_leaves_and_lowers_the_loss(rng):
    model = mlp()
    x, y = batch(rng)
    loss = CrossEntropyLoss()
    before = loss(model(x), y)
    before.backward()
    sgd_step(model, lr=0.1)
    assert all(p.is_leaf and p.requires_grad and p.dtype == np.float32 for p in model.parameters())
    assert loss(model(x), y).item() < before.item()


def test_dropout_mask_gates_the_gradient_in_training_only(rng):
    model = Sequential(Linear(4, 6, seed=0), Dropout(0.5, seed=2), Linear(6, 1, seed=1))
    x = Tensor(rng.standard_normal((3, 4)))
    model(x).sum().backward()
    train_grad = model[0].weight.grad.data.copy()
    model.zero_grad()
    model.eval()(x).sum().backward()
    eval_grad = model[0].weight.grad.data
    # dL/dW1 = x^T (1 w2^T * mask / (1 - p)); evaluating uses mask = 1 and no scaling
    np.testing.assert_allclose(eval_grad, x.data.T @ np.ones((3, 1)) @ model[2].weight.data.T,
                               rtol=1e-6)
    assert not np.allclose(train_grad, eval_grad)


def test_binary_classifier_gradients_match_gradcheck(rng):
    model = Sequential(Linear(2, 4, seed=0), Sigmoid(), Linear(4, 1, seed=1))
    x = Tensor(rng.standard_normal((8, 2)))
    y = Tensor((rng.random((8, 1)) > 0.5).astype(float))
    assert gradcheck(lambda *_: BinaryCrossEntropyLoss()(model(x), y), model.parameters()) < 1e-6


# ---- memory: graphs are freed once a step is over ---------------------------------------------


def train_steps(model, x, y, steps):
    loss_fn = MSELoss()
    for _ in range(steps):
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        sgd_step(model, lr=0.01)


def live_tensors():
    gc.collect()
    return sum(type(o) is Tensor for o in gc.get_objects())   # type(): no __class__ lookups


@pytest.mark.memory_performance
def test_intermediate_tensors_are_freed_with_the_loss(rng):
    model = mlp()
    x, y = batch(rng)
    hidden = model[0](x)
    logits = model[2](ReLU()(hidden))
    loss = CrossEntropyLoss()(logits, y)
    intermediates = [weakref.ref(t) for t in (hidden, logits, loss)]
    loss.backward()
    del hidden, logits
    assert all(ref() is not None for ref in intermediates)      # the loss still holds its graph
    del loss
    gc.collect()
    assert [ref() for ref in intermediates] == [None, None, None]
    assert all(p.grad is not None for p in model.parameters())  # the gradients stay


@pytest.mark.memory_performance
def test_graphs_hold_no_reference_cycles(rng):
    # Freed by reference counting alone, the moment the loss goes: no cycle waits for gc.
    model = mlp()
    x, y = batch(rng)
    gc.collect()
    gc.disable()
    try:
        hidden = ReLU()(model[0](x))
        loss = CrossEntropyLoss()(model[2](hidden), y)
        loss.backward()
        refs = [weakref.ref(hidden), weakref.ref(loss)]
        del hidden, loss
        assert [ref() for ref in refs] == [None, None]
    finally:
        gc.enable()


@pytest.mark.memory_performance
def test_parameters_do_not_keep_graphs_alive(rng):
    model = mlp()
    x, y = batch(rng)
    CrossEntropyLoss()(model(x), y).backward()
    for p in model.parameters():
        assert p._parents == () and p._saved == {} and p.grad._parents == ()
        assert not p.grad.requires_grad


@pytest.mark.memory_performance
def test_live_tensor_count_is_stable_over_many_steps(rng):
    model = Sequential(Linear(4, 8, seed=0), Tanh(), Linear(8, 2, seed=1))
    x, y = Tensor(rng.standard_normal((16, 4))), Tensor(rng.standard_normal((16, 2)))
    train_steps(model, x, y, steps=5)
    after_warmup = live_tensors()
    train_steps(model, x, y, steps=200)
    assert live_tensors() == after_warmup


@pytest.mark.memory_performance
def test_traced_memory_does_not_grow_over_200_steps(rng):
    model = Sequential(Linear(4, 32, seed=0), ReLU(), Linear(32, 2, seed=1))
    x, y = Tensor(rng.standard_normal((64, 4))), Tensor(rng.standard_normal((64, 2)))
    tracemalloc.start()
    try:
        train_steps(model, x, y, steps=20)
        gc.collect()
        after_warmup = tracemalloc.get_traced_memory()[0]
        train_steps(model, x, y, steps=200)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - after_warmup
    finally:
        tracemalloc.stop()
    one_step_graph = 64 * 32 * 4 * 6          # a handful of (64, 32) float32 activations
    assert growth < one_step_graph            # 200 leaked graphs would be ~200x this


@pytest.mark.memory_performance
def test_no_grad_evaluation_keeps_nothing(rng):
    model = mlp()
    x, _ = batch(rng)
    with no_grad():
        hidden = model[0](x)
        out = model[2](ReLU()(hidden))
    assert out._parents == () and hidden._parents == ()
    ref = weakref.ref(hidden)
    del hidden
    assert ref() is None                      # out does not reference it
