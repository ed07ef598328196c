"""Gradients of embedding lookups: scatter-added into the used rows, zero elsewhere."""
import numpy as np
import pytest

from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
)


def scatter_by_hand(ids, upstream, num_embeddings):
    """The expected table gradient, one position at a time."""
    grad = np.zeros((num_embeddings, upstream.shape[-1]))
    for position in np.ndindex(ids.shape):
        grad[ids[position]] += upstream[position]
    return grad


def test_repeated_ids_sum_their_gradients_and_unused_rows_get_zero():
    embed = Embedding(6, 2, seed=0)
    ids = np.array([[1, 1, 1], [2, 1, 0]])
    embed(ids).sum().backward()
    assert embed.weight.grad.data.tolist() == [[1, 1], [4, 4], [1, 1], [0, 0], [0, 0], [0, 0]]


def test_table_gradient_is_the_scatter_add_of_the_upstream_gradient(rng):
    embed = Embedding(20, 5, seed=0)
    ids = rng.integers(0, 8, size=(3, 7))                   # rows 8..19 never used
    upstream = rng.standard_normal((3, 7, 5)).astype(np.float32)
    embed(ids).backward(upstream)
    expected = scatter_by_hand(ids, upstream, 20)
    np.testing.assert_allclose(embed.weight.grad.data, expected, rtol=1e-6, atol=1e-6)
    unused = np.setdiff1d(np.arange(20), ids)
    assert np.all(embed.weight.grad.data[unused] == 0.0)


def test_gradcheck_with_respect_to_the_table(rng):
    embed = Embedding(7, 3, seed=0)
    ids = np.array([[0, 3, 3], [6, 0, 3]])
    scale = Tensor(rng.standard_normal((2, 3, 3)))
    error = gradcheck(lambda w: (embed(ids) * scale) ** 2, [embed.weight])
    assert error < 1e-6


def test_gradcheck_through_the_padding_path_when_no_pad_is_looked_up():
    # With padding_idx set, forward goes through the masked sum; gradcheck checks it on
    # ids without the pad. (With the pad looked up, its row's true derivative is non-zero
    # but deliberately not followed: see test_padding_row_gets_exactly_zero_gradient.)
    embed = Embedding(5, 2, padding_idx=1, seed=0)
    ids = np.array([0, 2, 4, 2])
    error = gradcheck(lambda w: embed(ids) ** 3, [embed.weight])
    assert error < 1e-6


def test_padding_row_gets_exactly_zero_gradient(rng):
    embed = Embedding(5, 3, padding_idx=0, seed=0)
    ids = np.array([[0, 2, 0], [2, 3, 0]])
    upstream = rng.standard_normal((2, 3, 3)).astype(np.float32)
    embed(ids).backward(upstream)
    grad = embed.weight.grad.data
    assert np.all(grad[0] == 0.0)
    expected = scatter_by_hand(ids, upstream, 5)
    expected[0] = 0.0
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("padding_idx", [None, 4])
def test_values_and_gradients_match_torch(torch, rng, padding_idx):
    embed = Embedding(12, 6, padding_idx=padding_idx, seed=0)
    ids = rng.integers(0, 12, size=(5, 8))
    ids[:, -2:] = 4                                         # repeated ids (and padding when set)
    upstream = rng.standard_normal((5, 8, 6)).astype(np.float32)
    out = embed(ids)
    out.backward(upstream)

    weight = torch.tensor(embed.weight.data.copy(), requires_grad=True)
    theirs = torch.nn.functional.embedding(torch.tensor(ids), weight, padding_idx=padding_idx)
    theirs.backward(torch.tensor(upstream))
    assert out.shape == tuple(theirs.shape) == (5, 8, 6)
    np.testing.assert_array_equal(out.data, theirs.detach().numpy())
    assert embed.weight.grad.shape == tuple(weight.grad.shape)
    np.testing.assert_allclose(embed.weight.grad.data, weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_gradients_accumulate_over_two_lookups_in_one_graph():
    embed = Embedding(4, 1, seed=0)
    first = embed([0, 1]) * 2                              # (2, 1): each row's gradient is 2
    second = embed([1, 1, 3]).sum()                        # a scalar, broadcast over 2 entries
    (first + second).sum().backward()
    # row 1: 2 from `first`, plus 2 uses in `second` with gradient 2 each
    assert embed.weight.grad.data.ravel().tolist() == [2, 2 + 2 * 2, 0, 2]


def test_loss_gradient_reaches_only_the_rows_that_were_looked_up(rng):
    embed, head = Embedding(10, 4, seed=0), Linear(4, 10, seed=1)
    ids = np.array([2, 5, 5, 7])
    targets = np.array([5, 7, 2, 2])
    loss = CrossEntropyLoss()(head(embed(ids)), targets)
    loss.backward()
    grad = embed.weight.grad.data
    used = np.zeros(10, dtype=bool)
    used[ids] = True
    assert np.all(grad[~used] == 0.0)
    assert np.all(np.abs(grad[used]).sum(axis=1) > 0)
    error = gradcheck(lambda *ps: CrossEntropyLoss()(head(embed(ids)), targets),
                      [embed.weight, head.weight, head.bias])
    assert error < 1e-6


def test_learned_positions_get_the_batch_sum_and_pass_the_gradient_to_x(rng):
    positions = LearnedPositionalEmbedding(6, 3, seed=0)
    x = Tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    upstream = rng.standard_normal((2, 4, 3)).astype(np.float32)
    positions(x).backward(upstream)
    np.testing.assert_array_equal(x.grad.data, upstream)
    np.testing.assert_allclose(positions.weight.grad.data[:4], upstream.sum(axis=0), rtol=1e-6)
    assert np.all(positions.weight.grad.data[4:] == 0.0)    # positions 4 and 5 were not used
    error = gradcheck(lambda x_, w: positions(x_) ** 2, [x, positions.weight])
    assert error < 1e-6


def test_sinusoidal_encoding_passes_the_gradient_through_unchanged(rng):
    encode = SinusoidalPositionalEncoding(10, 4)
    x = Tensor(rng.standard_normal((3, 5, 4)), requires_grad=True)
    upstream = rng.standard_normal((3, 5, 4)).astype(np.float32)
    encode(x).backward(upstream)
    np.testing.assert_array_equal(x.grad.data, upstream)
    assert encode.encoding.grad is None and not encode.encoding.requires_grad


def test_token_plus_position_gradcheck_end_to_end(rng):
    tokens = Embedding(9, 4, seed=0)
    positions = LearnedPositionalEmbedding(5, 4, seed=1)
    head = Linear(4, 9, seed=2)
    ids = np.array([[1, 4, 4, 8], [0, 1, 2, 3]])
    targets = np.array([4, 4, 8, 1, 1, 2, 3, 0])

    def loss(*ps):
        return CrossEntropyLoss()(head(positions(tokens(ids))).reshape(8, 9), targets)
    error = gradcheck(loss, [tokens.weight, positions.weight, head.weight])
    assert error < 1e-6
