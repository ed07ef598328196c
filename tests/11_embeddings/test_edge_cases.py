"""Edge cases: ids out of range or not integers, empty and scalar ids, sequences longer
than max_len, bad sizes, zero embeddings."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
)


@pytest.mark.parametrize("bad_id", [-1, -10, 5, 6, 1000])
def test_ids_out_of_range_are_an_index_error(bad_id):
    embed = Embedding(5, 2, seed=0)
    with pytest.raises(IndexError, match=rf"id {bad_id} is out of range: ids must be in \[0, 5\)"):
        embed([0, bad_id, 1])


def test_the_last_valid_id_works_and_negative_ids_do_not_wrap():
    embed = Embedding(5, 2, seed=0)
    assert np.array_equal(embed([4]).data, embed.weight.data[[4]])
    with pytest.raises(IndexError):
        embed(Tensor([-1]))                                # numpy would silently give row 4


@pytest.mark.parametrize("bad_ids", [[1.0, 2.0], np.array([0.5]), Tensor([1.0]), [True, False],
                                     np.array(["a"])])
def test_non_integer_ids_are_a_type_error(bad_ids):
    with pytest.raises(TypeError, match="ids must be integers"):
        Embedding(5, 2, seed=0)(bad_ids)


@pytest.mark.shape
def test_empty_ids_give_empty_outputs():
    embed = Embedding(5, 3, seed=0)
    assert embed([]).shape == (0, 3)
    assert embed(np.zeros((2, 0), dtype=np.int64)).shape == (2, 0, 3)
    assert Embedding(5, 3, padding_idx=0)(np.zeros((0,), dtype=np.int64)).shape == (0, 3)


@pytest.mark.shape
def test_a_single_id_gives_a_single_vector():
    embed = Embedding(5, 3, seed=0)
    assert embed(2).shape == (3,)
    assert embed(np.int64(2)).shape == (3,)
    assert Embedding(1, 1, seed=0)([0, 0]).shape == (2, 1)


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (-1, 3), (2.0, 3), (True, 3), (3, None)])
def test_sizes_must_be_positive_integers(args):
    with pytest.raises(ValueError, match="must be a positive integer"):
        Embedding(*args)


def test_padding_idx_must_be_an_integer_in_range():
    with pytest.raises(ValueError, match=r"padding_idx must be in \[-5, 5\)"):
        Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(5, 2, padding_idx=-6)
    with pytest.raises(TypeError, match="padding_idx must be an integer"):
        Embedding(5, 2, padding_idx=1.0)


def test_zero_embeddings_still_receive_gradients():
    embed = Embedding(4, 2, seed=0)
    embed.weight.data[:] = 0.0
    out = embed([1, 2, 1])
    assert np.all(out.data == 0.0)
    (out * Tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).sum().backward()
    assert embed.weight.grad.data.tolist() == [[0, 0], [6, 8], [3, 4], [0, 0]]


@pytest.mark.parametrize("make", [lambda: LearnedPositionalEmbedding(8, 4, seed=0),
                                  lambda: SinusoidalPositionalEncoding(8, 4)])
def test_positional_encodings_check_their_input(make):
    encoding = make()
    assert encoding(Tensor(np.zeros((2, 8, 4)))).shape == (2, 8, 4)   # exactly max_len is fine
    with pytest.raises(ValueError, match="sequence length 9 is longer than max_len=8"):
        encoding(Tensor(np.zeros((2, 9, 4))))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, 4\)"):
        encoding(Tensor(np.zeros((2, 3, 5))))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, 4\)"):
        encoding(Tensor(np.zeros(4)))
    with pytest.raises(TypeError, match="expects a Tensor"):
        encoding(np.zeros((3, 4)))
    assert encoding(Tensor(np.zeros((2, 0, 4)))).shape == (2, 0, 4)   # empty sequences


@pytest.mark.parametrize("cls", [LearnedPositionalEmbedding, SinusoidalPositionalEncoding])
def test_positional_sizes_must_be_positive_integers(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}: max_len must be a positive integer"):
        cls(0, 4)
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer"):
        cls(4, -2)
