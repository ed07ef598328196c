"""Module 16 stays finite and accurate: distillation with extreme logits and temperatures,
factorizing zero and ill-conditioned matrices, norms and rankings of extreme weights."""
import numpy as np

from tinytorch.compression import (
    distillation_loss,
    factorize_linear,
    magnitude_mask,
    output_norms,
    prune_structured,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor


def test_distillation_with_huge_logits_is_finite_and_exact():
    s = Tensor([[1e4, -1e4, 0.0], [0.0, 5e3, -5e3]], requires_grad=True)
    t = np.array([[1e4, -1e4, 0.0], [-5e3, 5e3, 0.0]], np.float32)
    loss = distillation_loss(s, t, np.array([0, 1]), T=1.0, alpha=0.5)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(s.grad.data).all()
    # row 0: identical, certain and right: 0. Row 1: both certain of class 1: 0 as well.
    assert loss.item() == 0.0


def test_distillation_across_temperatures_stays_finite_and_differentiable(rng):
    s = Tensor(rng.standard_normal((4, 6)) * 20, dtype=np.float64, requires_grad=True)
    t = rng.standard_normal((4, 6)) * 20
    y = rng.integers(0, 6, 4)
    for T in (0.05, 1.0, 100.0):
        loss = distillation_loss(s, t, y, T=T, alpha=0.8)
        assert np.isfinite(loss.item()) and loss.item() >= 0
        assert gradcheck(lambda z, T=T: distillation_loss(z, t, y, T=T, alpha=0.8), [s],
                         atol=1e-5, rtol=1e-4) < 1e-4


def test_high_temperature_soft_term_approaches_the_logit_matching_limit(rng):
    # For large T, T^2 KL -> sum((s - mean s) - (t - mean t))^2 / (2C) per row (Hinton et al.)
    s, t = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    loss = distillation_loss(Tensor(s, dtype=np.float64), t, None, T=1000.0, alpha=1.0).item()
    cs, ct = s - s.mean(axis=1, keepdims=True), t - t.mean(axis=1, keepdims=True)
    limit = (((cs - ct) ** 2).sum(axis=1) / (2 * 5)).mean()
    assert abs(loss - limit) < 1e-3 * limit


def test_factorizing_a_zero_layer_gives_zero_factors_not_nan():
    layer = Linear(5, 3, seed=0)
    layer.weight.data[...] = 0.0
    layer.bias.data[...] = [1.0, 2.0, 3.0]
    factored = factorize_linear(layer, 2)
    out = factored(Tensor(np.ones((2, 5)))).data
    assert np.isfinite(factored[0].weight.data).all() and (out == [1.0, 2.0, 3.0]).all()


def test_factorizing_an_ill_conditioned_layer_at_full_rank(rng):
    u, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    v, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    s = np.logspace(3, -6, 8)                                        # condition number 1e9
    layer = Linear(8, 8, seed=0)
    layer.weight.data[...] = (u * s) @ v.T
    first, second = factorize_linear(layer, 8)
    product = first.weight.data.astype(np.float64) @ second.weight.data
    # float32 factors: the error is float32 rounding of the largest singular value's scale
    assert np.abs(product - layer.weight.data).max() < 1e3 * 1e-6
    first, second = factorize_linear(layer, 7)                       # drop only s = 1e-6
    product = first.weight.data.astype(np.float64) @ second.weight.data
    assert np.abs(product - layer.weight.data).max() < 1e3 * 1e-6


def test_norms_of_extreme_weights_do_not_overflow():
    layer = Linear(3, 2, seed=0)
    layer.weight.data[...] = [[3e30, 1e-30], [4e30, 0.0], [0.0, 2e-30]]
    assert np.allclose(output_norms(layer), [5e30, np.sqrt(5) * 1e-30], rtol=1e-6)
    small = prune_structured(Sequential(layer, ReLU(), Linear(2, 1, seed=1)), 0.5)
    assert np.array_equal(small[0].weight.data[:, 0], layer.weight.data[:, 0])


def test_ranking_spans_the_whole_float32_range():
    w = np.array([1e-38, -1e38, 1e-20, -1e20, 0.0, 3.0], np.float32)
    assert magnitude_mask(w, 0.5).tolist() == [0, 1, 0, 1, 0, 1]
