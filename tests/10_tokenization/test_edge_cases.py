"""Edge cases: empty and huge texts, odd special-token spellings, bad inputs, bad files."""
import json

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.text.tokenization import BPETokenizer, CharTokenizer, pad_batch


@pytest.fixture
def tokenizers(corpus_bpe):
    return [CharTokenizer().train("abc <>"), corpus_bpe]


def test_empty_string_encodes_to_no_ids_and_back(tokenizers):
    for tok in tokenizers:
        assert tok.encode("") == []
        assert tok.decode([]) == ""
        assert tok.decode(np.array([], dtype=np.int64)) == ""


def test_training_on_empty_text_gives_only_the_reserved_ids():
    assert CharTokenizer().train("").vocab_size == 4
    bpe = BPETokenizer().train("", vocab_size=1000)
    assert bpe.vocab_size == 259 and bpe.merges == []
    assert bpe.decode(bpe.encode("still works: ü")) == "still works: ü"


def test_very_long_text_round_trips(corpus_bpe, corpus):
    text = corpus * 2                                   # ~930,000 characters
    ids = corpus_bpe.encode(text)
    assert corpus_bpe.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8")) / 2     # 500 merges at least halve it


def test_one_very_long_word_round_trips():
    tok = BPETokenizer().train("ab" * 200, vocab_size=270)
    word = "ab" * 50_000 + "c"
    ids = tok.encode(word)
    assert tok.decode(ids) == word
    assert len(ids) < len(word) / 100                   # runs of ab merge into long tokens


def test_special_token_look_alikes_are_plain_text(tokenizers):
    for text in ["<bos", "bos>", "< bos>", "<BOS>", "<<eos>>", "<bos><bos>", "<unk>", "<pad"]:
        for tok in tokenizers[1:]:                      # BPE: exact on any text
            assert tok.decode(tok.encode(text)) == text
    bpe = tokenizers[1]
    assert bpe.encode("<<eos>>") == bpe.encode("<") + [2] + bpe.encode(">")
    assert bpe.encode("<bos><bos>") == [1, 1]


def test_only_whitespace_and_newlines_round_trip(corpus_bpe):
    for text in [" ", "\n", "\r\n\r\n", "\t \t", " " * 1000, "\n" * 17]:
        assert corpus_bpe.decode(corpus_bpe.encode(text)) == text


def test_encode_rejects_non_strings(tokenizers):
    for tok in tokenizers:
        for bad in (b"bytes", None, 42, ["a"]):
            with pytest.raises(TypeError, match="expects a str"):
                tok.encode(bad)


def test_lone_surrogate_is_not_text(corpus_bpe):
    with pytest.raises(UnicodeEncodeError):
        corpus_bpe.encode("a\ud800b")


def test_decode_rejects_ids_outside_the_vocabulary(tokenizers):
    for tok in tokenizers:
        with pytest.raises(ValueError, match=r"id -1 is outside the vocabulary"):
            tok.decode([0, -1])
        with pytest.raises(ValueError, match=rf"id {tok.vocab_size} is outside"):
            tok.decode([tok.vocab_size])


def test_decode_rejects_non_integer_and_nested_ids(tokenizers):
    for tok in tokenizers:
        with pytest.raises(TypeError, match="integers"):
            tok.decode([1.0, 2.0])
        with pytest.raises(TypeError, match="integers"):
            tok.decode(Tensor([0.5]))
        with pytest.raises(ValueError, match="1-D"):
            tok.decode([[1, 2], [3, 4]])


def test_vocab_size_below_the_reserved_ids_is_an_error():
    with pytest.raises(ValueError, match="at least 259"):
        BPETokenizer().train("abc", vocab_size=258)
    with pytest.raises(ValueError, match="at least 4"):
        CharTokenizer().train("abc", vocab_size=3)


def test_char_vocabulary_must_be_single_characters():
    with pytest.raises(TypeError, match="single characters"):
        CharTokenizer(["ab"])


def test_load_refuses_the_other_tokenizers_file(tmp_path):
    path = tmp_path / "chars.json"
    CharTokenizer().train("abc").save(path)
    with pytest.raises(ValueError, match="holds a 'CharTokenizer', not a BPETokenizer"):
        BPETokenizer.load(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    state["special_tokens"] = {"<pad>": 5}
    path.write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ValueError, match="special tokens"):
        CharTokenizer.load(path)


def test_load_refuses_a_merge_of_unknown_tokens(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"tokenizer": "BPETokenizer",
                                "special_tokens": {"<pad>": 0, "<bos>": 1, "<eos>": 2},
                                "merges": [[3, 400]]}), encoding="utf-8")
    with pytest.raises(ValueError, match="not yet a token"):
        BPETokenizer.load(path)


def test_saved_file_is_readable_json_with_unicode(tmp_path):
    CharTokenizer().train("é😀").save(tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))["chars"] == "é😀"


@pytest.mark.shape
def test_pad_batch_of_nothing_and_of_empty_sequences():
    ids, mask = pad_batch([])
    assert ids.shape == mask.shape == (0, 0)
    ids, mask = pad_batch([[], []])
    assert ids.shape == (2, 0)
    ids, mask = pad_batch([], length=4)
    assert ids.shape == (0, 4)


def test_pad_batch_errors():
    with pytest.raises(ValueError, match="3 tokens, more than length=2"):
        pad_batch([[1, 2, 3]], length=2)
    with pytest.raises(TypeError, match="integers"):
        pad_batch([[1.5, 2.0]])
    with pytest.raises(ValueError, match="1-D"):
        pad_batch([[[1, 2]]])
