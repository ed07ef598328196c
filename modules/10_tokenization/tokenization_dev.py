# %% [markdown]
# # Module 10: Tokenization
#
# A network computes with numbers, so text must become a sequence of integers
# (token ids) before a model can read it, and the model's output ids must become
# text again. A **tokenizer** is that two-way map:
#
# - `encode(text) -> list[int]` and `decode(ids) -> str`, with
#   `decode(encode(text)) == text`;
# - a fixed vocabulary of `vocab_size` ids, which fixes the size of the model's
#   embedding table (module 11) and of its output layer.
#
# We build two:
#
# | tokenizer | one token is | vocabulary | sequence length |
# |---|---|---|---|
# | `CharTokenizer` | one character | the training text's characters (~100) | one id per character |
# | `BPETokenizer` | a frequent byte run ("the", " def") | 256 bytes + merges | a few bytes per id |
#
# Characters are the simplest choice, but sequences are long and a character
# never seen in training has no id. **Byte-pair encoding** (BPE, used by GPT-2
# and most language models since) starts from the 256 possible bytes, so *every*
# text can be encoded, and then learns to glue frequent neighbours into single
# tokens, so common words cost one id instead of five.
#
# Both tokenizers share three **special tokens** with the same ids, which never
# come from ordinary characters: `<pad>` (0) fills short sequences in a batch,
# `<bos>` (1) and `<eos>` (2) mark where a text begins and ends. Written in a
# text, they are recognised as one token each, never split.

# %%
#| default_exp text.tokenization

# %%
#| export
"""Tokenization: CharTokenizer (one id per character, <unk> for unseen ones) and
BPETokenizer (byte-level byte-pair encoding: exact round trip on any text), sharing the
special tokens <pad>=0, <bos>=1, <eos>=2; pad_batch turns id lists into (B, T) Tensors."""
import heapq
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## What both tokenizers share
#
# The base class `Tokenizer` holds everything that does not depend on what a token
# is, so the two tokenizers cannot drift apart:
#
# - **Special tokens.** `encode` first cuts the text at every `<pad>`, `<bos>` or
#   `<eos>` and gives each its fixed id; only the pieces in between go to the
#   subclass's `_encode_piece`. `decode` does the reverse: runs of ordinary ids go
#   to `_decode_run`, special ids become their text.
# - **Checking ids.** `decode` accepts a list, a numpy array or a 1-D integer
#   Tensor, and names the first id outside `[0, vocab_size)`.
# - **Saving.** `save(path)` writes JSON: the tokenizer's name and what the
#   subclass returns from `_state()`. `Class.load(path)` reads it back through
#   `_from_state`, refusing a file saved by the other tokenizer.
#
# A subclass provides `train`, `vocab_size`, `_encode_piece`, `_decode_run`,
# `_state` and `_from_state`.

# %%
#| export
SPECIAL_TOKENS = {"<pad>": 0, "<bos>": 1, "<eos>": 2}
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")


def split_special(text):
    """[(piece, special_id or None)]: the text cut at every special token, in order."""
    parts = _SPECIAL_SPLIT.split(text)   # ordinary, special, ordinary, special, ...
    return [(part, SPECIAL_TOKENS[part] if i % 2 else None)
            for i, part in enumerate(parts) if part]


def _id_array(ids, what):
    """A 1-D int64 numpy array from a list, an array or a Tensor of token ids."""
    array = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what}: token ids must be integers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence of token ids, got shape {array.shape}")
    return array.astype(np.int64)


class Tokenizer:
    """Base class: special tokens, id checks, encode/decode around them, save/load."""

    special_tokens = SPECIAL_TOKENS
    pad_id, bos_id, eos_id = PAD_ID, BOS_ID, EOS_ID

    def encode(self, text):
        """The token ids of `text` (a str); special tokens in it become their ids."""
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.encode expects a str, "
                            f"got {type(text).__name__}")
        ids = []
        for piece, special_id in split_special(text):
            ids.extend([special_id] if special_id is not None else self._encode_piece(piece))
        return ids

    def decode(self, ids):
        """The text of a sequence of token ids (list, numpy array or 1-D int Tensor)."""
        ids = _id_array(ids, f"{type(self).__name__}.decode")
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            raise ValueError(f"{type(self).__name__}.decode: id {ids[bad][0]} is outside the "
                             f"vocabulary [0, {self.vocab_size})")
        special_text = {i: token for token, i in self.special_tokens.items()}
        pieces, run = [], []
        for i in ids.tolist():
            if i in special_text:
                pieces.append(self._decode_run(run))
                pieces.append(special_text[i])
                run = []
            else:
                run.append(i)
        pieces.append(self._decode_run(run))
        return "".join(pieces)

    def save(self, path):
        """Write this tokenizer to `path` as JSON; `load(path)` gives it back."""
        state = {"tokenizer": type(self).__name__, "special_tokens": self.special_tokens,
                 **self._state()}
        Path(path).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path):
        """The tokenizer `save(path)` wrote: it encodes every text exactly as before."""
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("tokenizer") != cls.__name__:
            raise ValueError(f"{path} holds a {state.get('tokenizer')!r}, not a {cls.__name__}")
        if state.get("special_tokens") != cls.special_tokens:
            raise ValueError(f"{path} was saved with special tokens {state.get('special_tokens')}, "
                             f"expected {cls.special_tokens}")
        return cls._from_state(state)

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

# %% [markdown]
# ## CharTokenizer: one id per character
#
# Ids `0..2` are the special tokens, id `3` is `<unk>`, and the characters of the
# training text follow in sorted order (so the same text always gives the same
# ids). A character that was not in the training text encodes to `<unk>`, which
# decodes to `"\ufffd"`, the Unicode replacement character (the `?` in a diamond
# that text editors show for characters they cannot read). So the round trip is
# exact only for texts made of known characters.
#
# `<unk>` is not a text-level special token: the five characters `<unk>` in a text
# are encoded one by one like any others.
#
# `train(corpus, vocab_size=None)` keeps every character of the corpus; with a
# `vocab_size`, only the `vocab_size - 4` most frequent ones (ties broken by the
# character), and rarer characters become `<unk>`.

# %%
#| export
class CharTokenizer(Tokenizer):
    """One id per character: specials 0-2, <unk> 3, then the sorted characters."""

    unk_id = 3
    unk_text = "\ufffd"          # what <unk> decodes to: U+FFFD REPLACEMENT CHARACTER
    first_char_id = 4

    def __init__(self, chars=()):
        chars = list(chars)
        for char in chars:
            if not isinstance(char, str) or len(char) != 1:
                raise TypeError("CharTokenizer: the vocabulary holds single characters, "
                                f"got {char!r}")
        self.chars = sorted(set(chars))
        self._id_of = {c: self.first_char_id + i for i, c in enumerate(self.chars)}

    def train(self, corpus, vocab_size=None):
        """Take the vocabulary from `corpus` (special tokens in it are not characters)."""
        if not isinstance(corpus, str):
            raise TypeError(f"CharTokenizer.train expects a str, got {type(corpus).__name__}")
        counts = Counter()
        for piece, special_id in split_special(corpus):
            if special_id is None:
                counts.update(piece)
        chars = sorted(counts, key=lambda c: (-counts[c], c))       # most frequent first
        if vocab_size is not None:
            if vocab_size < self.first_char_id:
                raise ValueError(f"CharTokenizer: vocab_size must be at least {self.first_char_id} "
                                 f"(the special tokens and <unk>), got {vocab_size}")
            chars = chars[:vocab_size - self.first_char_id]
        self.__init__(chars)                                         # sorts them by character
        return self

    @property
    def vocab_size(self):
        return self.first_char_id + len(self.chars)

    def _encode_piece(self, text):
        return [self._id_of.get(char, self.unk_id) for char in text]

    def _decode_run(self, ids):
        first = self.first_char_id
        return "".join(self.chars[i - first] if i >= first else self.unk_text for i in ids)

    def _state(self):
        return {"chars": "".join(self.chars)}

    @classmethod
    def _from_state(cls, state):
        return cls(state["chars"])

# %% [markdown]
# ## Byte-level BPE: training
#
# **Bytes first.** UTF-8 writes every character as 1 to 4 bytes (`"a"` is one,
# `"é"` two, `"€"` three, `"😀"` four). Ids `3..258` are the 256 byte values, so any
# text, in any script, has an encoding before we learn anything.
#
# **Merges.** Training repeats one step: find the most frequent pair of adjacent
# tokens in the corpus, give it a new id (259, 260, ...) and replace every
# occurrence of the pair by that id. In `"aaabdaaabac"` the pair `(a, a)` occurs 4
# times (overlapping pairs count, as in the original algorithm), more than any
# other, so it is merged first into `Z`: `"ZabdZabac"`. Now `(Z, a)` and `(a, b)`
# both occur twice. When pairs are equally frequent we take the smallest pair of
# ids, so training is deterministic: `(a, b)` (ids 100, 101) comes before `(Z, a)`
# (259, 100), giving `Y`: `"ZYdZYac"`, and then `(Z, Y)`, which is `"aaab"`. Each
# step adds one token, until `vocab_size` is reached.
#
# **Words first.** Like GPT-2 we first cut the text into chunks (`SPLIT_PATTERN`:
# a word with its leading space, a number, a run of punctuation, whitespace) and
# never merge across chunks, so tokens are pieces of words such as `" the"` or
# `"ing"`, not `"e t"`. Training then works on the *distinct* chunks with their
# counts: `" the"` seen 3000 times is one entry, not 3000.
#
# **Counting incrementally.** Recounting every pair after every merge would be
# slow. We count once, remember which chunks contain each pair, and after a merge
# update only the chunks that contained it: their old pairs are subtracted and
# their new pairs added. A heap of `(-count, pair)` then gives the most frequent
# pair (ties: the smallest) without scanning all pairs; entries whose count has
# changed since they were pushed are skipped when they come up.

# %%
#| export
SPLIT_PATTERN = re.compile(
    r"'(?:[sdmt]|ll|ve|re)"     # English contractions: 's 't 'll ...
    r"| ?[^\W\d_]+"             # a word (letters of any script), with its leading space
    r"| ?\d+"                   # a number
    r"| ?(?:[^\s\w]|_)+"        # punctuation, symbols, underscores
    r"|\s+(?!\S)|\s+"           # whitespace (the last space goes with the next word)
)


def merge_pair(ids, pair, new_id):
    """`ids` with each non-overlapping occurrence of `pair`, left to right, replaced by new_id."""
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def learn_merges(words, counts, n_merges, first_id):
    """Greedy BPE on distinct `words` (lists of ids) seen `counts` times each: up to
    n_merges pairs, each the most frequent at its step (ties: the smallest pair)."""
    words = [list(word) for word in words]
    pair_counts = Counter()
    containing = defaultdict(set)                  # pair -> indices of words that hold it
    for w, (word, count) in enumerate(zip(words, counts)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += count
            containing[pair].add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while heap and len(merges) < n_merges:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts[pair] != -negative_count:
            continue                               # stale: the count changed after the push
        new_id = first_id + len(merges)
        merges.append(pair)
        changed = set()
        for w in containing.pop(pair):
            word, count = words[w], counts[w]
            old_pairs = list(zip(word, word[1:]))
            word = words[w] = merge_pair(word, pair, new_id)
            new_pairs = list(zip(word, word[1:]))
            for p in old_pairs:
                pair_counts[p] -= count
            for p in new_pairs:
                pair_counts[p] += count
                containing[p].add(w)
            changed.update(old_pairs, new_pairs)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
    return merges

# %% [markdown]
# ## Byte-level BPE: encoding and decoding
#
# **Encoding** a chunk replays the training: start from its bytes, then, as long as
# some adjacent pair was learned, merge the pair that was learned *first* (the
# lowest new id), exactly as training would have. Chunks repeat a lot in real
# text, so each chunk's ids are cached.
#
# **Decoding** looks up each id's bytes (a merged token's bytes are its two parts'
# bytes joined) and decodes them as UTF-8. Ids produced by `encode` always give
# back the original text. An arbitrary id sequence may cut a character's bytes
# apart (a 4-byte emoji split over two tokens and only one of them decoded);
# such bytes decode to `"\ufffd"` instead of raising.
#
# A Python `str` can hold a lone surrogate (`"\ud800"`), which is not valid Unicode
# text and has no UTF-8 encoding: `encode` raises `UnicodeEncodeError` for it.

# %%
#| export
class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding: specials 0-2, bytes 3-258, then learned merges."""

    first_byte_id = 3
    first_merge_id = first_byte_id + 256

    def __init__(self, merges=()):
        self.merges = []                           # [(left_id, right_id)], in training order
        self.vocab = {self.first_byte_id + b: bytes([b]) for b in range(256)}   # id -> bytes
        self._merge_id = {}                        # (left_id, right_id) -> merged id
        self._cache = {}                           # chunk -> its ids
        for pair in merges:
            self._add_merge(tuple(pair))

    def _add_merge(self, pair):
        new_id = self.first_merge_id + len(self.merges)
        left, right = pair
        if not (left in self.vocab and right in self.vocab):
            raise ValueError(f"BPETokenizer: merge {pair} uses an id that is not yet a token")
        self.merges.append((left, right))
        self.vocab[new_id] = self.vocab[left] + self.vocab[right]
        self._merge_id[(left, right)] = new_id

    def train(self, corpus, vocab_size):
        """Learn vocab_size - 259 merges from `corpus` (fewer if it runs out of pairs)."""
        if not isinstance(corpus, str):
            raise TypeError(f"BPETokenizer.train expects a str, got {type(corpus).__name__}")
        if vocab_size < self.first_merge_id:
            raise ValueError(f"BPETokenizer: vocab_size must be at least {self.first_merge_id} "
                             f"(3 special tokens + 256 bytes), got {vocab_size}")
        chunks = Counter()
        for piece, special_id in split_special(corpus):
            if special_id is None:
                chunks.update(SPLIT_PATTERN.findall(piece))
        words = [self._byte_ids(chunk) for chunk in chunks]
        merges = learn_merges(words, list(chunks.values()), vocab_size - self.first_merge_id,
                              self.first_merge_id)
        self.__init__(merges)
        return self

    @property
    def vocab_size(self):
        return self.first_merge_id + len(self.merges)

    def _byte_ids(self, chunk):
        return [self.first_byte_id + b for b in chunk.encode("utf-8")]

    def _encode_piece(self, text):
        ids = []
        for chunk in SPLIT_PATTERN.findall(text):
            if chunk not in self._cache:
                self._cache[chunk] = self._encode_chunk(chunk)
            ids.extend(self._cache[chunk])
        return ids

    def _encode_chunk(self, chunk):
        ids = self._byte_ids(chunk)
        while len(ids) >= 2:
            pairs = [p for p in zip(ids, ids[1:]) if p in self._merge_id]
            if not pairs:
                break
            first_learned = min(pairs, key=self._merge_id.get)
            ids = merge_pair(ids, first_learned, self._merge_id[first_learned])
        return ids

    def _decode_run(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def _state(self):
        return {"merges": [list(pair) for pair in self.merges]}

    @classmethod
    def _from_state(cls, state):
        return cls(state["merges"])

# %% [markdown]
# ## From id lists to a batch Tensor
#
# Texts have different lengths, but a batch is one `(B, T)` array. `pad_batch`
# writes each sequence at the start of its row and fills the rest with `pad_id`.
# The **mask** (`True` at real tokens, `False` at padding) lets later modules
# ignore the padding: attention must not look at it, and a loss must not count it.
# `T` is the longest sequence, or `length` if you give one; a sequence longer than
# `length` is an error rather than silently cut.

# %%
#| export
def pad_batch(sequences, pad_id=PAD_ID, length=None):
    """(ids, mask): a (B, T) int64 Tensor of the sequences padded on the right with
    pad_id, and a (B, T) bool Tensor that is True at real tokens."""
    rows = [_id_array(s, "pad_batch") for s in sequences]
    longest = max((len(row) for row in rows), default=0)
    if length is None:
        length = longest
    elif longest > length:
        raise ValueError(f"pad_batch: a sequence has {longest} tokens, more than length={length}")
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=bool)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = True
    return Tensor(ids), Tensor(mask)

# %% [markdown]
# ## Trying it out

# %%
chars = CharTokenizer().train("hello world")
assert chars.chars == [" ", "d", "e", "h", "l", "o", "r", "w"] and chars.vocab_size == 12
assert chars.decode(chars.encode("<bos>hello<eos>")) == "<bos>hello<eos>"
assert chars.decode(chars.encode("hi")) == "h\ufffd"           # "i" was never seen

bpe = BPETokenizer().train("aaabdaaabac", vocab_size=262)
assert [(bpe.vocab[a], bpe.vocab[b]) for a, b in bpe.merges] == [
    (b"a", b"a"), (b"a", b"b"), (b"aa", b"ab")]
text = "naïve café 😀 文字 aaab"
assert bpe.decode(bpe.encode(text)) == text                      # bytes cover everything

ids, mask = pad_batch([bpe.encode("aaab"), bpe.encode("ab")])
print(ids, mask, sep="\n")
