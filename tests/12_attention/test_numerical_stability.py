"""Numerical stability: scores of +-1e4 give finite outputs and gradients with no
warnings (pytest turns warnings into errors), masked huge scores are ignored exactly,
and float32 agrees with float64."""
import numpy as np
import pytest

import tinytorch.core.autograd  # noqa: F401  (installs backward)
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import (
    MultiHeadAttention,
    attention_weights,
    scaled_dot_product_attention,
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("is_causal", [False, True])
def test_scores_of_1e4_scale_give_finite_outputs_and_gradients(rng, dtype, is_causal):
    # q.k / sqrt(d) ~ 1e4: exp() of that would overflow without the max shift
    scale = np.array([100.0, 100.0, 1.0])[:, None, None, None]
    q, k, v = (Tensor(a, dtype=dtype, requires_grad=True)
               for a in rng.standard_normal((3, 2, 6, 4)) * scale)
    scores = q.data @ np.swapaxes(k.data, -1, -2) / 2
    assert np.abs(scores).max() > 1e4
    out = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    (out * out).sum().backward()
    assert np.all(np.isfinite(out.data))
    assert all(np.all(np.isfinite(t.grad.data)) for t in (q, k, v))
    # the weights are one-hot on each row's best key, so the output copies that value
    allowed = np.tril(np.ones((6, 6), bool)) if is_causal else np.ones((6, 6), bool)
    best = np.where(allowed, scores, -np.inf).argmax(axis=-1)
    np.testing.assert_allclose(out.data, np.take_along_axis(v.data, best[..., None], axis=1),
                               rtol=1e-6)


def test_huge_scores_match_torch_in_float64(torch, rng):
    q, k, v = rng.standard_normal((3, 2, 5, 4)) * np.array([30.0, 30.0, 1.0])[:, None, None, None]
    ours = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (q, k, v)]
    out = scaled_dot_product_attention(*ours, is_causal=True)
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    expected = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=True)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-7, atol=1e-9)


def test_a_masked_key_with_a_huge_score_gets_exactly_zero_weight():
    # key 0 would win by 1e4, but it is masked; key 1 is very unlikely but allowed
    q = Tensor([[1.0, 0.0]])
    k = Tensor([[2e4, 0.0], [-2e4, 0.0], [-2e4, 0.0]])
    weights = attention_weights(q, k, mask=np.array([[False, True, True]]))
    assert weights.data.tolist() == [[0.0, 0.5, 0.5]]


def test_equal_scores_give_uniform_weights_even_when_huge():
    q = Tensor(np.full((2, 3), 1e3))
    k = Tensor(np.full((4, 3), 1e3))                              # every score 5.8e5
    np.testing.assert_array_equal(attention_weights(q, k).data, np.full((2, 4), 0.25))


def test_float32_attention_agrees_with_float64(rng):
    mha64 = MultiHeadAttention(16, 4, seed=0)
    mha32 = MultiHeadAttention(16, 4, seed=0)
    for p in mha64.parameters():
        p.data = p.data.astype(np.float64)
    x = rng.standard_normal((2, 12, 16))
    y32 = mha32(Tensor(x), is_causal=True)
    y64 = mha64(Tensor(x, dtype=np.float64), is_causal=True)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.data, y64.data, rtol=1e-4, atol=1e-5)


def test_long_sequences_keep_weights_normalised(rng):
    q, k = (Tensor(a) for a in rng.standard_normal((2, 1, 512, 8)))
    weights = attention_weights(q, k, is_causal=True)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-5)
    assert weights.data[0, -1].min() > 0                          # no weight underflows to 0
