"""Core: each update rule checked by hand on one or two steps, the optimizer state, zero_grad,
state_dict, and 10-step trajectories against torch.optim."""
import inspect
import math

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW, Optimizer
from tinytorch.core.tensor import Tensor

API = ["Optimizer", "SGD", "Adam", "AdamW"]


def param_with_grads(*grads, start=(1.0, -2.0)):
    """A parameter and a function that sets its .grad to the next of `grads`."""
    p = Tensor(list(start), requires_grad=True)
    queue = [Tensor(list(g)) for g in grads]

    def next_grad():
        p.grad = queue.pop(0)
    return p, next_grad


def run(optimizer_class, grads, start=(1.0, -2.0), **kwargs):
    """Apply `optimizer_class` to a parameter for len(grads) steps with the given gradients."""
    p, next_grad = param_with_grads(*grads, start=start)
    optimizer = optimizer_class([p], **kwargs)
    for _ in grads:
        next_grad()
        optimizer.step()
    return p, optimizer


G1, G2 = (0.5, -1.0), (1.0, 0.0)   # two gradients for p = [1, -2]

# ---- SGD, by hand ----------------------------------------------------------------------


def test_sgd_step_is_minus_lr_times_grad():
    p, _ = run(SGD, [G1], lr=0.1)
    np.testing.assert_allclose(p.data, [0.95, -1.9], rtol=1e-6)


def test_sgd_weight_decay_adds_wd_times_p_to_the_gradient():
    # g' = g + 0.1 * p = [0.6, -1.2]
    p, _ = run(SGD, [G1], lr=0.1, weight_decay=0.1)
    np.testing.assert_allclose(p.data, [0.94, -1.88], rtol=1e-6)


def test_sgd_momentum_two_steps():
    # step 1: b = g1 = [0.5, -1], p = [0.95, -1.9]
    # step 2: b = 0.9 b + g2 = [1.45, -0.9], p = [0.95 - 0.145, -1.9 + 0.09]
    p, optimizer = run(SGD, [G1, G2], lr=0.1, momentum=0.9)
    np.testing.assert_allclose(p.data, [0.805, -1.81], rtol=1e-6)
    np.testing.assert_allclose(optimizer.state[p]["momentum_buffer"], [1.45, -0.9], rtol=1e-6)


def test_sgd_dampening_scales_new_gradients_after_the_first_step():
    # step 1: b = g1 (no dampening on the first step, as torch); step 2: b = 0.9 b + 0.5 g2
    p, optimizer = run(SGD, [G1, G2], lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(optimizer.state[p]["momentum_buffer"], [0.95, -0.9], rtol=1e-6)
    np.testing.assert_allclose(p.data, [0.855, -1.81], rtol=1e-6)


def test_sgd_nesterov_two_steps():
    # step 1: b = g1, d = g1 + 0.9 b = [0.95, -1.9], p = [0.905, -1.81]
    # step 2: b = 0.9 g1 + g2 = [1.45, -0.9], d = g2 + 0.9 b = [2.305, -0.81]
    p, _ = run(SGD, [G1, G2], lr=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(p.data, [0.905 - 0.2305, -1.81 + 0.081], rtol=1e-6)


def test_sgd_without_momentum_keeps_no_state():
    _, optimizer = run(SGD, [G1, G2], lr=0.1)
    assert optimizer.state == {}

# ---- Adam and AdamW, by hand -------------------------------------------------------------


def test_adam_first_step_is_lr_times_g_over_abs_g_plus_eps():
    # m_hat = g and v_hat = g^2 after one step, so the step is lr * g / (|g| + eps)
    p, optimizer = run(Adam, [G1], lr=0.1, eps=0.5)
    np.testing.assert_allclose(p.data, [1 - 0.1 * 0.5 / 1.0, -2 + 0.1 * 1.0 / 1.5], rtol=1e-6)
    state = optimizer.state[p]
    assert state["step"] == 1
    np.testing.assert_allclose(state["exp_avg"], [0.05, -0.1], rtol=1e-6)          # 0.1 g
    np.testing.assert_allclose(state["exp_avg_sq"], [0.00025, 0.001], rtol=1e-6)   # 0.001 g^2


def test_adam_two_steps_with_different_gradients():
    # betas (0.5, 0.75), eps 0, lr 1, p0 = 0, gradients 1 then 3:
    # step 1: m = 0.5, v = 0.25, m_hat = 1, v_hat = 1, p = -1
    # step 2: m = 0.25 + 1.5 = 1.75, m_hat = 1.75 / 0.75 = 7/3
    #         v = 0.1875 + 2.25 = 2.4375, v_hat = 2.4375 / 0.4375 = 39/7
    p, optimizer = run(Adam, [(1.0,), (3.0,)], start=(0.0,), lr=1.0, betas=(0.5, 0.75), eps=0.0)
    np.testing.assert_allclose(p.data, [-1 - (7 / 3) / math.sqrt(39 / 7)], rtol=1e-6)
    np.testing.assert_allclose(optimizer.state[p]["exp_avg"], [1.75], rtol=1e-6)
    np.testing.assert_allclose(optimizer.state[p]["exp_avg_sq"], [2.4375], rtol=1e-6)
    assert optimizer.state[p]["step"] == 2


def test_adam_constant_gradient_moves_lr_per_step_thanks_to_bias_correction():
    # with a constant g, m_hat = g and v_hat = g^2 at every step
    p, _ = run(Adam, [G1] * 3, lr=0.1, eps=0.5)
    np.testing.assert_allclose(p.data, [1 - 3 * 0.1 * 0.5 / 1.0, -2 + 3 * 0.1 * 1.0 / 1.5],
                               rtol=1e-6)


def test_adam_weight_decay_is_added_to_the_gradient():
    # g' = g + 0.5 p = [1.0, -2.0]; step = 0.1 * g' / (|g'| + 1)
    p, _ = run(Adam, [G1], lr=0.1, eps=1.0, weight_decay=0.5)
    np.testing.assert_allclose(p.data, [1 - 0.1 * 1 / 2, -2 + 0.1 * 2 / 3], rtol=1e-6)


def test_adamw_decays_the_weights_then_takes_the_adam_step_with_the_raw_gradient():
    # p = p * (1 - 0.1 * 0.5) = [0.95, -1.9]; then 0.1 * g / (|g| + 1) = [0.1/3, -0.05]
    p, _ = run(AdamW, [G1], lr=0.1, eps=1.0, weight_decay=0.5)
    np.testing.assert_allclose(p.data, [0.95 - 0.1 / 3, -1.9 + 0.05], rtol=1e-6)


def test_adamw_and_adam_agree_without_weight_decay():
    grads = [G1, G2, (0.25, 2.0)]
    adam, _ = run(Adam, grads, lr=0.1)
    adamw, _ = run(AdamW, grads, lr=0.1, weight_decay=0.0)
    np.testing.assert_array_equal(adam.data, adamw.data)


def test_defaults_match_torch_optim():
    p = [Tensor([1.0], requires_grad=True)]
    assert Adam(p).hyperparameters() == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                         "weight_decay": 0.0}
    assert AdamW(p).weight_decay == 1e-2
    assert SGD(p, lr=0.1).hyperparameters() == {"lr": 0.1, "momentum": 0.0, "dampening": 0.0,
                                                "weight_decay": 0.0, "nesterov": False}

# ---- zero_grad and state -------------------------------------------------------------------


def test_zero_grad_clears_every_gradient_so_the_next_backward_starts_fresh():
    a, b = Tensor([2.0, 3.0], requires_grad=True), Tensor([[1.0]], requires_grad=True)
    optimizer = SGD([a, b], lr=0.1)
    ((a * a).sum() + b.sum()).backward()
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None
    (a * a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [4.0, 6.0])   # 2a, not accumulated


def test_state_is_per_parameter_and_keyed_by_the_tensor():
    a, b = Tensor([1.0], requires_grad=True), Tensor([1.0, 2.0], requires_grad=True)
    optimizer = Adam([a, b], lr=0.1)
    a.grad = Tensor([1.0])
    optimizer.step()
    b.grad = Tensor([1.0, 1.0])
    optimizer.step()
    assert optimizer.state[a]["step"] == 2 and optimizer.state[b]["step"] == 1
    assert optimizer.state[b]["exp_avg"].shape == (2,)


def test_state_dict_copies_and_load_state_dict_resumes_identically(rng):
    grads = rng.standard_normal((6, 3)).astype(np.float32)

    def fresh():
        p = Tensor([0.5, -0.5, 1.0], requires_grad=True)
        return p, Adam([p], lr=0.1, betas=(0.8, 0.9))

    p, optimizer = fresh()
    for g in grads[:3]:
        p.grad = Tensor(g)
        optimizer.step()
    saved, saved_p = optimizer.state_dict(), p.data.copy()
    saved["state"][0]["exp_avg"] += 100.0          # a copy: the optimizer is unaffected
    assert np.all(np.abs(optimizer.state[p]["exp_avg"]) < 100)
    saved = optimizer.state_dict()
    for g in grads[3:]:
        p.grad = Tensor(g)
        optimizer.step()

    q, resumed = fresh()
    q.data[...] = saved_p
    resumed.load_state_dict(saved)
    assert resumed.hyperparameters() == {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-8,
                                         "weight_decay": 0.0}
    for g in grads[3:]:
        q.grad = Tensor(g)
        resumed.step()
    np.testing.assert_array_equal(q.data, p.data)
    assert resumed.state[q]["step"] == 6


def test_repr_shows_the_hyperparameters():
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.5, momentum=0.9)
    assert repr(optimizer) == ("SGD(lr=0.5, momentum=0.9, dampening=0.0, weight_decay=0.0, "
                               "nesterov=False)")

# ---- against torch.optim ----------------------------------------------------------------------


def test_ten_step_trajectory_matches_torch_on_least_squares(torch, setting, least_squares, ls_loss):
    name, optimizer_class, kwargs = setting
    X, y, p0 = least_squares
    p = Tensor(p0, requires_grad=True)
    optimizer = optimizer_class([p], **kwargs)
    tp = torch.tensor(p0, requires_grad=True)
    torch_optimizer = getattr(torch.optim, optimizer_class.__name__)([tp], **kwargs)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    for step in range(10):
        optimizer.zero_grad()
        ls_loss(p, X, y).backward()
        optimizer.step()
        torch_optimizer.zero_grad()
        ((tX @ tp - ty) ** 2).mean().backward()
        torch_optimizer.step()
        np.testing.assert_allclose(p.data, tp.detach().numpy(), atol=1e-5, rtol=0,
                                   err_msg=f"{name}, step {step + 1}")
    assert p.dtype == np.float32


def test_state_matches_torch_after_ten_steps(torch, least_squares, ls_loss):
    X, y, p0 = least_squares
    p = Tensor(p0, requires_grad=True)
    optimizer = Adam([p], lr=0.05)
    tp = torch.tensor(p0, requires_grad=True)
    torch_optimizer = torch.optim.Adam([tp], lr=0.05)
    for _ in range(10):
        optimizer.zero_grad()
        ls_loss(p, X, y).backward()
        optimizer.step()
        torch_optimizer.zero_grad()
        ((torch.from_numpy(X) @ tp - torch.from_numpy(y)) ** 2).mean().backward()
        torch_optimizer.step()
    ours, theirs = optimizer.state[p], torch_optimizer.state[tp]
    assert ours["step"] == int(theirs["step"]) == 10
    np.testing.assert_allclose(ours["exp_avg"], theirs["exp_avg"].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours["exp_avg_sq"], theirs["exp_avg_sq"].numpy(), rtol=1e-4,
                               atol=1e-7)

# ---- shapes, export, API ------------------------------------------------------------------------


@pytest.mark.shape
@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 3, 4)])
def test_shapes_and_dtype_are_preserved(setting, shape, rng):
    _, optimizer_class, kwargs = setting
    p = Tensor(rng.standard_normal(shape), requires_grad=True)
    data = p.data                                       # updates happen in this very array
    optimizer = optimizer_class([p], **kwargs)
    for _ in range(3):
        p.grad = Tensor(rng.standard_normal(shape))
        optimizer.step()
    assert p.shape == shape and p.dtype == np.float32 and p.data is data
    for value in optimizer.state.get(p, {}).values():
        if isinstance(value, np.ndarray):
            assert value.shape == shape and value.dtype == np.float32


@pytest.mark.export_import
def test_public_api_is_exported(export_api):
    found = export_api("tinytorch.core.optimizers", API)
    for name in ["SGD", "Adam", "AdamW"]:
        assert issubclass(found[name], Optimizer)


@pytest.mark.api_consistency
def test_every_optimizer_has_the_same_interface():
    for optimizer_class in (SGD, Adam, AdamW):
        parameters = list(inspect.signature(optimizer_class).parameters)
        assert parameters[:2] == ["params", "lr"], optimizer_class
        for method in ("zero_grad", "step", "state_dict", "load_state_dict", "hyperparameters"):
            assert callable(getattr(optimizer_class, method))
        assert optimizer_class.hyperparameter_names[0] == "lr"


@pytest.mark.api_consistency
def test_keyword_names_and_defaults_match_torch(torch):
    for ours, theirs in ((SGD, torch.optim.SGD), (Adam, torch.optim.Adam),
                         (AdamW, torch.optim.AdamW)):
        our_defaults = {k: v.default for k, v in inspect.signature(ours).parameters.items()
                        if k != "params"}
        their_defaults = inspect.signature(theirs).parameters
        for name, default in our_defaults.items():
            assert name in their_defaults, f"{ours.__name__}({name}=...) is not a torch keyword"
            if default is not inspect.Parameter.empty:
                assert default == their_defaults[name].default, (ours.__name__, name)


@pytest.mark.api_consistency
def test_step_and_zero_grad_return_none_and_state_dict_is_plain_data():
    p = Tensor([1.0], requires_grad=True)
    optimizer = SGD([p], lr=0.1, momentum=0.9)
    p.grad = Tensor([1.0])
    assert optimizer.step() is None and optimizer.zero_grad() is None
    saved = optimizer.state_dict()
    assert set(saved) == {"hyperparameters", "state"}
    assert list(saved["state"]) == [0]                  # parameters named by position
    assert isinstance(saved["state"][0]["momentum_buffer"], np.ndarray)
