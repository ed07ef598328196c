"""Numerical stability of gradients: finite (and right) for logits of +-1e4, saturated
sigmoid/tanh, logs and square roots of tiny positive numbers, long accumulations."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import gradcheck
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5.0, 1e4, 1e4]])


def grad_of(f, data, dtype=np.float32):
    x = Tensor(data, dtype=dtype, requires_grad=True)
    f(x).backward()
    assert x.grad.dtype == dtype
    return x.grad.data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_gradient_at_huge_logits_is_softmax_minus_onehot(dtype):
    labels = np.array([0, 0, 2])
    grad = grad_of(lambda x: CrossEntropyLoss()(x, labels), HUGE, dtype)
    # softmax rows: [1, 0, 0], [0, 0, 1], [0, 1/2, 1/2] (exp(5 - 1e4) underflows to 0)
    softmax = np.array([[1, 0, 0], [0, 0, 1], [0, 0.5, 0.5]])
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, (softmax - np.eye(3)[labels]) / 3, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_gradient_at_huge_logits(dtype):
    logits = np.array([1e4, -1e4, 1e4, -1e4, 0.0])
    target = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    grad = grad_of(lambda x: BinaryCrossEntropyLoss()(x, Tensor(target)), logits, dtype)
    # (sigmoid(x) - y) / n, with sigmoid exactly 1, 0, 1, 0, 0.5
    np.testing.assert_array_equal(grad, np.array([1, -1, 0, 0, -0.5], dtype=dtype) / 5)


@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_gradient_at_huge_logits_is_finite(dim, rng):
    w = rng.standard_normal(HUGE.shape)
    grad = grad_of(lambda x: (Softmax(dim)(x) * Tensor(w)).sum(), HUGE)
    s = np.exp(HUGE - HUGE.max(axis=dim, keepdims=True))
    s /= s.sum(axis=dim, keepdims=True)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, s * (w - (s * w).sum(axis=dim, keepdims=True)), atol=1e-6)


@pytest.mark.parametrize("dim", [0, 1])
def test_log_softmax_gradient_at_huge_logits_is_finite(dim):
    grad = grad_of(lambda x: LogSoftmax(dim)(x).sum(), HUGE)
    s = np.exp(HUGE - HUGE.max(axis=dim, keepdims=True))
    s /= s.sum(axis=dim, keepdims=True)
    n = HUGE.shape[dim]
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, 1 - n * s, atol=1e-6)        # d sum(x - lse) = 1 - n s


@pytest.mark.parametrize("activation", [Sigmoid(), Tanh(), GELU()], ids=["sigmoid", "tanh", "gelu"])
def test_saturated_activations_have_their_limit_gradients(activation):
    grad = grad_of(lambda x: activation(x).sum(), np.array([-1e4, -50.0, 50.0, 1e4]))
    limit = 1.0 if isinstance(activation, GELU) else 0.0       # GELU is x for large x
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[[0, 3]], [0.0, limit])  # exactly, at +-1e4
    np.testing.assert_allclose(grad[[1, 2]], [0.0, limit], atol=1e-20)


@pytest.mark.parametrize("value, dtype",
                         [(1e-30, np.float64), (1e-30, np.float32), (1e-6, np.float32)])
def test_log_near_zero_has_a_finite_exact_gradient(value, dtype):
    grad = grad_of(lambda x: x.log().sum(), np.array([value, 1.0]), dtype)
    np.testing.assert_allclose(grad, [1 / np.array(value, dtype), 1.0], rtol=1e-6)
    assert np.isfinite(grad).all()


def test_sqrt_near_zero_has_a_finite_exact_gradient():
    grad = grad_of(lambda x: x.sqrt().sum(), np.array([1e-20, 4.0]), np.float64)
    np.testing.assert_allclose(grad, [0.5e10, 0.25], rtol=1e-12)


def test_log_softmax_gradient_is_shift_invariant(rng):
    data = rng.standard_normal((3, 5))
    w = Tensor(rng.standard_normal((3, 5)), dtype=np.float64)
    f = lambda x: (LogSoftmax()(x) * w).sum()           # noqa: E731
    np.testing.assert_allclose(grad_of(f, data + 1000.0, np.float64), grad_of(f, data, np.float64),
                               atol=1e-10)


def test_gradcheck_passes_far_from_the_origin(rng):
    x = Tensor(rng.standard_normal((2, 4)) * 30, dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda t: CrossEntropyLoss()(t, np.array([1, 3])), [x]) < 1e-6
    assert gradcheck(lambda t: LogSoftmax(dim=0)(t), [x]) < 1e-6


def test_mse_gradient_for_large_float32_errors_is_finite():
    grad = grad_of(lambda p: MSELoss()(p, Tensor(np.zeros(4))), np.array([1e15, -1e15, 3.0, 0.0]))
    np.testing.assert_allclose(grad, [5e14, -5e14, 1.5, 0.0], rtol=1e-6)


def test_accumulating_a_thousand_float32_gradients_is_exact_for_exact_values():
    x = Tensor([0.5, 0.25], requires_grad=True)
    for _ in range(1_000):
        (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2000.0, 2000.0])


def test_float32_and_float64_gradients_agree_to_float32_precision(rng):
    data = rng.standard_normal((4, 6)) * 5
    labels = np.array([5, 0, 2, 2])
    f = lambda x: CrossEntropyLoss()(GELU()(x) * 3, labels)     # noqa: E731
    np.testing.assert_allclose(grad_of(f, data, np.float32), grad_of(f, data, np.float64),
                               rtol=1e-4, atol=1e-6)
