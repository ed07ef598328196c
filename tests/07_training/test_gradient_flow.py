"""Gradient flow through the whole training stack: every parameter gets the true gradient,
clipping rescales it without turning it, the optimizer consumes it, evaluation builds no graph."""
import numpy as np

from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer


def mlp():
    return Sequential(Linear(3, 5, seed=0), Tanh(), Linear(5, 4, seed=1), Tanh(),
                      Linear(4, 2, seed=2))


def batch(rng):
    return Tensor(rng.standard_normal((6, 3))), Tensor(rng.integers(0, 2, size=6))


def test_a_train_step_gives_every_parameter_its_true_gradient(rng):
    model, (x, y) = mlp(), batch(rng)
    loss_fn = CrossEntropyLoss()
    # finite differences in float64 first (gradcheck restores the parameters afterwards)
    assert gradcheck(lambda *params: loss_fn(model(x), y), model.parameters()) < 1e-6
    trainer = Trainer(model, loss_fn, SGD(model.parameters(), lr=0.0))
    trainer.train_step(x, y)
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32
        assert np.any(p.grad.data != 0)


def test_the_optimizer_consumes_exactly_the_gradients_of_the_step(rng):
    model, (x, y) = mlp(), batch(rng)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.3))
    before = [p.data.copy() for p in model.parameters()]
    trainer.train_step(x, y)
    for p, data in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, data - np.float32(0.3) * p.grad.data)


def test_gradients_do_not_accumulate_across_steps(rng):
    model, (x, y) = mlp(), batch(rng)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.0))  # weights stay
    trainer.train_step(x, y)
    trainer.train_step(x, y)
    after_two = [p.grad.data.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    CrossEntropyLoss()(model(x), y).backward()                 # one backward, not two
    for p, grad in zip(model.parameters(), after_two):
        np.testing.assert_array_equal(p.grad.data, grad)


def test_clipping_in_the_trainer_rescales_the_gradient_without_turning_it(rng):
    x = Tensor(rng.standard_normal((8, 3)) * 10)
    y = Tensor(rng.standard_normal((8, 2)) * 10)
    reference = Sequential(Linear(3, 6, seed=0), ReLU(), Linear(6, 2, seed=1))
    MSELoss()(reference(x), y).backward()
    raw = [p.grad.data.astype(np.float64) for p in reference.parameters()]
    raw_norm = np.sqrt(sum(np.sum(g ** 2) for g in raw))
    assert raw_norm > 10

    model = Sequential(Linear(3, 6, seed=0), ReLU(), Linear(6, 2, seed=1))
    Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.0), max_grad_norm=1.0).train_step(x, y)
    clipped = [p.grad.data.astype(np.float64) for p in model.parameters()]
    np.testing.assert_allclose(np.sqrt(sum(np.sum(g ** 2) for g in clipped)), 1.0, rtol=1e-5)
    for g, r in zip(clipped, raw):
        np.testing.assert_allclose(g, r / raw_norm, rtol=1e-4, atol=1e-7)


def test_evaluate_builds_no_graph_and_leaves_gradients_alone(rng):
    model, (x, y) = mlp(), batch(rng)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    trainer.train_step(x, y)
    grads = [p.grad for p in model.parameters()]
    values = [p.grad.data.copy() for p in model.parameters()]
    trainer.evaluate([(x, y)])
    for p, grad, value in zip(model.parameters(), grads, values):
        assert p.grad is grad
        np.testing.assert_array_equal(p.grad.data, value)
    assert all(p.is_leaf for p in model.parameters())


def test_frozen_parameters_outside_the_optimizer_get_gradients_but_do_not_move(rng):
    model, (x, y) = mlp(), batch(rng)
    head = model[4].parameters()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(head, lr=0.5))
    frozen_before = [p.data.copy() for p in model[0].parameters()]
    trainer.train_step(x, y)
    for p, data in zip(model[0].parameters(), frozen_before):
        assert p.grad is not None                        # autograd still reaches it
        np.testing.assert_array_equal(p.data, data)       # but only the head is optimized
