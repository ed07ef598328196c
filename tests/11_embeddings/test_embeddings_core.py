"""Core behaviour: lookups, initialisation, padding_idx, and both positional encodings."""
import math

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)


def formula_table(max_len, dim):
    """The "Attention is all you need" table, one entry at a time, in float64."""
    table = np.zeros((max_len, dim))
    for pos in range(max_len):
        for i in range(dim):
            angle = pos / 10000 ** (2 * (i // 2) / dim)
            table[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return table


# ---- Embedding ----------------------------------------------------------------------

def test_lookup_returns_the_rows_of_the_table():
    embed = Embedding(5, 3, seed=0)
    embed.weight.data[:] = np.arange(15, dtype=np.float32).reshape(5, 3)
    out = embed(np.array([4, 0, 4]))
    assert out.data.tolist() == [[12, 13, 14], [0, 1, 2], [12, 13, 14]]
    assert out.dtype == np.float32


@pytest.mark.shape
@pytest.mark.parametrize("ids_shape", [(), (7,), (2, 3), (2, 3, 4), (1, 1)])
def test_output_shape_is_ids_shape_plus_dim(rng, ids_shape):
    embed = Embedding(10, 6, seed=0)
    ids = rng.integers(0, 10, size=ids_shape)
    out = embed(ids)
    assert out.shape == ids_shape + (6,)
    assert np.array_equal(out.data, embed.weight.data[ids])


@pytest.mark.shape
def test_batch_of_sequences_gives_b_t_dim(rng):
    ids = Tensor(rng.integers(0, 50, size=(4, 9)))
    out = Embedding(50, 16, seed=1)(ids)
    assert out.shape == (4, 9, 16)


def test_ids_may_be_a_tensor_a_list_an_array_or_an_int():
    embed = Embedding(6, 2, seed=0)
    expected = embed.weight.data[[3, 1]]
    for ids in (Tensor([3, 1]), [3, 1], (3, 1), np.array([3, 1], dtype=np.int32),
                np.array([3, 1], dtype=np.uint8)):
        assert np.array_equal(embed(ids).data, expected)
    assert np.array_equal(embed(5).data, embed.weight.data[5])


def test_initialisation_is_standard_normal_and_seeded():
    weight = Embedding(1000, 64, seed=0).weight
    assert weight.shape == (1000, 64) and weight.dtype == np.float32 and weight.requires_grad
    assert abs(weight.data.mean()) < 0.01
    assert abs(weight.data.std() - 1.0) < 0.02
    first, second = Embedding(20, 4, seed=3), Embedding(20, 4, seed=3)
    assert np.array_equal(first.weight.data, second.weight.data)
    assert not np.array_equal(Embedding(20, 4, seed=3).weight.data,
                              Embedding(20, 4, seed=4).weight.data)


def test_embedding_is_a_module_with_one_parameter():
    embed = Embedding(7, 3, padding_idx=0)
    assert embed.parameters() == [embed.weight]
    assert repr(embed) == "Embedding(7, 3, padding_idx=0)"
    assert repr(Embedding(7, 3)) == "Embedding(7, 3)"


def test_padding_row_starts_at_zero_and_is_returned_as_stored():
    embed = Embedding(5, 3, padding_idx=2, seed=0)
    assert np.array_equal(embed.weight.data[2], np.zeros(3))
    assert np.all(embed.weight.data[[0, 1, 3, 4]] != 0)
    embed.weight.data[2] = [7.0, -1.0, 0.5]               # a changed pad row is looked up as is
    out = embed([[2, 1], [0, 2]])
    assert np.array_equal(out.data, embed.weight.data[[[2, 1], [0, 2]]])


def test_negative_padding_idx_counts_from_the_end():
    assert Embedding(5, 3, padding_idx=-1).padding_idx == 4


def test_matches_torch_embedding_values(torch, rng):
    embed = Embedding(30, 8, padding_idx=3, seed=0)
    embed.weight.data[3] = rng.standard_normal(8)         # non-zero pad row: still looked up
    ids = rng.integers(0, 30, size=(4, 6))
    ids[0, :2] = 3
    ours = embed(ids).data
    theirs = torch.nn.functional.embedding(torch.tensor(ids), torch.tensor(embed.weight.data),
                                           padding_idx=3).numpy()
    assert ours.shape == theirs.shape == (4, 6, 8)
    assert np.array_equal(ours, theirs)


# ---- sinusoidal positions --------------------------------------------------------------

def test_position_zero_is_zero_one_alternating():
    assert sinusoidal_table(3, 8)[0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]


def test_hand_computed_values_for_dim_four():
    # dim 4: pair 0 turns at rate 1, pair 1 at 10000^(-2/4) = 0.01
    table = sinusoidal_table(3, 4)
    for pos in (1, 2):
        expected = [math.sin(pos), math.cos(pos), math.sin(pos / 100), math.cos(pos / 100)]
        assert np.allclose(table[pos], expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("max_len, dim", [(50, 16), (20, 5), (7, 1), (64, 128)])
def test_table_matches_the_formula(max_len, dim):
    table = sinusoidal_table(max_len, dim)
    assert table.shape == (max_len, dim) and table.dtype == np.float32
    np.testing.assert_allclose(table, formula_table(max_len, dim), rtol=0, atol=1e-7)


def test_a_shift_by_k_is_a_fixed_rotation_of_each_pair():
    table = sinusoidal_table(100, 8).astype(np.float64)
    k = 7
    for i in range(4):
        rate = 10000 ** (-2 * i / 8)
        c, s = math.cos(k * rate), math.sin(k * rate)
        sin_, cos_ = table[:-k, 2 * i], table[:-k, 2 * i + 1]
        np.testing.assert_allclose(table[k:, 2 * i], sin_ * c + cos_ * s, atol=1e-6)
        np.testing.assert_allclose(table[k:, 2 * i + 1], cos_ * c - sin_ * s, atol=1e-6)


@pytest.mark.shape
def test_sinusoidal_encoding_adds_the_first_t_rows(rng):
    encode = SinusoidalPositionalEncoding(max_len=32, embedding_dim=6)
    x = Tensor(rng.standard_normal((2, 10, 6)))
    out = encode(x)
    assert out.shape == (2, 10, 6)
    np.testing.assert_array_equal(out.data, x.data + sinusoidal_table(32, 6)[:10])
    assert encode.parameters() == []
    unbatched = encode(Tensor(np.zeros((4, 6), dtype=np.float32)))
    np.testing.assert_array_equal(unbatched.data, sinusoidal_table(32, 6)[:4])


# ---- learned positions --------------------------------------------------------------

@pytest.mark.shape
def test_learned_positions_add_one_row_per_position(rng):
    positions = LearnedPositionalEmbedding(max_len=12, embedding_dim=4, seed=0)
    x = Tensor(rng.standard_normal((3, 5, 4)))
    out = positions(x)
    assert out.shape == (3, 5, 4)
    np.testing.assert_array_equal(out.data, x.data + positions.weight.data[:5])
    assert positions.parameters() == [positions.weight]
    assert positions.weight.shape == (12, 4) and positions.max_len == 12


@pytest.mark.api_consistency
def test_both_positional_encodings_share_one_interface(rng):
    x = Tensor(rng.standard_normal((2, 8, 6)).astype(np.float32))
    for encoding in (LearnedPositionalEmbedding(16, 6, seed=0),
                     SinusoidalPositionalEncoding(16, 6)):
        assert (encoding.max_len, encoding.embedding_dim) == (16, 6)
        out = encoding(x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert np.array_equal(encoding(x[0]).data, out.data[0])   # batched == one at a time
        with pytest.raises(ValueError, match="longer than max_len=16"):
            encoding(Tensor(np.zeros((1, 17, 6))))


@pytest.mark.api_consistency
def test_layers_are_called_like_every_other_module():
    from tinytorch.core.layers import Module
    for layer in (Embedding(4, 2), LearnedPositionalEmbedding(4, 2),
                  SinusoidalPositionalEncoding(4, 2)):
        assert isinstance(layer, Module)
        assert layer.embedding_dim == 2
        layer.eval()
        assert not layer.training
