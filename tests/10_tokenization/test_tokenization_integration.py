"""Tokenizers with module 01: token ids as integer Tensors, padded (B, T) batches, masks."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.text.tokenization import BPETokenizer, CharTokenizer, pad_batch


def test_encoded_ids_make_an_int_tensor_and_decode_from_it(corpus_bpe):
    text = "The assert statement"
    ids = Tensor(corpus_bpe.encode(text))
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert corpus_bpe.decode(ids) == text
    chars = CharTokenizer().train(text)
    assert chars.decode(Tensor(chars.encode(text))) == text


def test_token_id_tensor_indexes_a_table_like_an_embedding_would(corpus_bpe):
    # the next module looks ids up in a (vocab_size, dim) table: every id must be a row
    ids = Tensor(corpus_bpe.encode("lambda x: x ** 2  # 😀"))
    table = Tensor(np.arange(corpus_bpe.vocab_size * 2, dtype=np.float32).reshape(-1, 2))
    rows = table[ids]
    assert rows.shape == (len(ids), 2)
    assert np.array_equal(rows.data[:, 0], 2 * ids.data)


@pytest.mark.shape
def test_pad_batch_shapes_values_and_mask():
    ids, mask = pad_batch([[5, 6, 7], [8], []], pad_id=0)
    assert ids.shape == mask.shape == (3, 3)
    assert ids.dtype == np.int64 and mask.dtype == bool
    assert ids.data.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert mask.data.tolist() == [[True, True, True], [True, False, False], [False, False, False]]


@pytest.mark.shape
def test_pad_batch_to_a_fixed_length_and_with_another_pad_id():
    ids, mask = pad_batch([[1, 2], [3]], pad_id=-1, length=5)
    assert ids.shape == (2, 5)
    assert ids.data.tolist() == [[1, 2, -1, -1, -1], [3, -1, -1, -1, -1]]
    assert mask.data.sum(axis=1).tolist() == [2, 1]


@pytest.mark.shape
def test_pad_batch_of_encoded_texts(corpus_bpe):
    texts = ["def f(x):", "return", "A much longer sentence about the for statement."]
    sequences = [[corpus_bpe.bos_id] + corpus_bpe.encode(t) + [corpus_bpe.eos_id] for t in texts]
    ids, mask = pad_batch(sequences, pad_id=corpus_bpe.pad_id)
    lengths = [len(s) for s in sequences]
    assert ids.shape == (3, max(lengths))
    assert mask.data.sum(axis=1).tolist() == lengths
    for row, row_mask, text in zip(ids.data, mask.data, texts):
        assert corpus_bpe.decode(row[row_mask]) == f"<bos>{text}<eos>"
        assert np.all(row[~row_mask] == corpus_bpe.pad_id)


@pytest.mark.shape
def test_pad_batch_accepts_tensors_and_arrays_and_single_sequence():
    ids, mask = pad_batch([Tensor([4, 5]), np.array([6])])
    assert ids.data.tolist() == [[4, 5], [6, 0]]
    ids, mask = pad_batch([[9, 9, 9, 9]])
    assert ids.shape == (1, 4) and mask.data.all()


@pytest.mark.shape
def test_mask_as_tensor_counts_real_tokens():
    ids, mask = pad_batch([[1, 2, 3], [4]])
    # a float mask times per-token values zeroes the padding (how a loss would use it)
    values = Tensor(np.ones((2, 3), dtype=np.float32))
    masked = values * Tensor(mask.data, dtype=np.float32)
    assert masked.sum(axis=1).data.tolist() == [3.0, 1.0]


def test_bpe_and_char_ids_of_the_same_texts_batch_together():
    text = "aaabdaaabac"
    bpe = BPETokenizer().train(text, vocab_size=262)
    chars = CharTokenizer().train(text)
    ids, mask = pad_batch([bpe.encode(text), chars.encode(text)])
    assert ids.shape == (2, 11)
    assert mask.data.sum(axis=1).tolist() == [5, 11]      # BPE needs 5 tokens, chars 11
