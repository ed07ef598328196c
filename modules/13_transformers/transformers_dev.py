# %% [markdown]
# # Module 13: Transformers
#
# Module 12 built attention: every position gathers information from the positions
# it may see. A **transformer** stacks that with a per-position MLP, many times
# over, with two ingredients that make deep stacks trainable:
#
# - **residual connections**: each sublayer *adds* its output to a running
#   "residual stream" `x`, so the gradient has a direct path from the loss to the
#   first layer;
# - **layer normalisation**: each sublayer reads a normalised copy of the stream,
#   so activations keep a steady scale however deep the stack.
#
# We build GPT, the decoder-only transformer behind ChatGPT, following Karpathy's
# nanoGPT, in reading order: `GPTConfig`, `LayerNorm`, `MLP`, `TransformerBlock`,
# `GPT` (with `generate`). Trained on characters, it learns to write text one
# character at a time.

# %%
#| default_exp models.transformer

# %%
#| export
"""Transformer: GPTConfig, LayerNorm, MLP, TransformerBlock (pre-norm) and GPT, a
decoder-only language model with generate(), after Karpathy's nanoGPT."""
import math
from dataclasses import dataclass

import numpy as np

from tinytorch.core.activations import GELU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Module, make_rng
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor, check_int
from tinytorch.models.attention import MultiHeadAttention
from tinytorch.text.embeddings import Embedding, LearnedPositionalEmbedding

# %% [markdown]
# ## The configuration
#
# Every size of the model in one place. `block_size` is the longest context the
# model can read (it has one learned position vector per position); `n_embd` is
# the width `C` of the residual stream, split over `n_head` attention heads.

# %%
#| export
@dataclass
class GPTConfig:
    vocab_size: int = 65      # number of distinct tokens (characters, here)
    block_size: int = 32      # maximum context length T
    n_layer: int = 2          # transformer blocks
    n_head: int = 4           # attention heads per block
    n_embd: int = 64          # width C of the residual stream
    dropout: float = 0.0      # dropout probability while training
    seed: int | None = None   # seed of the weight initialisation (and dropout)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int("GPTConfig", name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd {self.n_embd} is not divisible by "
                             f"n_head {self.n_head}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout!r}")

# %% [markdown]
# ## Layer normalisation
#
# For each position, normalise its `C` features to mean 0 and variance 1, then
# rescale with a learned gain and shift with a learned bias (so the network can
# undo the normalisation where that helps):
#
# `y = (x - mean) / sqrt(var + eps) * weight + bias`, over the last axis.
#
# Unlike batch normalisation it never mixes examples or positions, so it behaves
# the same in training and evaluation, and it keeps the causal property: the
# output at position `t` depends only on the input at `t`. `eps` keeps a constant
# input (variance 0) finite: it comes out as `bias`. The variance is the biased
# one (divided by `C`), as in PyTorch. The input must be small enough that its
# square fits in its dtype (`|x| < 1e19` in float32).

# %%
#| export
class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis of size dim."""

    def __init__(self, dim, eps=1e-5):
        check_int("LayerNorm", "dim", dim)
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        self.dim, self.eps = int(dim), float(eps)
        self.weight = Tensor(np.ones(self.dim, dtype=np.float32), requires_grad=True)
        self.bias = Tensor(np.zeros(self.dim, dtype=np.float32), requires_grad=True)

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"LayerNorm expects a Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm({self.dim}) expects inputs whose last dimension is "
                             f"{self.dim}, got shape {x.shape}")
        centered = x - x.mean(axis=-1, keepdims=True)
        variance = (centered * centered).mean(axis=-1, keepdims=True)
        return centered / (variance + self.eps).sqrt() * self.weight + self.bias

    def __repr__(self):
        return f"LayerNorm({self.dim}, eps={self.eps})"

# %% [markdown]
# ## The MLP
#
# Attention moves information *between* positions; the MLP then thinks about it
# *at* each position: widen to `4 C`, bend with GELU, project back to `C`.

# %%
#| export
class MLP(Module):
    """Linear(C, 4C) -> GELU -> Linear(4C, C) -> dropout, applied at every position."""

    def __init__(self, n_embd, dropout=0.0, seed=None):
        rng = make_rng(seed)
        self.fc = Linear(n_embd, 4 * n_embd, seed=rng)
        self.gelu = GELU()
        self.proj = Linear(4 * n_embd, n_embd, seed=rng)
        self.dropout = Dropout(dropout, seed=rng)

    def forward(self, x):
        return self.dropout(self.proj(self.gelu(self.fc(x))))

# %% [markdown]
# ## The transformer block
#
# **Pre-norm** (GPT-2): normalise *before* each sublayer and add its output to the
# stream. The stream itself is never normalised, so a block that learns nothing
# useful can pass `x` through unchanged.
#
# `x = x + attn(ln1(x))`, then `x = x + mlp(ln2(x))`.
#
# GPT's blocks are causal (`is_causal=True`, the default); an encoder, which may
# look both ways, calls them with `is_causal=False`. An extra boolean `mask`
# (True = attend, module 12) can hide padding.

# %%
#| export
class TransformerBlock(Module):
    """Pre-norm block: x + attn(ln1(x)), then x + mlp(ln2(x)). (B, T, C) -> (B, T, C)."""

    def __init__(self, n_embd, n_head, dropout=0.0, seed=None):
        rng = make_rng(seed)
        self.ln1 = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, dropout=dropout, seed=rng)
        self.ln2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout=dropout, seed=rng)

    def forward(self, x, mask=None, is_causal=True):
        x = x + self.attn(self.ln1(x), mask=mask, is_causal=is_causal)   # positions talk
        x = x + self.mlp(self.ln2(x))                                      # each one thinks
        return x

# %% [markdown]
# ## GPT
#
# Token ids `idx (B, T)` go in; for every position, scores (logits) for the next
# token come out, `(B, T, vocab_size)`:
#
# 1. each token's vector (a row of the token table `wte`, module 11's `Embedding`)
#    plus its position's vector (a row of `wpe`, a `LearnedPositionalEmbedding`):
#    attention alone cannot tell positions apart;
# 2. `n_layer` causal transformer blocks;
# 3. a final LayerNorm and the LM head, a Linear from `C` to the vocabulary.
#
# With `targets (B, T)` (the input shifted left by one token), the loss is the
# cross-entropy of every position's prediction: one forward pass trains `B * T`
# next-token predictions at once, which causal masking makes honest.
#
# **Initialisation, in one place** (`_init_weights`, GPT-2's recipe): every weight
# matrix and table `N(0, 0.02)`, biases 0, LayerNorms weight 1 / bias 0. The two
# projections that write into the residual stream in each block (`attn.out`,
# `mlp.proj`) get `0.02 / sqrt(2 n_layer)`, so the stream's variance stays the
# same however many blocks add to it.
#
# **Generating text.** A trained GPT gives, at the last position, a distribution
# over the next token. Pick one, append it, repeat. The context is cropped to the
# last `block_size` tokens, the most the model can read.
#
# - `greedy=True` always takes the most likely token (deterministic, often
#   repetitive);
# - otherwise it samples from `softmax(logits / temperature)`: a temperature
#   below 1 sharpens the distribution, above 1 flattens it; `top_k` keeps only the
#   `k` most likely tokens. `seed` makes the sampling repeatable.
#
# Generation records no graph and runs in evaluation mode (no dropout); it puts
# the model's mode back afterwards.

# %%
#| export
def _submodules(module):
    """The module and every module inside it, depth first."""
    yield module
    for child in module.children():
        yield from _submodules(child)


def _token_ids(ids, config, name="idx", any_length=False):
    """ids as a (B, T) integer array, each in [0, vocab_size), T <= block_size."""
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"GPT: {name} must be a (B, T) array of integer token ids, got "
                         f"shape {ids.shape} and dtype {ids.dtype}")
    if ids.shape[1] > config.block_size and not any_length:
        raise ValueError(f"GPT: sequence length {ids.shape[1]} is longer than block_size "
                         f"{config.block_size}")
    if ids.size and (ids.min() < 0 or ids.max() >= config.vocab_size):
        raise ValueError(f"GPT: {name} must be token ids in [0, {config.vocab_size}), "
                         f"got values from {ids.min()} to {ids.max()}")
    return ids


def _check_generate_args(config, max_new_tokens, temperature, top_k):
    check_int("generate", "max_new_tokens", max_new_tokens, minimum=0)
    if not temperature > 0:
        raise ValueError(f"generate: temperature must be positive, got {temperature!r}")
    if top_k is not None and not 1 <= top_k <= config.vocab_size:
        raise ValueError(f"generate: top_k must be in [1, {config.vocab_size}], got {top_k!r}")


def _sample(logits, temperature, top_k, rng):
    """One token id per row of logits (B, vocab): softmax(logits / temperature) over the
    top_k best, sampled by inverting the cumulative distribution."""
    logits = logits / temperature
    keep = np.ones(logits.shape, dtype=bool)
    if top_k is not None:
        keep = logits >= np.sort(logits, axis=-1)[:, [-top_k]]   # the k-th best and above
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True)) * keep
    cdf = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
    drawn = (cdf < rng.random((len(logits), 1))).sum(axis=-1)
    return np.minimum(drawn, logits.shape[-1] - 1)             # guard against cdf[-1] < 1


# %%
#| export
class GPT(Module):
    """Decoder-only transformer language model: forward(idx, targets) -> (logits, loss)."""

    def __init__(self, config):
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT expects a GPTConfig, got {type(config).__name__}")
        self.config = config
        rng = make_rng(config.seed)
        C = config.n_embd
        self.wte = Embedding(config.vocab_size, C, seed=rng)                  # token -> vector
        self.wpe = LearnedPositionalEmbedding(config.block_size, C, seed=rng)  # + position
        self.drop = Dropout(config.dropout, seed=rng)
        self.blocks = [TransformerBlock(C, config.n_head, config.dropout, seed=rng)
                       for _ in range(config.n_layer)]
        self.ln_f = LayerNorm(C)
        self.lm_head = Linear(C, config.vocab_size, bias=False, seed=rng)
        self._init_weights(rng)

    def _init_weights(self, rng, std=0.02):
        def normal(shape, scale=std):
            return rng.normal(0.0, scale, shape).astype(np.float32)

        for table in (self.wte.weight, self.wpe.weight):
            table.data = normal(table.shape)
        for module in _submodules(self):
            if isinstance(module, Linear):
                module.weight.data = normal(module.weight.shape)
                if module.bias is not None:
                    module.bias.data = np.zeros_like(module.bias.data)
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for block in self.blocks:
            for layer in (block.attn.out, block.mlp.proj):
                layer.weight.data = normal(layer.weight.shape, residual_std)

    def forward(self, idx, targets=None):
        idx = _token_ids(idx, self.config)
        B, T = idx.shape
        x = self.drop(self.wpe(self.wte(idx)))                   # (B, T, C)
        for block in self.blocks:
            x = block(x)                                         # (B, T, C)
        logits = self.lm_head(self.ln_f(x))                      # (B, T, vocab_size)
        if targets is None:
            return logits, None
        targets = _token_ids(targets, self.config, "targets")
        if targets.shape != (B, T):
            raise ValueError(f"GPT: targets must have the shape of idx {(B, T)}, "
                             f"got {targets.shape}")
        loss = CrossEntropyLoss()(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, greedy=False,
                 seed=None):
        """Append max_new_tokens tokens to idx (B, T); returns the (B, T + new) ids."""
        _check_generate_args(self.config, max_new_tokens, temperature, top_k)
        idx = _token_ids(idx, self.config, any_length=True)
        if idx.shape[1] == 0:
            raise ValueError("generate: idx needs at least one token of context per row")
        rng, was_training = make_rng(seed), self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(max_new_tokens):
                    logits, _ = self(idx[:, -self.config.block_size:])  # crop the context
                    last = logits.data[:, -1, :].astype(np.float64)     # (B, vocab)
                    next_id = last.argmax(axis=-1) if greedy else \
                        _sample(last, temperature, top_k, rng)
                    idx = np.concatenate([idx, next_id[:, None].astype(idx.dtype)], axis=1)
        finally:
            self.train(was_training)
        return Tensor(idx)

    def num_parameters(self):
        """How many numbers training adjusts."""
        return sum(p.size for p in self.parameters())

# %% [markdown]
# ## Trying it out
#
# A tiny GPT on a tiny text, trained with plain gradient descent on every window of
# the text at once (module 06's optimizers train faster). After 300 steps the loss
# is about 0.16 and greedy generation from "hello" reproduces the text, give or
# take a letter.

# %%
text = "hello world, hello transformer. "
chars = sorted(set(text))


def encode(s):
    return np.array([[chars.index(c) for c in s]])


def decode(ids):
    return "".join(chars[i] for i in ids)


config = GPTConfig(vocab_size=len(chars), block_size=16, n_layer=2, n_head=2, n_embd=32, seed=0)
model = GPT(config)
print(f"{model.num_parameters()} parameters")

data = encode(text * 3)
starts = range(data.shape[1] - config.block_size - 1)
x = np.concatenate([data[:, i:i + config.block_size] for i in starts])          # (B, T)
y = np.concatenate([data[:, i + 1:i + config.block_size + 1] for i in starts])  # next chars
for step in range(300):
    logits, loss = model(x, y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.3 * p.grad.data
    if step % 100 == 0:
        print(step, round(loss.item(), 3))
print(step, round(loss.item(), 3))
print(repr(decode(model.generate(encode("hello"), max_new_tokens=27, greedy=True).data[0])))
