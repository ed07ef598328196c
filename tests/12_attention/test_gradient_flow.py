"""Gradient flow: finite differences (float64 gradcheck) and PyTorch's gradients for
attention with respect to q, k, v and every MultiHeadAttention parameter; masks stop
gradients exactly."""
import numpy as np
import pytest

from tinytorch.core.autograd import gradcheck
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import MultiHeadAttention, length_mask, scaled_dot_product_attention


def leaves(*arrays):
    return [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("is_causal", [False, True])
def test_gradcheck_sdpa_wrt_q_k_v(rng, is_causal):
    q, k, v = leaves(*rng.standard_normal((3, 2, 4, 3)))
    error = gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=is_causal),
                      [q, k, v])
    assert error < 1e-7


def test_gradcheck_sdpa_with_a_mask_that_empties_a_row(rng):
    q, k, v = leaves(*rng.standard_normal((3, 4, 3)))
    allowed = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1], [0, 1, 0, 0]], dtype=bool)
    error = gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=allowed),
                      [q, k, v])
    assert error < 1e-7


def test_gradcheck_cross_attention_with_different_lengths(rng):
    q = leaves(rng.standard_normal((2, 3, 4)))[0]
    k, v = leaves(*rng.standard_normal((2, 2, 5, 4)))
    assert gradcheck(scaled_dot_product_attention, [q, k, v]) < 1e-7


def test_gradcheck_mha_parameters_and_input(rng, float64, random_biases):
    mha = random_biases(float64(MultiHeadAttention(4, 2, seed=0)), rng)
    x = leaves(rng.standard_normal((2, 3, 4)))[0]
    params = mha.parameters()
    assert len(params) == 8
    error = gradcheck(lambda *_: mha(x, is_causal=True), params + [x])
    assert error < 1e-7


def test_gradcheck_mha_cross_attention_wrt_context(rng, float64, random_biases):
    mha = random_biases(float64(MultiHeadAttention(4, 2, seed=1)), rng)
    x, memory = leaves(rng.standard_normal((1, 2, 4)), rng.standard_normal((1, 3, 4)))
    mask = length_mask([2], 3)
    assert gradcheck(lambda x, m: mha(x, context=m, mask=mask), [x, memory]) < 1e-7


@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_gradients_match_torch(torch, rng, is_causal):
    arrays = rng.standard_normal((3, 2, 3, 5, 4))
    ours = leaves(*arrays)
    weights = rng.standard_normal((2, 3, 5, 4))
    (scaled_dot_product_attention(*ours, is_causal=is_causal) * weights).sum().backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=is_causal)
    (out * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs):
        assert a.grad.shape == tuple(b.grad.shape)
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_mha_parameter_gradients_match_torch(torch, torch_mha, float64, random_biases, rng):
    mha = random_biases(float64(MultiHeadAttention(8, 2, seed=2)), rng)
    theirs = torch_mha(mha)
    x = rng.standard_normal((2, 5, 8))
    target = rng.standard_normal((2, 5, 8))
    xs = Tensor(x, dtype=np.float64, requires_grad=True)
    ((mha(xs, is_causal=True) - target) ** 2).mean().backward()
    xt = torch.tensor(x, requires_grad=True)
    blocked = ~torch.tril(torch.ones(5, 5, dtype=torch.bool))
    out, _ = theirs(xt, xt, xt, attn_mask=blocked)
    ((out - torch.tensor(target)) ** 2).mean().backward()
    C = 8
    w_grad = theirs.in_proj_weight.grad.numpy()                  # (3C, C), rows q|k|v
    b_grad = theirs.in_proj_bias.grad.numpy()
    for i, layer in enumerate((mha.query, mha.key, mha.value)):
        np.testing.assert_allclose(layer.weight.grad.data, w_grad[i * C:(i + 1) * C].T,
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.bias.grad.data, b_grad[i * C:(i + 1) * C],
                                   rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mha.out.weight.grad.data, theirs.out_proj.weight.grad.numpy().T,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mha.out.bias.grad.data, theirs.out_proj.bias.grad.numpy(),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_every_mha_parameter_gets_a_nonzero_finite_gradient_of_its_shape(rng):
    mha = MultiHeadAttention(16, 4, seed=3)
    x = Tensor(rng.standard_normal((2, 6, 16)))
    (mha(x, is_causal=True) ** 2).sum().backward()
    for p in mha.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32
        assert np.all(np.isfinite(p.grad.data)) and np.abs(p.grad.data).max() > 0


def test_masked_keys_and_values_get_exactly_zero_gradient(rng):
    q, k, v = leaves(*rng.standard_normal((3, 2, 4, 3)))
    mask = length_mask([4, 2], 4)                              # batch 1: keys 2, 3 are padding
    (scaled_dot_product_attention(q, k, v, mask=mask) ** 2).sum().backward()
    assert np.all(k.grad.data[1, 2:] == 0.0) and np.all(v.grad.data[1, 2:] == 0.0)
    assert np.abs(k.grad.data[1, :2]).min() > 0 and np.abs(v.grad.data[0]).min() > 0


def test_future_tokens_get_no_gradient_from_the_past(rng, float64):
    mha = float64(MultiHeadAttention(8, 2, seed=4))
    x = leaves(rng.standard_normal((1, 5, 8)))[0]
    mha(x, is_causal=True)[:, 2].sum().backward()              # output at position 2 only
    assert np.all(x.grad.data[:, 3:] == 0.0)
    assert np.all(np.abs(x.grad.data[:, :3]).max(axis=-1) > 0)


def test_gradients_accumulate_over_two_backward_passes(rng):
    mha = MultiHeadAttention(8, 2, seed=5)
    x = Tensor(rng.standard_normal((1, 3, 8)))
    mha(x).sum().backward()
    first = [p.grad.data.copy() for p in mha.parameters()]
    mha(x).sum().backward()
    for p, g in zip(mha.parameters(), first):
        np.testing.assert_allclose(p.grad.data, 2 * g, rtol=1e-6, atol=1e-7)
    mha.zero_grad()
    assert all(p.grad is None for p in mha.parameters())
