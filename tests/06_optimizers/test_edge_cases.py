"""Edge cases: zero gradients, lr = 0, huge and tiny learning rates, parameters without
gradients, NaN gradients, invalid hyper-parameters and parameters, bad state dicts."""
import math

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor


def step_once(optimizer_class, grad, start=(1.0, -2.0), **kwargs):
    p = Tensor(list(start), requires_grad=True)
    optimizer = optimizer_class([p], **kwargs)
    p.grad = Tensor(list(grad))
    optimizer.step()
    return p, optimizer


def test_zero_gradient_leaves_parameters_unchanged(setting):
    name, optimizer_class, kwargs = setting
    kwargs["weight_decay"] = 0.0
    p, _ = step_once(optimizer_class, [0.0, 0.0], **kwargs)
    np.testing.assert_array_equal(p.data, [1.0, -2.0])


def test_zero_gradient_with_adamw_only_decays():
    p, _ = step_once(AdamW, [0.0, 0.0], lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(p.data, [0.95, -1.9], rtol=1e-6)


def test_lr_zero_changes_nothing_but_still_counts_the_step(setting):
    _, optimizer_class, kwargs = setting
    kwargs["lr"] = 0.0
    p, optimizer = step_once(optimizer_class, [0.5, -1.0], **kwargs)
    np.testing.assert_array_equal(p.data, [1.0, -2.0])
    if optimizer_class is not SGD:
        assert optimizer.state[p]["step"] == 1


def test_huge_lr_sgd_takes_the_full_step():
    p, _ = step_once(SGD, [0.5, -1.0], lr=1e6)
    np.testing.assert_allclose(p.data, [1 - 5e5, -2 + 1e6], rtol=1e-6)


def test_huge_lr_adam_step_is_bounded_by_lr_whatever_the_gradient_scale():
    p, _ = step_once(Adam, [1e-3, -1e3], start=(0.0, 0.0), lr=1e3)
    np.testing.assert_allclose(p.data, [-1e3, 1e3], rtol=1e-4)


def test_tiny_lr_moves_a_float64_parameter_by_exactly_lr_times_grad():
    p = Tensor([1.0], dtype=np.float64, requires_grad=True)
    p.grad = Tensor([0.5], dtype=np.float64)
    SGD([p], lr=1e-12).step()
    assert p.dtype == np.float64
    assert p.data[0] == 1.0 - 1e-12 * 0.5


def test_tiny_lr_on_float32_stays_finite_and_below_float32_resolution():
    p, _ = step_once(Adam, [0.5, -1.0], lr=1e-12)
    np.testing.assert_array_equal(p.data, [1.0, -2.0])   # a 1e-12 step is below float32's ulp


def test_parameters_whose_grad_is_none_are_skipped(setting):
    _, optimizer_class, kwargs = setting
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    optimizer = optimizer_class([a, b], **kwargs)
    a.grad = Tensor([1.0])
    optimizer.step()
    assert b.data[0] == 2.0 and b not in optimizer.state and a.data[0] != 1.0


def test_a_nan_gradient_propagates_only_to_its_own_entry():
    p, _ = step_once(SGD, [math.nan, 1.0], lr=0.1)
    assert math.isnan(p.data[0]) and p.data[1] == np.float32(-2.1)


def test_params_may_be_any_iterable_of_tensors():
    tensors = [Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)]
    optimizer = SGD((t for t in tensors), lr=0.1)
    assert optimizer.params == tensors


@pytest.mark.parametrize("make, error, message", [
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=-0.1), ValueError, "lr"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=math.nan), ValueError, "lr"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=math.inf), ValueError, "lr"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr="0.1"), ValueError, "lr must be a number"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=True), ValueError, "lr must be a number"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=-0.9), ValueError,
     "momentum"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=0.1, weight_decay=-1), ValueError,
     "weight_decay"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9, dampening=1.5),
     ValueError, "dampening"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=0.1, nesterov=True), ValueError,
     "nesterov=True requires momentum > 0"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9, nesterov=True,
                 dampening=0.1), ValueError, "dampening = 0"),
    (lambda: SGD([Tensor([1.0], requires_grad=True)], lr=0.1, nesterov="yes"), ValueError,
     "nesterov must be True or False"),
    (lambda: Adam([Tensor([1.0], requires_grad=True)], betas=(1.0, 0.999)), ValueError, "beta1"),
    (lambda: Adam([Tensor([1.0], requires_grad=True)], betas=(0.9, -0.1)), ValueError, "beta2"),
    (lambda: Adam([Tensor([1.0], requires_grad=True)], betas=(0.9,)), ValueError, "pair"),
    (lambda: Adam([Tensor([1.0], requires_grad=True)], eps=-1e-8), ValueError, "eps"),
    (lambda: AdamW([Tensor([1.0], requires_grad=True)], weight_decay=-0.01), ValueError,
     "AdamW: weight_decay"),
])
def test_invalid_hyperparameters_raise_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("params, error, message", [
    ([], ValueError, "empty parameter list"),
    (Tensor([1.0], requires_grad=True), TypeError, "single Tensor"),
    (5, TypeError, "iterable of Tensors, got int"),
    ([np.ones(3)], TypeError, "parameter 0 is a ndarray"),
    ([Tensor([1, 2])], TypeError, "dtype int"),
    ([Tensor([1.0], requires_grad=True) * 2], ValueError, "not a leaf"),
])
def test_invalid_parameters_raise_a_clear_error(params, error, message):
    with pytest.raises(error, match=message):
        Adam(params)


def test_a_parameter_listed_twice_is_rejected():
    p = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="parameter 1 appears more than once"):
        SGD([p, p], lr=0.1)


def trained_adam():
    p = Tensor([1.0, 2.0], requires_grad=True)
    optimizer = Adam([p], lr=0.1)
    p.grad = Tensor([1.0, -1.0])
    optimizer.step()
    return p, optimizer


@pytest.mark.parametrize("corrupt, message", [
    (lambda s: s["state"][0].update(exp_avg=np.zeros(3)), r"has shape \(3,\).*shape \(2,\)"),
    (lambda s: s["state"][0].pop("exp_avg_sq"), "has entries"),
    (lambda s: s["state"].update({1: s["state"][0]}), "this optimizer has 1 parameters"),
    (lambda s: s["state"][0].update(step=-1), "non-negative integer"),
    (lambda s: s["hyperparameters"].pop("eps"), r"missing \['eps'\]"),
    (lambda s: s["hyperparameters"].update(momentum=0.9), r"unknown \['momentum'\]"),
    (lambda s: s["hyperparameters"].update(lr=-1.0), "lr must be"),
    (lambda s: s.pop("state"), "expected a dict"),
])
def test_load_state_dict_rejects_a_mismatch_and_changes_nothing(corrupt, message):
    p, optimizer = trained_adam()
    before = optimizer.state_dict()
    saved = optimizer.state_dict()
    corrupt(saved)
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(saved)
    after = optimizer.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"]
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(after["state"][0][key], before["state"][0][key])


def test_sgd_state_cannot_be_loaded_into_adam():
    p = Tensor([1.0], requires_grad=True)
    sgd = SGD([p], lr=0.1, momentum=0.9)
    p.grad = Tensor([1.0])
    sgd.step()
    with pytest.raises(ValueError, match="hyper-parameters do not match"):
        Adam([p]).load_state_dict(sgd.state_dict())
