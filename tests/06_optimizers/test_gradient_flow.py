"""Gradient flow: the optimizer consumes exactly the gradients autograd produced, leaves them
untouched, and its updates are not recorded in the graph."""
import numpy as np

from tinytorch.core.activations import Tanh
from tinytorch.core.autograd import gradcheck, is_grad_enabled, no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor


def test_one_step_decreases_a_convex_loss(setting, least_squares, ls_loss):
    _, optimizer_class, kwargs = setting
    X, y, p0 = least_squares
    p = Tensor(p0, requires_grad=True)
    optimizer = optimizer_class([p], **kwargs)
    before = ls_loss(p, X, y)
    before.backward()
    optimizer.step()
    after = ls_loss(p, X, y)
    assert after.item() < before.item() - 1e-3


def test_step_does_not_modify_the_gradients(setting, least_squares, ls_loss):
    _, optimizer_class, kwargs = setting
    X, y, p0 = least_squares
    p = Tensor(p0, requires_grad=True)
    optimizer = optimizer_class([p], **kwargs)
    for _ in range(2):   # the second step also exercises the momentum / moment buffers
        optimizer.zero_grad()
        ls_loss(p, X, y).backward()
        grad, grad_data = p.grad, p.grad.data.copy()
        optimizer.step()
        assert p.grad is grad
        np.testing.assert_array_equal(p.grad.data, grad_data)


def test_sgd_moves_each_parameter_by_minus_lr_times_its_autograd_gradient(rng):
    model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
    x, y = Tensor(rng.standard_normal((5, 3))), Tensor(rng.standard_normal((5, 2)))
    MSELoss()(model(x), y).backward()
    before = [(p.data.copy(), p.grad.data.copy()) for p in model.parameters()]
    SGD(model.parameters(), lr=0.1).step()
    for p, (data, grad) in zip(model.parameters(), before):
        assert np.any(grad != 0)
        np.testing.assert_array_equal(p.data, data - np.float32(0.1) * grad)


def test_autograd_gradient_the_optimizer_uses_is_the_true_gradient(least_squares, ls_loss):
    # the gradient is checked against finite differences at the start and after a few steps
    X, y, p0 = least_squares
    p = Tensor(p0, requires_grad=True)
    optimizer = Adam([p], lr=0.1)
    for _ in range(3):
        assert gradcheck(lambda q: ls_loss(q, X, y), [p]) < 1e-5
        optimizer.zero_grad()
        ls_loss(p, X, y).backward()
        optimizer.step()


def test_updated_parameters_stay_leaves_and_the_next_backward_uses_the_new_values():
    p = Tensor([1.0, -2.0], requires_grad=True)
    optimizer = SGD([p], lr=0.25)
    (p * p).sum().backward()                       # grad 2p = [2, -4]
    optimizer.step()                               # p = [0.5, -1.0]
    assert p.is_leaf and p.requires_grad and p._op is None
    optimizer.zero_grad()
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.data, [1.0, -2.0])


def test_step_records_nothing_and_restores_grad_mode():
    p = Tensor([1.0], requires_grad=True)
    optimizer = Adam([p], lr=0.1)
    p.grad = Tensor([1.0])
    optimizer.step()
    assert is_grad_enabled()
    with no_grad():
        p.grad = Tensor([1.0])
        optimizer.step()
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert p.is_leaf and p.requires_grad


def test_parameters_without_a_gradient_are_left_alone():
    model = Sequential(Linear(2, 3, seed=0), Tanh(), Linear(3, 1, seed=1))
    frozen = model[0].parameters()
    x = Tensor([[0.5, -1.0], [1.0, 2.0]])
    MSELoss()(model(x), Tensor([[1.0], [0.0]])).backward()
    for p in frozen:
        p.grad = None                               # frozen: took no part in the update
    frozen_before = [p.data.copy() for p in frozen]
    trained_before = [p.data.copy() for p in model[2].parameters()]
    optimizer = Adam(model.parameters(), lr=0.1)
    optimizer.step()
    for p, data in zip(frozen, frozen_before):
        np.testing.assert_array_equal(p.data, data)
        assert p not in optimizer.state
    for p, data in zip(model[2].parameters(), trained_before):
        assert np.all(p.data != data)


def test_accumulated_gradients_are_used_as_they_are():
    # two backward passes without zero_grad add up; SGD then takes a double step
    p = Tensor([3.0], requires_grad=True)
    optimizer = SGD([p], lr=0.1)
    (p * 2).sum().backward()
    (p * 2).sum().backward()
    optimizer.step()
    np.testing.assert_allclose(p.data, [3.0 - 0.1 * 4.0], rtol=1e-6)
