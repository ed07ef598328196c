"""Progressive integration: the KV cache loads exactly the modules it uses (module 13's
closure, not the tokenizer), runs module 12's attention and module 11's position
table, calls the model's own layers (module 03), follows weights trained with module
05's autograd, and serves text encoded by module 10's tokenizer."""
import numpy as np

from tinytorch.core.layers import Linear
from tinytorch.memoization import KVCache, cached_forward, generate_cached
from tinytorch.models.attention import MultiHeadAttention
from tinytorch.text.tokenization import CharTokenizer

TOL = dict(rtol=1e-5, atol=1e-5)


def test_importing_memoization_loads_exactly_the_transformers_closure(loaded_modules):
    assert loaded_modules("tinytorch.memoization") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.losses", "tinytorch.core.autograd", "tinytorch.text.embeddings",
        "tinytorch.models.attention", "tinytorch.models.transformer", "tinytorch.memoization"}


def test_one_query_against_cached_keys_matches_module_12s_causal_attention(make_gpt, rng):
    # A one-layer GPT exposes the attention layer: its causal output for the last
    # position, computed by module 12 over the whole sequence, is what the cached
    # step computes from one query and the cached keys.
    model = make_gpt(0.5, n_layer=1)
    attn = model.blocks[0].attn
    assert isinstance(attn, MultiHeadAttention)
    idx = rng.integers(0, 11, size=(2, 6))
    cache = KVCache.for_model(model, batch_size=2)
    cached_forward(model, idx[:, :5], cache)
    last = cached_forward(model, idx[:, 5:], cache)

    x = model.wpe(model.wte(idx))
    x = x + attn(model.blocks[0].ln1(x), is_causal=True)        # module 12, no cache
    x = x + model.blocks[0].mlp(model.blocks[0].ln2(x))
    expected = model.lm_head(model.ln_f(x)).data[:, 5:]
    np.testing.assert_allclose(last.data, expected, **TOL)


def test_the_cached_step_calls_the_models_own_linear_layers(make_gpt, rng):
    model = make_gpt()
    calls = []
    for layer in (model.blocks[0].attn.query, model.blocks[1].attn.key, model.lm_head):
        assert isinstance(layer, Linear)
        original = layer.forward
        layer.forward = lambda x, original=original, layer=layer: (
            calls.append((id(layer), x.shape)), original(x))[1]
    cache = KVCache.for_model(model, batch_size=2)
    cached_forward(model, rng.integers(0, 11, size=(2, 4)), cache)     # prefill: T = 4
    cached_forward(model, rng.integers(0, 11, size=(2, 1)), cache)     # a step: T = 1
    assert [shape for _, shape in calls] == [(2, 4, 16)] * 3 + [(2, 1, 16)] * 3


def test_positions_come_from_module_11s_table_at_the_cache_position(make_gpt, rng):
    model = make_gpt(0.5)
    cache = KVCache.for_model(model, batch_size=1)
    cached_forward(model, np.array([[1, 2, 3]]), cache)
    step = cached_forward(model, np.array([[4]]), cache).data     # token 4 at position 3
    model.wpe.weight.data[3] += rng.normal(0.0, 1.0, 16)          # only position 3 changes
    cache.clear()
    cached_forward(model, np.array([[1, 2, 3]]), cache)
    moved = cached_forward(model, np.array([[4]]), cache).data
    assert np.abs(moved - step).max() > 0.1
    np.testing.assert_allclose(moved[:, -1], model(np.array([[1, 2, 3, 4]]))[0].data[:, -1], **TOL)


def test_weights_trained_with_autograd_are_used_right_away(make_gpt, rng):
    model = make_gpt()
    idx, targets = rng.integers(0, 11, size=(2, 4, 12))
    losses = []
    for _ in range(5):                                             # module 05: backward
        _, loss = model(idx, targets)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
        prompt = idx[:2, :3]
        np.testing.assert_array_equal(generate_cached(model, prompt, 6, greedy=True).data,
                                      model.generate(prompt, 6, greedy=True).data)
    assert losses[-1] < losses[0] - 0.05


def test_text_from_module_10s_tokenizer(make_gpt):
    tokenizer = CharTokenizer().train("abcdefg")                  # 4 specials + 7 characters
    model = make_gpt(0.5, vocab_size=tokenizer.vocab_size)
    prompt = np.array([tokenizer.encode("cab")])
    fast = generate_cached(model, prompt, 9, temperature=0.8, seed=2).data[0]
    slow = model.generate(prompt, 9, temperature=0.8, seed=2).data[0]
    assert tokenizer.decode(fast) == tokenizer.decode(slow)
    assert tokenizer.decode(fast).startswith("cab") and len(fast) == 12
