"""Real text: train on the first 80% of the Python Language Reference, measure on the last 20%.

Measured on data/corpus/python_reference.txt (deterministic: no randomness involved):
- held-out UTF-8 bytes per token (first 40,000 held-out characters), by vocab_size:
  259 (bytes only) 1.000, 359 (100 merges) 1.744, 759 (500 merges) 2.664, 1259 (1000) 3.159;
- 500 merges on the whole held-out 20% (93,010 characters): 35,295 tokens, 0.379 tokens
  per character, exact round trip; CharTokenizer: 107 ids, no unknown character."""
import pytest

from tinytorch.text.tokenization import BPETokenizer, CharTokenizer, pad_batch


def bytes_per_token(tokenizer, text):
    return len(text.encode("utf-8")) / len(tokenizer.encode(text))


def test_bpe_round_trips_the_held_out_text_exactly(corpus_bpe, corpus_split):
    held_out = corpus_split[1]
    ids = corpus_bpe.encode(held_out)
    assert corpus_bpe.decode(ids) == held_out
    tokens_per_char = len(ids) / len(held_out)
    assert 0.3 < tokens_per_char < 0.45                 # measured 0.379


def test_compression_grows_with_the_vocabulary(corpus_split):
    train, held_out = corpus_split
    held_out = held_out[:40_000]
    ratios = [bytes_per_token(BPETokenizer().train(train, vocab_size=size), held_out)
              for size in (259, 359, 759, 1259)]
    assert ratios[0] == 1.0                             # no merges: one token per byte
    assert all(a < b for a, b in zip(ratios, ratios[1:])), ratios
    assert ratios[2] > 2.3                              # 500 merges: measured 2.664
    assert ratios[3] > 2.9                              # 1000 merges: measured 3.159


def test_bpe_compresses_better_on_text_like_its_training_data(corpus_bpe, corpus_split):
    prose = corpus_split[1][:20_000]
    foreign = "Der schnelle braune Fuchs springt über den faulen Hund. " * 40
    assert bytes_per_token(corpus_bpe, prose) > bytes_per_token(corpus_bpe, foreign) > 1.0


def test_char_tokenizer_on_the_corpus(corpus_split):
    train, held_out = corpus_split
    tok = CharTokenizer().train(train)
    ids = tok.encode(held_out)
    assert len(ids) == len(held_out)                    # exactly one token per character
    unknown = sum(i == tok.unk_id for i in ids)
    assert unknown == 0                                 # the held-out part uses no new character
    assert tok.decode(ids) == held_out
    assert 90 < tok.vocab_size < 120                    # measured 107


def test_saved_corpus_tokenizer_encodes_held_out_text_identically(corpus_bpe, corpus_split,
                                                                 tmp_path):
    corpus_bpe.save(tmp_path / "python_bpe.json")
    loaded = BPETokenizer.load(tmp_path / "python_bpe.json")
    held_out = corpus_split[1]
    assert loaded.encode(held_out) == corpus_bpe.encode(held_out)


@pytest.mark.shape
def test_held_out_paragraphs_become_a_padded_batch(corpus_bpe, corpus_split):
    paragraphs = [p for p in corpus_split[1].split("\n\n") if p.strip()][:16]
    sequences = [[corpus_bpe.bos_id] + corpus_bpe.encode(p) + [corpus_bpe.eos_id]
                 for p in paragraphs]
    ids, mask = pad_batch(sequences, pad_id=corpus_bpe.pad_id)
    assert ids.shape == (16, max(len(s) for s in sequences))
    for row, row_mask, paragraph in zip(ids.data, mask.data, paragraphs):
        assert corpus_bpe.decode(row[row_mask][1:-1]) == paragraph
