"""Core behaviour of the tokenizers: vocabularies, ids, merges, round trips, save/load."""
import inspect
from collections import Counter

import numpy as np
import pytest

from tinytorch.text.tokenization import (
    SPECIAL_TOKENS,
    SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    learn_merges,
    merge_pair,
    split_special,
)

UNICODE_SAMPLES = [
    "naïve café, déjà vu",                      # Latin-1 letters (2 UTF-8 bytes)
    "e\u0301 a\u0308 n\u0303\u0323",            # combining marks after base letters
    "😀 👩‍👩‍👧 🇫🇷 👍🏽",                              # 4-byte emoji, ZWJ sequence, flag, skin tone
    "漢字かなカナ 한국어 中文",                    # CJK, kana, Hangul
    "مرحبا بالعالم שלום",                        # right-to-left scripts
    "नमस्ते ¹²³ ½ ⅓ ٣",                           # Devanagari, non-ASCII digits and numbers
    "\x00\x01\x7f\t\r\n\x0b\x0c\u2028\u00a0",   # control characters and odd whitespace
    "\uffff\U0010ffff\U0001d11e_x__y",          # noncharacters, last code point, underscores
]


def byte_id(char):
    """The BPE id of a one-byte character: bytes start at id 3."""
    return 3 + ord(char)


# ---- special tokens ------------------------------------------------------------------

def test_special_tokens_have_fixed_ids_shared_by_both_tokenizers():
    assert SPECIAL_TOKENS == {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    for tok in (CharTokenizer().train("abc"), BPETokenizer()):
        assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
        assert tok.encode("<pad><bos><eos>") == [0, 1, 2]
        assert tok.decode([1, 0, 2]) == "<bos><pad><eos>"


def test_split_special_cuts_text_at_special_tokens_only():
    assert split_special("<bos>ab<eos><eos>c") == [
        ("<bos>", 1), ("ab", None), ("<eos>", 2), ("<eos>", 2), ("c", None)]
    assert split_special("<bo s><unk>") == [("<bo s><unk>", None)]
    assert split_special("") == []


def test_special_tokens_are_never_split_by_bpe():
    tok = BPETokenizer().train("<bos>hello<eos> " * 50, vocab_size=300)
    ids = tok.encode("<bos>hello<eos>")
    assert ids[0] == 1 and ids[-1] == 2
    assert 1 not in ids[1:-1] and 2 not in ids[1:-1]
    # the training text's special tokens were not learned as characters: no merged token
    # holds a '<' byte
    assert all(b"<" not in tok.vocab[259 + i] for i in range(len(tok.merges)))


# ---- CharTokenizer -------------------------------------------------------------------

def test_char_vocabulary_is_sorted_and_starts_after_the_reserved_ids():
    tok = CharTokenizer().train("hello world")
    assert tok.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert tok.unk_id == 3 and tok.vocab_size == 4 + 8
    assert tok.encode("hello") == [7, 6, 8, 8, 9]       # h=7 e=6 l=8 o=9
    assert tok.decode([7, 6, 8, 8, 9, 4, 11, 9, 10, 8, 5]) == "hello world"


def test_char_vocabulary_does_not_depend_on_order_of_the_text():
    assert CharTokenizer().train("cab").chars == CharTokenizer().train("bca").chars \
        == ["a", "b", "c"]
    assert CharTokenizer("cba").encode("abc") == [4, 5, 6]


def test_char_unknown_characters_encode_to_unk_and_decode_to_replacement():
    tok = CharTokenizer().train("hello")
    ids = tok.encode("help!")
    assert ids == [tok.encode("h")[0], tok.encode("e")[0], tok.encode("l")[0], 3, 3]
    assert tok.decode(ids) == "hel\ufffd\ufffd"
    assert tok.unk_text == "\ufffd"


def test_char_unk_is_not_a_text_level_special_token():
    tok = CharTokenizer().train("<unk>")
    ids = tok.encode("<unk>")
    assert len(ids) == 5 and tok.unk_id not in ids
    assert tok.decode(ids) == "<unk>"


def test_char_vocab_size_keeps_the_most_frequent_characters():
    tok = CharTokenizer().train("aaaabbbccd", vocab_size=4 + 2)
    assert tok.chars == ["a", "b"]
    assert tok.encode("abcd") == [4, 5, 3, 3]
    tie = CharTokenizer().train("zzyyx", vocab_size=4 + 1)
    assert tie.chars == ["y"]                           # y and z tie: the smaller character wins


def test_char_training_ignores_special_tokens_in_the_corpus():
    tok = CharTokenizer().train("<bos>ab<eos>")
    assert tok.chars == ["a", "b"]


# ---- BPE: merging and training -------------------------------------------------------

def test_merge_pair_replaces_non_overlapping_occurrences_left_to_right():
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([1, 2, 3], (3, 1), 9) == [1, 2, 3]
    assert merge_pair([], (1, 2), 9) == []


def test_bpe_first_merges_on_the_classic_example():
    # "aaabdaaabac": (a,a) occurs 4 times (overlaps count) -> Z; then (a,b) and (Z,a)
    # both occur twice and the smaller pair of ids, (a,b) = (100, 101), wins -> Y;
    # then (Z,Y) twice -> "aaab".
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=262)
    a, b = byte_id("a"), byte_id("b")
    assert tok.merges == [(a, a), (a, b), (259, 260)]
    assert [tok.vocab[i] for i in (259, 260, 261)] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [261, byte_id("d"), 261, a, byte_id("c")]
    assert tok.vocab_size == 262


def test_bpe_ties_go_to_the_smallest_pair():
    tok = BPETokenizer().train("abcd", vocab_size=262)     # every pair occurs once
    a, b, c, d = (byte_id(x) for x in "abcd")
    assert tok.merges == [(a, b), (c, d), (259, 260)]


def test_bpe_never_merges_across_chunks_and_stops_when_pairs_run_out():
    assert SPLIT_PATTERN.findall("a a a a") == ["a", " a", " a", " a"]
    tok = BPETokenizer().train("a a a a", vocab_size=400)
    assert tok.merges == [(byte_id(" "), byte_id("a"))]     # the only pair inside a chunk
    assert tok.vocab_size == 260


def test_split_pattern_chunks_words_numbers_punctuation_and_spaces():
    assert SPLIT_PATTERN.findall("def f(x_1):\n    return 42  it's") == [
        "def", " f", "(", "x", "_", "1", "):", "\n   ", " return", " 42", " ", " it", "'s"]


def naive_merges(words, counts, n_merges, first_id):
    """Reference BPE written the slow, obvious way: recount every pair at every step."""
    words = [list(w) for w in words]
    merges = []
    for step in range(n_merges):
        pairs = Counter()
        for word, count in zip(words, counts):
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        words = [merge_pair(w, best, first_id + step) for w in words]
    return merges


def test_incremental_training_learns_the_same_merges_as_recounting(corpus):
    chunks = Counter(SPLIT_PATTERN.findall(corpus[:20_000]))
    words = [[3 + b for b in chunk.encode("utf-8")] for chunk in chunks]
    counts = list(chunks.values())
    fast = learn_merges(words, counts, 150, 259)
    assert len(fast) == 150
    assert fast == naive_merges(words, counts, 150, 259)


def test_bpe_merged_tokens_are_the_concatenation_of_their_parts(corpus_bpe):
    for i, (left, right) in enumerate(corpus_bpe.merges):
        assert corpus_bpe.vocab[259 + i] == corpus_bpe.vocab[left] + corpus_bpe.vocab[right]
        assert left < 259 + i and right < 259 + i       # built only from earlier tokens
    assert corpus_bpe.vocab_size == 759 == len(corpus_bpe.vocab) + 3


def test_bpe_learns_common_english_and_python_pieces(corpus_bpe):
    learned = {corpus_bpe.vocab[259 + i] for i in range(len(corpus_bpe.merges))}
    for piece in (b" the", b" of", b" and", b"tion", b"ing", b"    ", b"__"):
        assert piece in learned
    assert len(corpus_bpe.encode(" the")) == 1


def test_bpe_training_is_deterministic(corpus):
    first = BPETokenizer().train(corpus[:30_000], vocab_size=359)
    second = BPETokenizer().train(corpus[:30_000], vocab_size=359)
    assert first.merges == second.merges and len(first.merges) == 100


# ---- BPE: round trips --------------------------------------------------------------

@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_bpe_round_trips_unicode_it_never_saw(corpus_bpe, text):
    ids = corpus_bpe.encode(text)
    assert corpus_bpe.decode(ids) == text
    assert all(isinstance(i, int) and 0 <= i < corpus_bpe.vocab_size for i in ids)


def test_bpe_round_trips_random_code_points_from_every_plane(corpus_bpe, rng):
    points = rng.integers(0, 0x110000, size=3000)
    points = points[(points < 0xD800) | (points > 0xDFFF)]   # lone surrogates are not text
    text = "".join(map(chr, points))
    assert corpus_bpe.decode(corpus_bpe.encode(text)) == text


def test_untrained_bpe_is_plain_utf8_bytes():
    tok = BPETokenizer()
    assert tok.vocab_size == 259
    assert tok.encode("é😀") == [3 + b for b in "é😀".encode()]
    assert tok.encode("é😀") == [3 + 0xC3, 3 + 0xA9, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80]


def test_bpe_decoding_half_a_character_gives_the_replacement_character():
    tok = BPETokenizer()
    ids = tok.encode("😀")
    assert tok.decode(ids[:2]) == "\ufffd"
    assert tok.decode(ids) == "😀"


def test_char_round_trip_on_known_characters_with_specials(corpus):
    tok = CharTokenizer().train(corpus)
    text = "<bos>" + corpus[:2000] + "<eos><pad><pad>"
    assert tok.decode(tok.encode(text)) == text


# ---- save and load ------------------------------------------------------------------

def test_bpe_save_load_gives_identical_encodings(corpus_bpe, corpus_split, tmp_path):
    path = tmp_path / "bpe.json"
    corpus_bpe.save(path)
    loaded = BPETokenizer.load(path)
    held_out = corpus_split[1][:20_000]
    assert loaded.merges == corpus_bpe.merges
    assert loaded.vocab == corpus_bpe.vocab
    assert loaded.encode(held_out) == corpus_bpe.encode(held_out)
    assert loaded.encode(UNICODE_SAMPLES[2]) == corpus_bpe.encode(UNICODE_SAMPLES[2])


def test_char_save_load_keeps_the_vocabulary(tmp_path):
    tok = CharTokenizer().train("zebra 😀 é")
    tok.save(tmp_path / "chars.json")
    loaded = CharTokenizer.load(tmp_path / "chars.json")
    assert loaded.chars == tok.chars and loaded.vocab_size == tok.vocab_size
    assert loaded.encode("a zebra?") == tok.encode("a zebra?")


# ---- the two tokenizers share one interface ---------------------------------------------

@pytest.mark.api_consistency
def test_both_tokenizers_share_the_tokenizer_interface():
    shared = ["encode", "decode", "train", "save", "load", "vocab_size",
              "special_tokens", "pad_id", "bos_id", "eos_id"]
    for cls in (CharTokenizer, BPETokenizer):
        assert issubclass(cls, Tokenizer)
        for name in shared:
            assert hasattr(cls, name), f"{cls.__name__} lacks {name}"
        assert inspect.signature(cls.encode) == inspect.signature(Tokenizer.encode)
        assert inspect.signature(cls.decode) == inspect.signature(Tokenizer.decode)
        assert list(inspect.signature(cls.train).parameters)[:3] == ["self", "corpus", "vocab_size"]


@pytest.mark.api_consistency
def test_both_tokenizers_behave_alike_on_the_same_text():
    text = "<bos>the cat sat on the mat<eos>"
    for tok in (CharTokenizer(), BPETokenizer()):
        trained = tok.train(text * 3, vocab_size=280)
        assert trained is tok                                   # train returns self
        ids = tok.encode(text)
        assert type(ids) is list and all(type(i) is int for i in ids)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids) == text
        assert tok.decode(np.array(ids)) == text
        assert repr(tok) == f"{type(tok).__name__}(vocab_size={tok.vocab_size})"
