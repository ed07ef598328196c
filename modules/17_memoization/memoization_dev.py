# %% [markdown]
# # Module 17: Memoization — the KV cache
#
# `GPT.generate` (module 13) writes one token at a time, and for every token it
# runs the whole model over the whole context again. At step `t` it recomputes the
# keys and values of the `t - 1` tokens it has already seen, although they have not
# changed: a causal model's key and value at position `i` depend only on the tokens
# at positions `<= i`. Generating `N` tokens this way costs `O(N^2)` token-passes
# through every Linear layer and `O(N^3)` attention work in total.
#
# **Memoization** means: compute a value once, store it, look it up afterwards. The
# **KV cache** stores, for every layer, the keys and values of the tokens seen so
# far. A generation step then feeds only the *new* token through the model:
#
# 1. its query, key and value come from the layer's own `query`/`key`/`value`
#    Linear layers, as before;
# 2. its key and value are written into the cache at the next position;
# 3. its query attends to every cached key (all earlier tokens, and itself).
#
# Each step now does `O(1)` token-passes through the Linear layers and `O(t)`
# attention work. The price is memory: two arrays `(B, heads, T, head_dim)` per
# layer, `2 * n_layer * B * n_embd * T` numbers in all, held for the whole
# generation.
#
# This module builds the cache around module 13's GPT without changing it: the
# cached forward pass calls the model's own embeddings, LayerNorms and Linear
# layers, so it always uses the current weights. `generate_cached` is a drop-in for
# `GPT.generate` and produces the very same tokens.

# %%
#| default_exp memoization

# %%
#| export
"""Memoization for generation: KVCache (each layer's keys and values, preallocated),
cached_forward (feeds only new tokens through a GPT, reusing its own layers) and
generate_cached (a drop-in for GPT.generate that produces the same tokens)."""
import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import make_rng
from tinytorch.core.tensor import Tensor, check_int
from tinytorch.models.attention import scaled_dot_product_attention

# The same argument checks and the same sampler as GPT.generate: both paths then
# validate alike and draw exactly the same random numbers.
from tinytorch.models.transformer import GPT, _check_generate_args, _sample, _token_ids

# %% [markdown]
# ## The cache
#
# For each of the `n_layer` layers, one key array and one value array of shape
# `(B, n_head, max_len, head_dim)`, allocated once (allocating a bigger array at
# every step and copying would cost `O(t)` per step all over again). `position` is
# the write position: how many tokens the cache holds. The layers of one forward
# pass all write their keys and values at the same positions, then `advance` moves
# the position on.
#
# Its memory is `2 * n_layer * B * n_head * max_len * head_dim * itemsize` bytes:
# linear in the number of tokens. For GPT-2 small (12 layers, 768 channels) in
# float32 that is 72 KiB per token, 72 MiB for a 1024-token context.

# %%
#| export
class KVCache:
    """Keys and values of up to max_len tokens for n_layer layers, each layer's stored
    as (B, n_head, max_len, head_dim) arrays; `position` tokens are filled."""

    def __init__(self, n_layer, batch_size, n_head, max_len, head_dim, dtype=np.float32):
        sizes = dict(n_layer=n_layer, batch_size=batch_size, n_head=n_head,
                     max_len=max_len, head_dim=head_dim)
        sizes = {name: check_int("KVCache", name, value) for name, value in sizes.items()}
        self.n_layer, self.max_len = sizes["n_layer"], sizes["max_len"]
        self.shape = (sizes["batch_size"], sizes["n_head"], self.max_len, sizes["head_dim"])
        self.keys = [np.zeros(self.shape, dtype) for _ in range(self.n_layer)]
        self.values = [np.zeros(self.shape, dtype) for _ in range(self.n_layer)]
        self.position = 0                                  # tokens held so far

    @classmethod
    def for_model(cls, model, batch_size, max_len=None):
        """A cache sized for `model` (a GPT); max_len defaults to its block_size."""
        config = model.config
        max_len = config.block_size if max_len is None else check_int("KVCache", "max_len", max_len)
        if max_len > config.block_size:
            raise ValueError(f"KVCache: max_len {max_len} is larger than the model's "
                             f"block_size {config.block_size}: it has no positions beyond")
        return cls(config.n_layer, batch_size, config.n_head, max_len,
                   config.n_embd // config.n_head, dtype=model.wte.weight.dtype)

    def write(self, layer, k, v):
        """Store one layer's keys and values (B, n_head, T_new, head_dim) at the write
        position; returns that layer's keys and values of all tokens so far, including
        the new ones: two (B, n_head, position + T_new, head_dim) views."""
        if not 0 <= layer < self.n_layer:
            raise IndexError(f"KVCache: layer {layer} is out of range [0, {self.n_layer})")
        B, H, _, D = self.shape
        for name, new in (("k", k), ("v", v)):
            if new.ndim != 4 or new.shape[:2] != (B, H) or new.shape[3] != D:
                raise ValueError(f"KVCache: {name} must have shape ({B}, {H}, T_new, {D}), "
                                 f"got {new.shape}")
        if k.shape != v.shape:
            raise ValueError(f"KVCache: k {k.shape} and v {v.shape} must have the same shape")
        end = self._end(k.shape[2])
        self.keys[layer][:, :, self.position:end] = k
        self.values[layer][:, :, self.position:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, num_tokens):
        """Move the write position past num_tokens tokens (after every layer wrote them)."""
        self.position = self._end(num_tokens)

    def _end(self, num_tokens):
        end = self.position + num_tokens
        if end > self.max_len:
            raise ValueError(f"KVCache is full: it holds {self.position} of {self.max_len} "
                             f"tokens and cannot take {num_tokens} more (clear() it, or "
                             f"make a larger cache)")
        return end

    def clear(self):
        """Forget every token (the arrays stay allocated, their contents are ignored)."""
        self.position = 0

    def memory_bytes(self):
        """Bytes of the key and value arrays: 2 * n_layer * B * n_head * max_len *
        head_dim * itemsize."""
        return sum(a.nbytes for a in self.keys + self.values)

    def __repr__(self):
        B, H, T, D = self.shape
        return (f"KVCache(n_layer={self.n_layer}, batch_size={B}, n_head={H}, max_len={T}, "
                f"head_dim={D}, position={self.position})")

# %% [markdown]
# ## A cached forward pass
#
# `cached_forward(model, idx, cache)` runs the GPT over `idx (B, T_new)`, the tokens
# that come *after* the `cache.position` tokens the cache already holds, and
# returns their logits `(B, T_new, vocab_size)`. It follows `GPT.forward` line by
# line, with two changes:
#
# - the position vectors are those of positions `position .. position + T_new - 1`,
#   not `0 .. T_new - 1`;
# - in each attention layer, the new keys and values go into the cache, and the
#   new queries attend to all cached keys. Query `i` (at position `position + i`)
#   may see the keys at positions `<= position + i`: the causal mask, shifted right
#   by `position`.
#
# The first call, on the whole prompt, is the **prefill**; each later call feeds
# one token. Everything else (token table, LayerNorms, MLPs, projections, LM head)
# is the model's own modules, called as they are.
#
# It is for inference only: no graph is recorded (the cache holds plain arrays, so
# no gradient could flow through it) and dropout, the identity in evaluation mode,
# is skipped.

# %%
#| export
def _split_heads(x, n_head):
    """(B, T, C) -> (B, n_head, T, C / n_head)."""
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(1, 2)


def _cached_attention(attn, x, cache, layer):
    """The MultiHeadAttention `attn` of block `layer` over new positions x (B, T_new, C),
    attending to the cached keys and values as well as to the new ones."""
    B, T, C = x.shape
    q = _split_heads(attn.query(x), attn.num_heads)                    # (B, H, T, D)
    k_new = _split_heads(attn.key(x), attn.num_heads)
    v_new = _split_heads(attn.value(x), attn.num_heads)
    keys, values = cache.write(layer, k_new.data, v_new.data)         # (B, H, P + T, D)
    start = cache.position                                            # P: tokens before x
    visible = np.arange(start + T)[None, :] <= start + np.arange(T)[:, None]   # (T, P + T)
    keys, values = Tensor(keys, dtype=keys.dtype), Tensor(values, dtype=values.dtype)
    y = scaled_dot_product_attention(q, keys, values, mask=visible)     # (B, H, T, D)
    return attn.out(y.transpose(1, 2).reshape(B, T, C))               # heads side by side


def _check_cache(model, cache, batch_size):
    config = model.config
    expected = (batch_size, config.n_head, config.n_embd // config.n_head)
    B, H, _, D = cache.shape
    if cache.n_layer != config.n_layer or (B, H, D) != expected:
        raise ValueError(f"cached_forward: {cache!r} does not fit this model "
                         f"(n_layer={config.n_layer}) and batch: it needs batch_size, n_head, "
                         f"head_dim = {expected}")


def cached_forward(model, idx, cache):
    """Logits (B, T_new, vocab_size) of the GPT `model` for the tokens idx (B, T_new)
    that follow the cache.position tokens already in `cache`; stores their keys and
    values and advances the cache."""
    if not isinstance(model, GPT):
        raise TypeError(f"cached_forward expects a GPT, got {type(model).__name__}")
    idx = _token_ids(idx, model.config, any_length=True)
    B, T = idx.shape
    if T == 0:
        raise ValueError("cached_forward: idx needs at least one new token per row")
    _check_cache(model, cache, B)
    start = cache.position
    if start + T > model.config.block_size:
        raise ValueError(f"cached_forward: positions up to {start + T - 1} do not exist: the "
                         f"model has block_size={model.config.block_size} positions")
    with no_grad():
        positions = np.arange(start, start + T)
        x = model.wte(idx) + model.wpe.weight[positions]                  # (B, T, C)
        for layer, block in enumerate(model.blocks):
            x = x + _cached_attention(block.attn, block.ln1(x), cache, layer)
            x = x + block.mlp(block.ln2(x))
        cache.advance(T)
        return model.lm_head(model.ln_f(x))                               # (B, T, vocab)

# %% [markdown]
# ## Generating with the cache
#
# `generate_cached(model, idx, max_new_tokens, ...)` takes the arguments of
# `GPT.generate` and returns the same tokens:
#
# 1. prefill: feed the prompt, which fills the cache;
# 2. each step: pick the next token from the last position's logits, exactly as
#    `GPT.generate` does (argmax, or the same sampler drawing the same random
#    numbers), append it and feed only that token.
#
# **Past `block_size`.** Once the sequence is longer than `block_size`,
# `GPT.generate` crops the context to the last `block_size` tokens, which then sit
# at positions `0 .. block_size - 1`: every token has moved to a new position, so
# every cached key and value (which mixed in the old positions' vectors, in every
# layer) is stale. `generate_cached` then does what `generate` does: it clears the
# cache and prefills the cropped window, at every step from there on. The tokens
# stay identical to `generate`'s; the speed-up ends at the boundary, where each step
# costs one full forward pass again. (Models with relative positions, such as
# rotary embeddings, can slide their cache instead; learned absolute positions
# cannot.)
#
# The cache is allocated once, for at most `block_size` tokens: the prompt plus
# the new tokens, minus the last one, which is returned but never fed back.

# %%
#| export
def generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None, greedy=False,
                    seed=None):
    """GPT.generate with a KV cache: appends max_new_tokens tokens to idx (B, T) and
    returns the (B, T + new) ids, the same ones model.generate returns."""
    if not isinstance(model, GPT):
        raise TypeError(f"generate_cached expects a GPT, got {type(model).__name__}")
    config = model.config
    _check_generate_args(config, max_new_tokens, temperature, top_k)
    idx = _token_ids(idx, config, any_length=True)
    if idx.shape[1] == 0:
        raise ValueError("generate: idx needs at least one token of context per row")
    if max_new_tokens == 0:
        return Tensor(idx)
    fed_tokens = min(idx.shape[1] + max_new_tokens - 1, config.block_size)
    cache = KVCache.for_model(model, batch_size=idx.shape[0], max_len=fed_tokens)
    rng, was_training = make_rng(seed), model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            if cache.position == 0 or idx.shape[1] > config.block_size:
                cache.clear()                                      # (re-)prefill the window
                logits = cached_forward(model, idx[:, -config.block_size:], cache)
            else:
                logits = cached_forward(model, idx[:, -1:], cache)  # only the newest token
            last = logits.data[:, -1, :].astype(np.float64)         # (B, vocab)
            next_id = last.argmax(axis=-1) if greedy else _sample(last, temperature, top_k, rng)
            idx = np.concatenate([idx, next_id[:, None].astype(idx.dtype)], axis=1)
    finally:
        model.train(was_training)
    return Tensor(idx)

# %% [markdown]
# ## Trying it out
#
# A GPT with random weights (the speed does not depend on what it learned): the
# same 120 tokens with and without the cache, and the time each took, measured
# here, on this machine (`bench/kv_cache.py` measures a larger model, carefully).

# %%
import time

from tinytorch.models.transformer import GPTConfig

model = GPT(GPTConfig(vocab_size=96, block_size=128, n_layer=2, n_head=4, n_embd=64, seed=0))
prompt = np.array([[1, 2, 3, 4]])

start = time.perf_counter()
slow = model.generate(prompt, max_new_tokens=120, greedy=True).data
uncached = time.perf_counter() - start
start = time.perf_counter()
fast = generate_cached(model, prompt, max_new_tokens=120, greedy=True).data
cached = time.perf_counter() - start

assert np.array_equal(slow, fast)
cache = KVCache.for_model(model, batch_size=1, max_len=124)
print(f"same tokens: {np.array_equal(slow, fast)}; uncached {uncached:.2f} s, cached "
      f"{cached:.2f} s, measured speed-up {uncached / cached:.1f}x; "
      f"cache memory {cache.memory_bytes() / 2**20:.2f} MiB")
