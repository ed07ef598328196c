"""Embeddings with the modules below them: tokenizers (10), Tensor (01), layers and
losses (03, 04) and autograd (05)."""
import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)
from tinytorch.text.tokenization import BPETokenizer, CharTokenizer, pad_batch


@pytest.mark.shape
def test_real_text_to_char_ids_to_vectors(corpus):
    tokenizer = CharTokenizer().train(corpus)
    text = corpus[:200]
    ids = Tensor(tokenizer.encode(text))
    embed = Embedding(tokenizer.vocab_size, 16, seed=0)
    vectors = embed(ids)
    assert vectors.shape == (200, 16)
    assert np.array_equal(vectors.data, embed.weight.data[ids.data])
    # the same character gives the same vector wherever it appears
    first_t = text.index("t")
    second_t = text.index("t", first_t + 1)
    assert np.array_equal(vectors.data[first_t], vectors.data[second_t])


@pytest.mark.shape
def test_padded_bpe_batch_to_embeddings_with_positions(corpus):
    tokenizer = BPETokenizer().train(corpus[:50_000], vocab_size=400)
    lines = ["The assert statement", "x = [1, 2, 3]", "for item in items: print(item)"]
    ids, mask = pad_batch([tokenizer.encode(line) for line in lines], pad_id=tokenizer.pad_id)
    B, T = ids.shape
    embed = Embedding(tokenizer.vocab_size, 8, padding_idx=tokenizer.pad_id, seed=0)
    tokens = embed(ids)
    assert tokens.shape == (B, T, 8)
    assert np.all(tokens.data[~mask.data] == 0.0)          # padded positions: the zero pad row
    out = SinusoidalPositionalEncoding(64, 8)(tokens)
    assert out.shape == (B, T, 8)
    added = out.data - tokens.data
    np.testing.assert_allclose(added, np.broadcast_to(sinusoidal_table(64, 8)[:T], (B, T, 8)),
                               rtol=0, atol=1e-6)


def test_bos_token_embedding_is_shared_by_both_tokenizers_ids():
    # <pad>, <bos>, <eos> have the same ids in both tokenizers, so one table row each
    embed = Embedding(300, 4, seed=0)
    char_ids = CharTokenizer().train("abc").encode("<bos>a")
    bpe_ids = BPETokenizer().encode("<bos>a")
    assert np.array_equal(embed(char_ids[:1]).data, embed(bpe_ids[:1]).data)


def test_language_model_step_updates_only_used_rows(corpus):
    tokenizer = CharTokenizer().train(corpus)
    text = corpus[1000:1033]
    ids = np.array(tokenizer.encode(text))
    x, y = ids[None, :-1], ids[1:]                          # (1, 32) inputs, next-char targets
    tokens = Embedding(tokenizer.vocab_size, 12, seed=0)
    positions = LearnedPositionalEmbedding(32, 12, seed=1)
    head = Linear(12, tokenizer.vocab_size, seed=2)
    logits = head(positions(tokens(x)))                     # (1, 32, V)
    loss = CrossEntropyLoss()(logits.reshape(32, tokenizer.vocab_size), y)
    assert abs(loss.item() - np.log(tokenizer.vocab_size)) < 1.0   # untrained: about log V
    loss.backward()
    grad_norms = np.abs(tokens.weight.grad.data).sum(axis=1)
    used = np.unique(x)
    assert np.all(grad_norms[used] > 0)
    assert np.all(np.delete(grad_norms, used) == 0.0)
    assert positions.weight.grad.shape == (32, 12)
    before = tokens.weight.data.copy()
    with no_grad():
        tokens.weight.data -= 0.1 * tokens.weight.grad.data
    changed = np.any(tokens.weight.data != before, axis=1)
    assert np.array_equal(np.flatnonzero(changed), used)


def test_embedding_inside_sequential_collects_parameters():
    model = Sequential(Embedding(10, 4, seed=0), Linear(4, 3, seed=1))
    assert len(model.parameters()) == 3
    assert model.parameters()[0] is model[0].weight
    out = model(np.array([[1, 2], [3, 4]]))
    assert out.shape == (2, 2, 3)


def test_no_grad_lookup_records_nothing():
    embed = Embedding(5, 2, padding_idx=0, seed=0)
    with no_grad():
        out = embed([0, 1, 2])
    assert not out.requires_grad and out.is_leaf
