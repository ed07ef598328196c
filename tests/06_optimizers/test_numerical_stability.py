"""Numerical stability: Adam with tiny, huge and mixed-scale gradients, long runs against
closed forms, float64 parameters computed in float64."""
import math

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor


def adam_reference(p0, grads, lr, betas, eps):
    """Adam's formulas in float64, for comparison."""
    p, m, v = np.array(p0, dtype=np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, dtype=np.float64)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p - lr / (1 - betas[0] ** t) * m / (np.sqrt(v) / math.sqrt(1 - betas[1] ** t) + eps)
    return p


@pytest.mark.parametrize("scale", [1e-20, 1e-30, 1e-45])
def test_adam_with_tiny_gradients_takes_tiny_finite_steps(scale):
    # g^2 underflows float32 for the smaller scales; eps then dominates and the step is ~lr*g/eps
    grads = [np.array([scale, -2 * scale], dtype=np.float32)] * 3
    p = Tensor([1.0, 1.0], dtype=np.float64, requires_grad=True)
    optimizer = Adam([p], lr=0.1)
    for g in grads:
        p.grad = Tensor(g, dtype=np.float64)
        optimizer.step()
    expected = adam_reference([1.0, 1.0], [g.astype(np.float64) for g in grads], 0.1,
                              (0.9, 0.999), 1e-8)
    assert np.all(np.isfinite(p.data))
    np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-15)


def test_adam_float32_tiny_gradients_stay_finite_and_barely_move():
    p = Tensor([1.0, -1.0], requires_grad=True)
    optimizer = Adam([p], lr=0.1)
    for _ in range(5):
        p.grad = Tensor([1e-30, -1e-38])
        optimizer.step()
    assert np.all(np.isfinite(p.data)) and np.all(np.isfinite(optimizer.state[p]["exp_avg_sq"]))
    np.testing.assert_array_equal(p.data, [1.0, -1.0])   # 0.1 * 1e-30 / 1e-8 is below float32 ulp


def test_adam_steps_are_scale_invariant_when_eps_is_negligible():
    steps = []
    for scale in (1e-3, 1.0, 1e3, 1e18):      # 1e18 squared is still below float32's max
        p = Tensor([0.0, 0.0], requires_grad=True)
        optimizer = Adam([p], lr=0.01)
        for g in ([1.0, -0.5], [0.5, -1.0], [2.0, 0.25]):
            p.grad = Tensor(np.array(g) * scale)
            optimizer.step()
        steps.append(p.data.copy())
    for step in steps[1:]:
        np.testing.assert_allclose(step, steps[0], rtol=1e-4)


def test_adam_in_float64_matches_the_float64_formulas(rng):
    grads = rng.standard_normal((20, 4))
    p = Tensor(np.zeros(4), dtype=np.float64, requires_grad=True)
    optimizer = Adam([p], lr=0.01, betas=(0.8, 0.995), eps=1e-6)
    for g in grads:
        p.grad = Tensor(g, dtype=np.float64)
        optimizer.step()
    assert p.dtype == np.float64 and optimizer.state[p]["exp_avg"].dtype == np.float64
    np.testing.assert_allclose(p.data, adam_reference(np.zeros(4), grads, 0.01, (0.8, 0.995), 1e-6),
                               rtol=1e-12, atol=1e-14)


def test_momentum_buffer_converges_to_the_geometric_series():
    # constant g: b_n = g (1 - m^n) / (1 - m), p_n = p_0 - lr g sum_k (1 - m^k) / (1 - m)
    m, lr, g, n = 0.9, 1e-3, 0.5, 200
    p = Tensor([10.0], dtype=np.float64, requires_grad=True)
    optimizer = SGD([p], lr=lr, momentum=m)
    for _ in range(n):
        p.grad = Tensor([g], dtype=np.float64)
        optimizer.step()
    np.testing.assert_allclose(optimizer.state[p]["momentum_buffer"], [g * (1 - m ** n) / (1 - m)],
                               rtol=1e-12)
    expected = 10.0 - lr * g * sum((1 - m ** k) / (1 - m) for k in range(1, n + 1))
    np.testing.assert_allclose(p.data, [expected], rtol=1e-12)


def test_adamw_decay_alone_is_geometric():
    p = Tensor([4.0, -8.0], requires_grad=True)
    optimizer = AdamW([p], lr=0.01, weight_decay=0.1)
    for _ in range(500):
        p.grad = Tensor([0.0, 0.0])
        optimizer.step()
    np.testing.assert_allclose(p.data, np.array([4.0, -8.0]) * (1 - 0.01 * 0.1) ** 500, rtol=1e-4)


def test_adam_with_beta2_near_one_makes_no_oversized_first_steps():
    # without bias correction the first step would be lr / sqrt(1 - 0.99999) ~ 300 lr
    p = Tensor([0.0], requires_grad=True)
    optimizer = Adam([p], lr=0.01, betas=(0.9, 0.99999))
    for _ in range(5):
        p.grad = Tensor([3.0])
        optimizer.step()
    np.testing.assert_allclose(p.data, [-0.05], rtol=1e-5)


def test_ill_conditioned_quadratic_stays_finite_and_converges():
    # f = 0.5 * (1e4 x^2 + 1e-2 y^2): curvatures six orders of magnitude apart
    curvature = np.array([1e4, 1e-2], dtype=np.float32)
    p = Tensor([1.0, 1.0], requires_grad=True)
    optimizer = Adam([p], lr=0.05)
    for _ in range(1000):
        optimizer.zero_grad()
        (Tensor(curvature) * p * p * 0.5).sum().backward()
        optimizer.step()
    assert np.all(np.isfinite(p.data))
    assert np.all(np.abs(p.data) < 0.05)
