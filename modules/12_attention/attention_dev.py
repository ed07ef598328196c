# %% [markdown]
# # Module 12: Attention
#
# An MLP looks at one position at a time. Language needs each word to look at the
# others: in "the animal didn't cross the street because **it** was tired", the
# vector for "it" should borrow from "animal". **Attention** lets every position
# compute a weighted average of all the positions it may see, with weights it
# chooses itself from the content:
#
# 1. each position emits a **query** `q` ("what am I looking for?"), a **key** `k`
#    ("what do I contain?") and a **value** `v` ("what do I pass on?");
# 2. the weight of position `j` for position `i` is `softmax_j(q_i . k_j / sqrt(d))`;
# 3. the output at `i` is `sum_j weight_ij v_j`.
#
# This module builds that in three steps: `scaled_dot_product_attention` (the
# formula, with masks), the mask helpers (`causal_mask`, `padding_mask`,
# `length_mask`), and `MultiHeadAttention` (several attentions side by side, with
# learned projections), the layer inside every transformer (module 13).

# %%
#| default_exp models.attention

# %%
#| export
"""Attention: scaled dot-product attention with boolean masks (True = attend), mask
helpers (causal, padding, lengths) and MultiHeadAttention, written like nanoGPT."""
import math

import numpy as np

from tinytorch.core.activations import Softmax
from tinytorch.core.layers import Dropout, Linear, Module, make_rng
from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Masks: which keys each query may see
#
# A mask is a **boolean** array, `True` where a query may attend to a key, `False`
# where it may not: the convention of PyTorch's
# `scaled_dot_product_attention(attn_mask=...)` for boolean masks. Its shape must
# broadcast to the scores' shape `(..., T_q, T_k)` (one row per query, one column
# per key) without enlarging it.
#
# - **Causal** (`causal_mask(T)`): a language model predicting token `t + 1` must
#   not peek at it. Query `i` may see keys `j <= i`: the lower triangle.
# - **Padding** (`padding_mask(ids, pad_id)`, `length_mask(lengths, T)`): sequences
#   of different lengths are padded to one length to form a batch, and no query
#   should attend to the padding. These masks have shape `(B, 1, T)`: one row per
#   sequence that broadcasts over every query.

# %%
#| export
def causal_mask(T, T_k=None):
    """(T, T_k) boolean Tensor, True where key j <= query i (the lower triangle)."""
    T_k = T if T_k is None else T_k
    return Tensor(np.tril(np.ones((T, T_k), dtype=bool)))


def length_mask(lengths, T):
    """(B, 1, T) boolean Tensor, True at the first lengths[b] positions of row b."""
    lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise TypeError(f"length_mask: lengths must be a 1-D array of integers, got "
                        f"shape {lengths.shape} and dtype {lengths.dtype}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"length_mask: lengths must be in [0, {T}], got {lengths.tolist()}")
    return Tensor((np.arange(T) < lengths[:, None])[:, None, :])


def padding_mask(ids, pad_id):
    """(B, 1, T) boolean Tensor, True where the (B, T) token ids are not pad_id."""
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.ndim != 2:
        raise ValueError(f"padding_mask: ids must have shape (B, T), got {ids.shape}")
    return Tensor((ids != pad_id)[:, None, :])

# %% [markdown]
# ## A softmax that skips masked positions
#
# The usual trick sets masked scores to `-inf` before the softmax, so that
# `exp(-inf) = 0`. Two problems: a row in which *every* key is masked becomes
# `0 / 0 = NaN`, and numpy warns about arithmetic with infinities. Instead:
#
# 1. masked scores become exactly `MASKED_SCORE = -1e9` (`scores * keep + fill`),
#    far below any real score yet far from float32's limit (`-3.4e38`), so the
#    max-shift (as in module 02's stable `Softmax`, which we use when there is no
#    mask) cannot overflow;
# 2. after the `exp`, masked positions are multiplied by 0, so they get exactly zero
#    weight (and zero gradient), whatever the other scores are;
# 3. a row with nothing to attend to would divide 0 by 0; we add 1 to the
#    denominator of exactly those rows, so their weights are all **0** and the
#    attention output there is the zero vector (what PyTorch returns too).
#
# The shift subtracts the row's max, so scores of `1e4` are as safe as scores of 1.
# Real scores must stay above `MASKED_SCORE` (they do: `q . k / sqrt(d)` of
# activations is nowhere near `-1e9`).

# %%
#| export
MASKED_SCORE = -1e9   # what a masked score becomes before the softmax


def masked_softmax(scores, mask=None):
    """Softmax over the last axis, over the positions where `mask` is True only.
    Rows whose keys are all masked get weights 0 (not NaN)."""
    if mask is None:
        return Softmax(dim=-1)(scores)                            # module 02's stable softmax
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    keep = mask.astype(scores.dtype)                              # 1 = attend, 0 = masked
    filled = scores * keep + (1 - keep) * MASKED_SCORE
    shifted = filled - filled.max(axis=-1, keepdims=True).detach()
    exps = shifted.exp() * keep                                   # masked: exactly 0
    nothing_to_see = (keep.sum(axis=-1, keepdims=True) == 0)      # rows with every key masked
    return exps / (exps.sum(axis=-1, keepdims=True) + nothing_to_see)

# %% [markdown]
# ## Scaled dot-product attention
#
# For queries `q (..., T_q, d)`, keys `k (..., T_k, d)` and values `v (..., T_k, d_v)`:
#
# `attention(q, k, v) = softmax(q @ k^T / sqrt(d)) @ v`, of shape `(..., T_q, d_v)`.
#
# **Why divide by `sqrt(d)`?** If the entries of `q` and `k` have variance 1, the
# dot product of two `d`-vectors has variance `d`. For `d = 64` the scores would
# spread over +-20 or so, the softmax would put almost all weight on one key, and
# its gradient would nearly vanish. Dividing by `sqrt(d)` brings the variance back
# to 1.
#
# `attention_weights` returns the `(..., T_q, T_k)` matrix of weights (each row
# sums to 1, or is all 0 if every key is masked); `scaled_dot_product_attention`
# multiplies it with the values. `mask` (True = attend) and `is_causal` may be
# combined: a position is attended only if both allow it. Like PyTorch, the causal
# mask of a non-square `(T_q, T_k)` score matrix is aligned at the top left.
#
# The weight matrix has `T_q * T_k` entries per head: attention's memory (and
# time) grow with the **square** of the sequence length.

# %%
#| export
def _check_qkv(q, k, v=None):
    named = (("q", q), ("k", k)) + ((("v", v),) if v is not None else ())
    for name, t in named:
        if not isinstance(t, Tensor):
            raise TypeError(f"attention: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"attention: {name} must have shape (..., T, d), got {t.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention: queries and keys need the same size d, got "
                         f"q {q.shape} and k {k.shape}")
    if v is not None and k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: keys and values need the same length T_k, got "
                         f"k {k.shape} and v {v.shape}")


def _combined_mask(mask, is_causal, scores_shape):
    """The boolean numpy mask that applies (None if every key is visible)."""
    T_q, T_k = scores_shape[-2:]
    allowed = None
    if mask is not None:
        allowed = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if allowed.dtype != bool:
            raise TypeError(f"attention: mask must be boolean (True = attend), got dtype "
                            f"{allowed.dtype}")
        try:
            fits = np.broadcast_shapes(allowed.shape, scores_shape) == tuple(scores_shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"attention: mask of shape {allowed.shape} does not broadcast to "
                             f"the scores' shape {tuple(scores_shape)} = (..., T_q, T_k)")
    if is_causal:
        causal = causal_mask(T_q, T_k).data
        allowed = causal if allowed is None else allowed & causal
    return allowed


def attention_weights(q, k, mask=None, is_causal=False, scale=None):
    """softmax(q @ k^T * scale) over the keys; (..., T_q, T_k). scale defaults to 1/sqrt(d)."""
    _check_qkv(q, k)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale                    # (..., T_q, T_k)
    return masked_softmax(scores, _combined_mask(mask, is_causal, scores.shape))


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q @ k^T / sqrt(d)) @ v with a boolean mask (True = attend); (..., T_q, d_v).
    Queries whose keys are all masked get the zero vector."""
    _check_qkv(q, k, v)
    return attention_weights(q, k, mask, is_causal, scale) @ v

# %% [markdown]
# ## Multi-head attention
#
# One attention computes one weighted average per position: it can look for one
# kind of thing at a time. **Multi-head** attention runs `num_heads` of them side
# by side, each on its own slice of `head_dim = embed_dim / num_heads` channels,
# so one head can track the previous word while another finds the subject.
#
# Read `forward` top to bottom (B = batch, T = sequence length, C = embed_dim,
# H = heads, D = head_dim):
#
# 1. project `x (B, T, C)` to queries, keys and values, each `(B, T, C)`;
# 2. split the channels into heads: `(B, T, C) -> (B, T, H, D) -> (B, H, T, D)`;
# 3. attention in every head at once (the matmuls batch over `B` and `H`);
# 4. put the heads side by side again, `(B, H, T, D) -> (B, T, C)`, and mix them
#    with the output projection.
#
# **Cross-attention** (a decoder reading an encoder's output) takes the keys and
# values from another sequence: pass it as `context (B, S, C)`.
#
# Masks are `(T, S)`, `(B, T, S)` or `(B, 1, S)` (like `padding_mask`): the head
# axis is added here. A 4-D mask `(B, H, T, S)` is used as it is.
#
# Dropout, as in nanoGPT, drops attention weights and output values while
# training (`dropout=0` by default: nothing is dropped). `return_weights=True`
# also returns the `(B, H, T, S)` attention weights (before dropout), to see what
# each head looks at.

# %%
#| export
class MultiHeadAttention(Module):
    """num_heads attentions over slices of the channels, with q/k/v and output projections."""

    def __init__(self, embed_dim, num_heads, bias=True, dropout=0.0, seed=None):
        check_int("MultiHeadAttention", "embed_dim", embed_dim)
        check_int("MultiHeadAttention", "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by "
                             f"num_heads {num_heads} (each head gets embed_dim / num_heads "
                             f"channels)")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        rng = make_rng(seed)
        self.query = Linear(embed_dim, embed_dim, bias=bias, seed=rng)
        self.key = Linear(embed_dim, embed_dim, bias=bias, seed=rng)
        self.value = Linear(embed_dim, embed_dim, bias=bias, seed=rng)
        self.out = Linear(embed_dim, embed_dim, bias=bias, seed=rng)
        self.attn_dropout = Dropout(dropout, seed=rng)
        self.resid_dropout = Dropout(dropout, seed=rng)

    def forward(self, x, mask=None, is_causal=False, context=None, return_weights=False):
        self._check_input("x", x)
        context = x if context is None else context                 # self- or cross-attention
        self._check_input("context", context)
        B, T, C = x.shape
        q = self._split_heads(self.query(x))                        # (B, H, T, D)
        k = self._split_heads(self.key(context))                    # (B, H, S, D)
        v = self._split_heads(self.value(context))                  # (B, H, S, D)
        weights = attention_weights(q, k, self._per_head(mask), is_causal)   # (B, H, T, S)
        y = self.attn_dropout(weights) @ v                          # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)                      # heads side by side
        y = self.resid_dropout(self.out(y))
        return (y, weights) if return_weights else y

    def _split_heads(self, x):
        B, T, C = x.shape
        return x.reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    @staticmethod
    def _per_head(mask):
        """Insert the head axis into a (B, T, S) mask; other masks broadcast as they are."""
        if mask is None:
            return None
        mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        return mask[:, None] if mask.ndim == 3 else mask

    def _check_input(self, name, x):
        if not isinstance(x, Tensor):
            raise TypeError("MultiHeadAttention expects Tensors, "
                            f"got {type(x).__name__} for {name}")
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention(embed_dim={self.embed_dim}) expects {name} of "
                             f"shape (B, T, {self.embed_dim}), got {x.shape}")

    def __repr__(self):
        return (f"MultiHeadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"bias={self.out.bias is not None}, dropout={self.attn_dropout.p})")

# %% [markdown]
# ## Trying it out

# %%
rng = np.random.default_rng(0)
q, k, v = (Tensor(rng.standard_normal((2, 5, 8))) for _ in range(3))
out = scaled_dot_product_attention(q, k, v, is_causal=True)
assert out.shape == (2, 5, 8)
assert np.allclose(out.data[:, 0], v.data[:, 0], atol=1e-6)   # position 0 sees only itself

weights = attention_weights(q, k, mask=length_mask([5, 3], 5))
assert np.allclose(weights.data.sum(axis=-1), 1.0, atol=1e-6)
assert np.all(weights.data[1, :, 3:] == 0)                        # padding gets no weight

mha = MultiHeadAttention(embed_dim=16, num_heads=4, seed=0)
x = Tensor(rng.standard_normal((2, 5, 16)))
print(mha, mha(x, is_causal=True).shape, len(mha.parameters()), "parameter tensors")
