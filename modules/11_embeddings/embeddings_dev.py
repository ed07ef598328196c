# %% [markdown]
# # Module 11: Embeddings
#
# A tokenizer (module 10) turns text into ids like `[72, 101, 108]`. The numbers
# themselves mean nothing: id 101 is not "bigger" than id 72. An **embedding**
# gives each id its own learned vector, a row of a `(num_embeddings, dim)` table:
# looking up id 101 returns row 101. Training moves the rows so that tokens used
# alike end up with similar vectors.
#
# A model reading a sequence also needs to know *where* each token is, since
# `Embedding` returns the same vector for a token wherever it appears. A
# **positional encoding** adds a vector that depends on the position:
#
# | class | position vectors | parameters |
# |---|---|---|
# | `LearnedPositionalEmbedding` | one learned row per position (GPT-2) | `max_len * dim` |
# | `SinusoidalPositionalEncoding` | fixed sines and cosines ("Attention is all you need") | none |
#
# Both take token embeddings `x` of shape `(..., T, dim)` and return
# `x + positions[:T]`.

# %%
#| default_exp text.embeddings

# %%
#| export
"""Embeddings: Embedding (a learned lookup table, optional padding_idx),
LearnedPositionalEmbedding and SinusoidalPositionalEncoding (added to token embeddings)."""
import numpy as np

import tinytorch.core.autograd  # noqa: F401  (installs backward: the table's gradients)
from tinytorch.core.layers import Module, make_rng
from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Looking up rows, and the gradient of a lookup
#
# The forward pass is integer-array indexing: for ids of shape `(B, T)`,
# `weight[ids]` has shape `(B, T, dim)`. No new operation is needed: it is
# `Tensor.__getitem__` (module 01), and its backward rule (module 05) is the
# gradient we want. The gradient of the loss with respect to the table is zero
# except at the rows that were looked up, and a row used several times (the same
# token twice in a batch) receives the *sum* of the gradients of its uses. That is
# why the rule uses `np.add.at`: `grad[ids] += g` would keep only one of the
# repeated uses.
#
# Like PyTorch's `nn.Embedding`, the table starts as standard normal values, so
# each vector has entries of size about 1.
#
# Ids must be integers in `[0, num_embeddings)`. numpy would read a negative id
# as counting from the end and a float id as an error deep inside indexing, so we
# check first and say what was wrong.
#
# ### padding_idx
#
# Padded positions (module 10's `pad_batch`) carry no information, so their row
# should never be trained. With `padding_idx=p`, row `p` starts at zero and gets
# no gradient. We build that from existing operations: at padded positions the
# output comes from a *detached* copy of the table (same value, no graph), and
# everywhere else from the table itself. With a 0/1 mask `keep`,
# `out = rows * keep + frozen_rows * (1 - keep)`: the values are exactly the
# looked-up rows, and the gradient reaching row `p` is multiplied by 0.

# %%
#| export
def _check_ids(ids, num_embeddings, cls="Embedding"):
    """The ids as an integer numpy array, each in [0, num_embeddings), or a clear error."""
    array = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if array.dtype.kind not in "iu":
        if array.size == 0 and array.dtype.kind == "f":    # np.asarray([]) is float64
            return array.astype(np.int64)
        raise TypeError(f"{cls}: ids must be integers, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= num_embeddings):
        bad = array[(array < 0) | (array >= num_embeddings)][0]
        raise IndexError(f"{cls}: id {bad} is out of range: ids must be in [0, {num_embeddings})")
    return array


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table of learned vectors; ids (*shape) -> (*shape, dim)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, seed=None):
        self.num_embeddings = check_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = check_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"Embedding: padding_idx must be an integer or None, "
                                f"got {padding_idx!r}")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be in [-{self.num_embeddings}, "
                                 f"{self.num_embeddings}), got {padding_idx}")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        weight = make_rng(seed).standard_normal((self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.weight = Tensor(weight.astype(np.float32), requires_grad=True)

    def forward(self, ids):
        ids = _check_ids(ids, self.num_embeddings)
        rows = self.weight[ids]                              # (*ids.shape, dim)
        if self.padding_idx is None:
            return rows
        is_pad = (ids == self.padding_idx)[..., None]        # (*ids.shape, 1)
        frozen = self.weight.detach()[ids]                   # same values, no gradient
        return rows * ~is_pad + frozen * is_pad

    def __repr__(self):
        extra = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{extra})"

# %% [markdown]
# ## Learned positions
#
# The simplest positional encoding is another embedding table whose ids are the
# positions `0, 1, ..., T-1`. It is learned like any weight, but it knows nothing
# about positions it never saw, and it has exactly `max_len` rows, so longer
# sequences are an error.

# %%
#| export
def _sequence_length(cls, x, dim, max_len):
    """T of token embeddings x (..., T, dim), checked against dim and max_len."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{cls} expects a Tensor of token embeddings, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(f"{cls}: expected token embeddings of shape (..., T, {dim}), "
                         f"got {x.shape}")
    length = x.shape[-2]
    if length > max_len:
        raise ValueError(f"{cls}: sequence length {length} is longer than max_len={max_len}")
    return length


class LearnedPositionalEmbedding(Embedding):
    """x (..., T, dim) -> x + weight[:T]: one learned vector per position."""

    def __init__(self, max_len, embedding_dim, seed=None):
        self.max_len = check_int("LearnedPositionalEmbedding", "max_len", max_len)
        check_int("LearnedPositionalEmbedding", "embedding_dim", embedding_dim)
        super().__init__(max_len, embedding_dim, seed=seed)

    def forward(self, x):
        length = _sequence_length("LearnedPositionalEmbedding", x, self.embedding_dim, self.max_len)
        return x + super().forward(np.arange(length))        # (T, dim) broadcast over the batch

    def __repr__(self):
        return f"LearnedPositionalEmbedding({self.max_len}, {self.embedding_dim})"

# %% [markdown]
# ## Sinusoidal positions
#
# Vaswani et al. (2017) use fixed vectors instead. Dimensions come in pairs
# `(2i, 2i+1)`; pair `i` is a sine and a cosine of the position at its own
# frequency:
#
# `PE[pos, 2i] = sin(pos / 10000^(2i/dim))`,  `PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))`
#
# The first pair turns fastest (one radian per position), the last slowest
# (a wavelength of up to `10000 * 2 pi` positions), like the hands of a clock.
# Every value is in `[-1, 1]`, position 0 is `[0, 1, 0, 1, ...]`, and for each
# offset `k`, `PE[pos + k]` is a fixed rotation of `PE[pos]`, which makes relative
# positions easy to read. Nothing is learned, so the table is a constant, and
# there is no limit but the one we choose for the table. An odd `dim` ends with a
# lone sine.
#
# We compute in float64 and store float32: the angles reach `max_len` radians,
# and sines of large float32 angles lose digits.

# %%
#| export
def sinusoidal_table(max_len, dim, base=10000.0):
    """The (max_len, dim) float32 table: sin on even dims, cos on odd dims."""
    positions = np.arange(max_len, dtype=np.float64)[:, None]     # (max_len, 1)
    rates = base ** (-np.arange(0, dim, 2) / dim)                  # (ceil(dim/2),) one per pair
    angles = positions * rates                                     # (max_len, ceil(dim/2))
    table = np.empty((max_len, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :dim // 2])
    return table.astype(np.float32)


class SinusoidalPositionalEncoding(Module):
    """x (..., T, dim) -> x + encoding[:T], with the fixed sinusoidal table."""

    def __init__(self, max_len, embedding_dim, base=10000.0):
        self.max_len = check_int("SinusoidalPositionalEncoding", "max_len", max_len)
        self.embedding_dim = check_int("SinusoidalPositionalEncoding", "embedding_dim",
                                         embedding_dim)
        self.encoding = Tensor(sinusoidal_table(self.max_len, self.embedding_dim, base))

    def forward(self, x):
        length = _sequence_length("SinusoidalPositionalEncoding", x, self.embedding_dim,
                                  self.max_len)
        return x + self.encoding[:length]                    # a constant: no parameters

    def __repr__(self):
        return f"SinusoidalPositionalEncoding({self.max_len}, {self.embedding_dim})"

# %% [markdown]
# ## Trying it out

# %%
embed = Embedding(10, 4, seed=0)
ids = np.array([[1, 2, 1], [0, 1, 9]])                     # (B, T) = (2, 3)
out = embed(ids)
assert out.shape == (2, 3, 4)
assert np.array_equal(out.data[0, 0], embed.weight.data[1])

out.sum().backward()                                        # d(sum)/d(row) = uses of the row
uses = np.bincount(ids.ravel(), minlength=10)               # id 1 is used three times
assert np.array_equal(embed.weight.grad.data, np.repeat(uses[:, None], 4, axis=1))

table = sinusoidal_table(50, 6)
assert np.array_equal(table[0], [0, 1, 0, 1, 0, 1])
positions = SinusoidalPositionalEncoding(50, 4)(embed(ids))
print(positions.shape, embed, LearnedPositionalEmbedding(50, 4).parameters()[0].shape)
