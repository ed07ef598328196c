"""Numerical stability: LayerNorm stays finite and exact for huge, tiny, offset and
constant inputs; GPT stays finite with large weights and extreme sampling
temperatures; float32 agrees with float64. Warnings are errors under pytest here."""
import numpy as np
import pytest

import tinytorch.core.autograd  # noqa: F401  (installs backward)
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, LayerNorm


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e6, 1e15])
def test_layernorm_is_scale_invariant_and_finite_from_tiny_to_huge_inputs(rng, scale):
    base = rng.standard_normal((3, 8))
    ln = LayerNorm(8, eps=1e-5)
    x = Tensor(base * scale, requires_grad=True)                # float32
    y = ln(x)
    (y * Tensor(rng.standard_normal((3, 8)))).sum().backward()
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))
    x64 = base * scale
    centered = x64 - x64.mean(-1, keepdims=True)
    reference = centered / np.sqrt(centered.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.data, reference, atol=1e-4)
    if scale >= 1:                                # eps is negligible: the output is unit-scale
        np.testing.assert_allclose(y.data.std(-1), 1.0, rtol=1e-4)


def test_layernorm_of_constant_rows_is_exactly_the_bias(rng):
    ln = LayerNorm(6)
    ln.bias.data = rng.standard_normal(6).astype(np.float32)
    x = Tensor(np.array([[5.0] * 6, [-1e8] * 6, [0.0] * 6]), requires_grad=True)
    y = ln(x)
    np.testing.assert_array_equal(y.data, np.tile(ln.bias.data, (3, 1)))
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.data)) and np.all(np.isfinite(ln.weight.grad.data))


def test_layernorm_with_a_large_common_offset_still_normalises(rng):
    base = rng.standard_normal((4, 16))
    y = LayerNorm(16)(Tensor(base + 1e4, dtype=np.float64)).data
    reference = (base - base.mean(-1, keepdims=True)) / np.sqrt(base.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, reference, atol=1e-9)


def test_gpt_with_large_weights_gives_finite_loss_and_gradients(tiny_config, rng):
    model = GPT(tiny_config())
    for p in model.parameters():
        p.data = rng.normal(0, 3.0, p.shape).astype(np.float32)   # logits in the hundreds
    idx, targets = rng.integers(0, 7, size=(2, 2, 6))
    logits, loss = model(idx, targets)
    assert np.abs(logits.data).max() > 50
    loss.backward()
    assert np.isfinite(loss.item())
    assert all(np.all(np.isfinite(p.grad.data)) for p in model.parameters())


@pytest.mark.parametrize("temperature", [1e-4, 1.0, 1e4])
def test_sampling_is_stable_at_extreme_temperatures(tiny_config, rng, temperature):
    model = GPT(tiny_config(block_size=8))
    for p in model.parameters():
        p.data = rng.normal(0, 2.0, p.shape).astype(np.float32)
    out = model.generate(np.array([[1], [2]]), 6, temperature=temperature, seed=0)
    assert out.shape == (2, 7) and out.data.min() >= 0 and out.data.max() < 7
    if temperature == 1e-4:                       # logits / 1e-4: effectively greedy
        np.testing.assert_array_equal(out.data, model.generate(np.array([[1], [2]]), 6,
                                                                greedy=True).data)


def test_float32_gpt_agrees_with_float64(tiny_config, rng):
    model = GPT(tiny_config(n_embd=16))
    idx, targets = rng.integers(0, 7, size=(2, 3, 6))
    logits32, loss32 = model(idx, targets)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    logits64, loss64 = model(idx, targets)
    assert logits32.dtype == np.float32 and logits64.dtype == np.float64
    np.testing.assert_allclose(logits32.data, logits64.data, rtol=1e-4, atol=1e-6)
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-6)
