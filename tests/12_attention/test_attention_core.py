"""Core: scaled dot-product attention, the mask helpers and MultiHeadAttention against
direct numpy computations and PyTorch; shapes; API; export; memory growth in T."""
import inspect
import tracemalloc

import numpy as np
import pytest

import tinytorch.core.autograd  # noqa: F401  (installs backward for the memory test)
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import (
    MultiHeadAttention,
    attention_weights,
    causal_mask,
    length_mask,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)

API = ["scaled_dot_product_attention", "attention_weights", "masked_softmax", "causal_mask",
       "padding_mask", "length_mask", "MultiHeadAttention"]


def numpy_attention(q, k, v, allowed=None):
    """softmax(q k^T / sqrt(d)) v in float64 numpy; masked weights 0, rows renormalised."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


def tensors(*arrays):
    return [Tensor(a, dtype=np.float64) for a in arrays]


# ---- scaled dot-product attention vs numpy ------------------------------------------

def test_sdpa_matches_a_direct_numpy_computation(rng):
    q, k, v = rng.standard_normal((3, 2, 5, 4))
    out = scaled_dot_product_attention(*tensors(q, k, v))
    expected, _ = numpy_attention(q, k, v)
    assert out.shape == (2, 5, 4) and out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


def test_sdpa_on_a_hand_computed_example():
    # One query, two keys: scores (q.k)/sqrt(2) = (2/sqrt2, 0) -> weights (e^sqrt2, 1)/(e^sqrt2 + 1)
    q = Tensor([[1.0, 1.0]], dtype=np.float64)
    k = Tensor([[1.0, 1.0], [1.0, -1.0]], dtype=np.float64)
    v = Tensor([[10.0, 0.0], [0.0, 10.0]], dtype=np.float64)
    w0 = np.exp(np.sqrt(2)) / (np.exp(np.sqrt(2)) + 1)
    out = scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(out.data, [[10 * w0, 10 * (1 - w0)]], rtol=1e-14)


def test_causal_sdpa_matches_numpy_with_a_lower_triangular_mask(rng):
    q, k, v = rng.standard_normal((3, 2, 3, 6, 4))
    out = scaled_dot_product_attention(*tensors(q, k, v), is_causal=True)
    expected, _ = numpy_attention(q, k, v, np.tril(np.ones((6, 6), bool)))
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    # the first query sees only the first key, so it returns the first value exactly
    np.testing.assert_allclose(out.data[..., 0, :], v[..., 0, :], rtol=1e-14)


def test_boolean_mask_true_means_attend(rng):
    q, k, v = rng.standard_normal((3, 4, 5))
    allowed = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=bool)
    out, weights = (scaled_dot_product_attention(*tensors(q, k, v), mask=allowed),
                    attention_weights(*tensors(q, k), mask=allowed))
    expected, expected_weights = numpy_attention(q, k, v, allowed)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-12, atol=1e-15)
    assert np.all(weights.data[~allowed] == 0.0)          # exactly zero, not just small
    np.testing.assert_allclose(out.data[1], v[1], rtol=1e-14)   # row 1 sees only key 1


def test_mask_and_is_causal_combine_with_and(rng):
    q, k, v = rng.standard_normal((3, 5, 3))
    keys_visible = np.array([True, False, True, True, False])        # broadcast over queries
    out = scaled_dot_product_attention(*tensors(q, k, v), mask=Tensor(keys_visible),
                                       is_causal=True)
    allowed = keys_visible & np.tril(np.ones((5, 5), bool))
    expected, _ = numpy_attention(q, k, v, allowed)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


def test_attention_weights_rows_sum_to_one_and_float32_stays_float32(rng):
    q, k = (Tensor(a) for a in rng.standard_normal((2, 3, 7, 8)))
    weights = attention_weights(q, k, is_causal=True)
    assert weights.dtype == np.float32 and weights.shape == (3, 7, 7)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(np.triu(weights.data, k=1) == 0.0)


def test_explicit_scale_replaces_one_over_sqrt_d(rng):
    q, k, v = rng.standard_normal((3, 4, 2))
    out = scaled_dot_product_attention(*tensors(q, k, v), scale=1.0)
    expected, _ = numpy_attention(q * np.sqrt(2), k, v)   # numpy divides by sqrt(2)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_masked_softmax_without_a_mask_is_the_softmax():
    scores = Tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float64)
    expected = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    probs = masked_softmax(scores)
    np.testing.assert_allclose(probs.data, [expected, [1 / 3] * 3], rtol=1e-14)


# ---- vs PyTorch -----------------------------------------------------------------------

@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_matches_torch(torch, rng, is_causal):
    q, k, v = rng.standard_normal((3, 2, 3, 6, 4))
    ours = scaled_dot_product_attention(*tensors(q, k, v), is_causal=is_causal)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), is_causal=is_causal)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_with_a_boolean_mask_and_different_lengths_matches_torch(torch, rng):
    q = rng.standard_normal((2, 4, 3))             # T_q = 4
    k, v = rng.standard_normal((2, 2, 6, 3))       # T_k = 6 (cross-attention shapes)
    allowed = rng.random((2, 4, 6)) < 0.6
    allowed[:, :, 0] = True                        # every query sees at least one key
    ours = scaled_dot_product_attention(*tensors(q, k, v), mask=allowed)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), attn_mask=torch.tensor(allowed))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_non_square_causal_mask_is_top_left_aligned_like_torch(torch, rng):
    q = rng.standard_normal((3, 4))
    k, v = rng.standard_normal((2, 6, 4))
    ours = scaled_dot_product_attention(*tensors(q, k, v), is_causal=True)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), is_causal=True)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_fully_masked_rows_give_zeros_like_torch(torch, rng):
    q, k, v = rng.standard_normal((3, 3, 4))
    allowed = np.array([[False, False, False], [True, False, True], [False, False, False]])
    ours = scaled_dot_product_attention(*tensors(q, k, v), mask=allowed)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), attn_mask=torch.tensor(allowed))
    assert np.all(ours.data[[0, 2]] == 0.0)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)


def _mha64(float64, random_biases, rng, embed_dim=8, num_heads=2, bias=True, seed=0):
    mha = float64(MultiHeadAttention(embed_dim, num_heads, bias=bias, seed=seed))
    return random_biases(mha, rng) if bias else mha


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_mha_matches_torch_multihead_attention(torch, torch_mha, float64, random_biases, rng,
                                                num_heads):
    mha = _mha64(float64, random_biases, rng, num_heads=num_heads)
    theirs = torch_mha(mha)
    x = rng.standard_normal((3, 5, 8))
    ours, weights = mha(Tensor(x, dtype=np.float64), return_weights=True)
    xt = torch.tensor(x)
    expected, expected_weights = theirs(xt, xt, xt, average_attn_weights=False)
    np.testing.assert_allclose(ours.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), atol=1e-12)


def test_causal_mha_matches_torch(torch, torch_mha, float64, random_biases, rng):
    mha = _mha64(float64, random_biases, rng, embed_dim=12, num_heads=3)
    theirs = torch_mha(mha)
    x = rng.standard_normal((2, 6, 12))
    ours = mha(Tensor(x, dtype=np.float64), is_causal=True)
    xt = torch.tensor(x)
    # torch.nn.MultiheadAttention's boolean attn_mask has the opposite meaning:
    # True = NOT allowed. Ours (and F.scaled_dot_product_attention's) True = attend.
    blocked = ~torch.tril(torch.ones(6, 6, dtype=torch.bool))
    expected, _ = theirs(xt, xt, xt, attn_mask=blocked)
    np.testing.assert_allclose(ours.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_mha_padding_mask_matches_torch_key_padding_mask(torch, torch_mha, float64,
                                                          random_biases, rng):
    mha = _mha64(float64, random_biases, rng)
    theirs = torch_mha(mha)
    x = rng.standard_normal((3, 5, 8))
    lengths = np.array([5, 2, 4])
    ours = mha(Tensor(x, dtype=np.float64), mask=length_mask(lengths, 5))
    xt = torch.tensor(x)
    pad = torch.tensor(np.arange(5) >= lengths[:, None])      # torch: True = padding
    expected, _ = theirs(xt, xt, xt, key_padding_mask=pad)
    np.testing.assert_allclose(ours.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_cross_attention_matches_torch(torch, torch_mha, float64, random_biases, rng):
    mha = _mha64(float64, random_biases, rng)
    theirs = torch_mha(mha)
    x, memory = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 7, 8))
    ours = mha(Tensor(x, dtype=np.float64), context=Tensor(memory, dtype=np.float64))
    mt = torch.tensor(memory)
    expected, _ = theirs(torch.tensor(x), mt, mt)
    assert ours.shape == (2, 4, 8)
    np.testing.assert_allclose(ours.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_mha_without_bias_matches_torch(torch, torch_mha, float64, random_biases, rng):
    mha = _mha64(float64, random_biases, rng, bias=False)
    assert len(mha.parameters()) == 4                        # four weight matrices only
    theirs = torch_mha(mha)
    x = rng.standard_normal((2, 3, 8))
    expected, _ = theirs(*(torch.tensor(x),) * 3)
    np.testing.assert_allclose(mha(Tensor(x, dtype=np.float64)).data,
                               expected.detach().numpy(), rtol=1e-10, atol=1e-12)


# ---- causality -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_causal_output_at_t_is_exactly_unchanged_by_future_tokens(rng, dtype):
    mha = MultiHeadAttention(8, 2, seed=0)
    x = rng.standard_normal((2, 6, 8))
    y = mha(Tensor(x, dtype=dtype), is_causal=True).data
    for t in range(5):
        changed = x.copy()
        changed[:, t + 1:] = rng.standard_normal((2, 5 - t, 8)) * 10
        other = mha(Tensor(changed, dtype=dtype), is_causal=True).data
        np.testing.assert_array_equal(other[:, :t + 1], y[:, :t + 1])   # exact equality
        assert not np.allclose(other[:, t + 1:], y[:, t + 1:])


# ---- mask helpers ----------------------------------------------------------------------

def test_causal_mask_is_the_lower_triangle():
    expected = [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(3).data.tolist() == expected
    assert causal_mask(2, 3).data.tolist() == [[True, False, False], [True, True, False]]
    assert causal_mask(3).dtype == bool


def test_length_mask_and_padding_mask_mark_the_real_tokens():
    expected = [[[True, True, True, False]], [[True, False, False, False]]]
    assert length_mask([3, 1], 4).data.tolist() == expected
    ids = np.array([[5, 2, 7, 0], [9, 0, 0, 0]])
    assert padding_mask(ids, pad_id=0).data.tolist() == expected
    assert padding_mask(Tensor(ids), pad_id=0).shape == (2, 1, 4)


def test_padded_keys_get_exactly_zero_attention_weight(rng, float64):
    mha = float64(MultiHeadAttention(8, 2, seed=1))
    ids = np.array([[3, 4, 5, 1, 1], [6, 1, 1, 1, 1]])        # pad id 1
    x = Tensor(rng.standard_normal((2, 5, 8)), dtype=np.float64)
    _, weights = mha(x, mask=padding_mask(ids, pad_id=1), return_weights=True)
    assert weights.shape == (2, 2, 5, 5)
    assert np.all(weights.data[0, :, :, 3:] == 0.0) and np.all(weights.data[1, :, :, 1:] == 0.0)
    np.testing.assert_allclose(weights.data[1, :, :, 0], 1.0, rtol=1e-14)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)


def test_padding_does_not_change_the_outputs_of_real_tokens(rng, float64):
    mha = float64(MultiHeadAttention(8, 4, seed=2))
    real = rng.standard_normal((1, 3, 8))
    padded = np.concatenate([real, rng.standard_normal((1, 2, 8))], axis=1)
    short = mha(Tensor(real, dtype=np.float64))
    long = mha(Tensor(padded, dtype=np.float64), mask=length_mask([3], 5))
    np.testing.assert_allclose(long.data[:, :3], short.data, rtol=1e-12, atol=1e-14)


# ---- MultiHeadAttention structure ------------------------------------------------------

def test_mha_parameters_and_seeded_initialisation():
    mha = MultiHeadAttention(16, 4, seed=3)
    shapes = [p.shape for p in mha.parameters()]
    assert shapes == [(16, 16), (16,)] * 4                    # q, k, v, out projections
    assert sum(p.size for p in mha.parameters()) == 4 * (16 * 16 + 16)
    assert mha.head_dim == 4
    again = MultiHeadAttention(16, 4, seed=3)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(mha.parameters(), again.parameters()))
    other = MultiHeadAttention(16, 4, seed=4)
    assert not np.array_equal(mha.query.weight.data, other.query.weight.data)
    # the four projections are different draws from one generator
    assert not np.array_equal(mha.query.weight.data, mha.key.weight.data)


def test_one_head_is_plain_attention_on_projections(rng, float64, random_biases):
    mha = random_biases(float64(MultiHeadAttention(6, 1, seed=5)), rng)
    x = Tensor(rng.standard_normal((2, 4, 6)), dtype=np.float64)
    q, k, v = mha.query(x), mha.key(x), mha.value(x)
    expected = mha.out(scaled_dot_product_attention(q, k, v, is_causal=True))
    np.testing.assert_allclose(mha(x, is_causal=True).data, expected.data, rtol=1e-13)


# ---- shapes ----------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("B,T,C,H", [(1, 1, 4, 1), (2, 7, 8, 2), (3, 16, 12, 3), (4, 5, 32, 8)])
def test_mha_output_and_weight_shapes(rng, B, T, C, H):
    mha = MultiHeadAttention(C, H, seed=0)
    y, weights = mha(Tensor(rng.standard_normal((B, T, C))), is_causal=True, return_weights=True)
    assert y.shape == (B, T, C) and y.dtype == np.float32
    assert weights.shape == (B, H, T, T)


@pytest.mark.shape
@pytest.mark.parametrize("lead", [(), (3,), (2, 4), (2, 1, 3)])
def test_sdpa_batches_over_any_leading_dims(rng, lead):
    q = Tensor(rng.standard_normal(lead + (5, 4)))
    k = Tensor(rng.standard_normal(lead + (7, 4)))
    v = Tensor(rng.standard_normal(lead + (7, 6)))
    assert scaled_dot_product_attention(q, k, v).shape == lead + (5, 6)
    assert attention_weights(q, k).shape == lead + (5, 7)


@pytest.mark.shape
def test_sdpa_broadcasts_shared_keys_over_a_batch_of_queries(rng):
    q = rng.standard_normal((3, 2, 5, 4))
    k, v = rng.standard_normal((2, 1, 6, 4))                 # one set of keys for all 3
    out = scaled_dot_product_attention(*tensors(q, k, v))
    expected, _ = numpy_attention(q, k, v)
    assert out.shape == (3, 2, 5, 4)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


@pytest.mark.shape
def test_cross_attention_shapes_and_mask_shapes(rng):
    mha = MultiHeadAttention(8, 2, seed=0)
    x, memory = Tensor(rng.standard_normal((2, 3, 8))), Tensor(rng.standard_normal((2, 9, 8)))
    mask = length_mask([9, 4], 9)                             # (B, 1, S)
    y, weights = mha(x, context=memory, mask=mask, return_weights=True)
    assert y.shape == (2, 3, 8) and weights.shape == (2, 2, 3, 9)
    assert np.all(weights.data[1, :, :, 4:] == 0.0)
    per_query = np.ones((2, 3, 9), dtype=bool)               # (B, T, S) gets the head axis
    assert mha(x, context=memory, mask=per_query).shape == (2, 3, 8)
    per_head = np.ones((2, 2, 3, 9), dtype=bool)             # (B, H, T, S) is used as is
    assert mha(x, context=memory, mask=per_head).shape == (2, 3, 8)


# ---- memory ----------------------------------------------------------------------------

def _peak_bytes_of_forward_and_backward(T):
    rng = np.random.default_rng(0)
    q, k, v = (Tensor(rng.standard_normal((1, 4, T, 8)), requires_grad=True) for _ in range(3))
    tracemalloc.start()
    try:
        out = scaled_dot_product_attention(q, k, v, is_causal=True)
        out.sum().backward()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.memory_performance
def test_attention_memory_grows_quadratically_with_sequence_length():
    # The scores and weights are (B, heads, T, T): doubling T should about quadruple the
    # peak memory of a forward + backward pass (q, k, v themselves grow only linearly).
    peaks = {T: _peak_bytes_of_forward_and_backward(T) for T in (64, 128, 256)}
    assert 2.5 <= peaks[128] / peaks[64] <= 5.5
    assert 3.0 <= peaks[256] / peaks[128] <= 5.0
    # one (1, 4, 256, 256) float32 matrix is 1 MiB; a pass holds a handful, not hundreds
    assert 1 * 2**20 <= peaks[256] <= 40 * 2**20


@pytest.mark.memory_performance
def test_no_grad_forward_keeps_no_graph_alive(rng):
    from tinytorch.core.autograd import no_grad
    mha = MultiHeadAttention(16, 4, seed=0)
    x = Tensor(rng.standard_normal((2, 32, 16)))
    with no_grad():
        y = mha(x, is_causal=True)
    assert not y.requires_grad and y._parents == ()
    y = mha(x, is_causal=True)
    assert y.requires_grad and y._parents                   # training forward records


# ---- API and export --------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.models.attention", API)
    assert issubclass(found["MultiHeadAttention"], Module)


@pytest.mark.api_consistency
def test_signatures():
    sdpa = inspect.signature(scaled_dot_product_attention)
    assert list(sdpa.parameters) == ["q", "k", "v", "mask", "is_causal", "scale"]
    assert sdpa.parameters["mask"].default is None and sdpa.parameters["is_causal"].default is False
    init = inspect.signature(MultiHeadAttention.__init__)
    assert list(init.parameters)[1:] == ["embed_dim", "num_heads", "bias", "dropout", "seed"]
    forward = inspect.signature(MultiHeadAttention.forward)
    assert list(forward.parameters)[1:] == ["x", "mask", "is_causal", "context", "return_weights"]


@pytest.mark.api_consistency
def test_mha_is_a_module_built_from_linear_layers(rng):
    mha = MultiHeadAttention(8, 2, seed=0)
    assert all(isinstance(layer, Linear) for layer in (mha.query, mha.key, mha.value, mha.out))
    x = Tensor(rng.standard_normal((1, 3, 8)))
    assert np.array_equal(mha(x).data, mha.forward(x).data)   # call == forward
    assert repr(mha) == "MultiHeadAttention(embed_dim=8, num_heads=2, bias=True, dropout=0.0)"
    assert mha.eval() is mha and not mha.attn_dropout.training
