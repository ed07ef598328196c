"""Integration with module 13's GPT: generate_cached returns exactly the tokens of
GPT.generate for many prompts, batch sizes, temperatures and top_k, across the
block_size boundary, drawing the same random numbers; it reads the model's current
weights (no copies)."""
import numpy as np
import pytest

from tinytorch.memoization import KVCache, cached_forward, generate_cached

TOL = dict(rtol=1e-5, atol=1e-5)


def both(model, prompt, max_new_tokens, **options):
    """(tokens without the cache, tokens with it) as numpy arrays."""
    return (model.generate(prompt, max_new_tokens, **options).data,
            generate_cached(model, prompt, max_new_tokens, **options).data)


@pytest.mark.parametrize("batch,prompt_len", [(1, 1), (1, 5), (2, 3), (4, 2), (3, 11)])
@pytest.mark.parametrize("scale", [None, 0.5])
def test_greedy_tokens_are_identical(make_gpt, rng, batch, prompt_len, scale):
    model = make_gpt(scale)
    prompt = rng.integers(0, 11, size=(batch, prompt_len))
    slow, fast = both(model, prompt, 12 - prompt_len, greedy=True)   # fills the context
    assert fast.shape == (batch, 12)
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("top_k", [None, 1, 4, 11])
def test_sampled_tokens_are_identical_with_the_same_seed(make_gpt, rng, temperature, top_k):
    model = make_gpt(0.5)
    prompt = rng.integers(0, 11, size=(3, 2))
    slow, fast = both(model, prompt, 10, temperature=temperature, top_k=top_k, seed=7)
    np.testing.assert_array_equal(fast, slow)
    if top_k != 1:                           # sampling really happened: rows differ
        assert len({tuple(row) for row in fast[:, 2:]}) > 1


def test_both_draw_exactly_the_same_random_numbers(make_gpt):
    model = make_gpt(0.5)
    ours, theirs = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(3):                           # one generator carried through several calls
        slow = model.generate(np.array([[1, 2]]), 6, seed=theirs).data
        fast = generate_cached(model, np.array([[1, 2]]), 6, seed=ours).data
        np.testing.assert_array_equal(fast, slow)
    assert ours.random() == theirs.random()      # the generators end in the same state


@pytest.mark.parametrize("options", [dict(greedy=True), dict(seed=0),
                                     dict(temperature=0.7, top_k=3, seed=1)])
@pytest.mark.parametrize("scale", [None, 0.5])
def test_tokens_stay_identical_across_the_block_size_boundary(make_gpt, rng, options, scale):
    model = make_gpt(scale, block_size=6)
    prompt = rng.integers(0, 11, size=(2, 3))
    slow, fast = both(model, prompt, 15, **options)             # 18 tokens, block_size 6
    assert fast.shape == (2, 18)
    np.testing.assert_array_equal(fast, slow)


def test_past_the_boundary_each_step_is_a_prefill_of_the_cropped_window(make_gpt, rng):
    # What generate_cached does after block_size: clear, then feed the last block_size
    # tokens, which gives the logits model.generate uses for its next token.
    model = make_gpt(0.5, block_size=6)
    idx = rng.integers(0, 11, size=(2, 9))
    cache = KVCache.for_model(model, batch_size=2)
    for _ in range(4):
        cache.clear()
        logits = cached_forward(model, idx[:, -6:], cache)[:, -1]
        np.testing.assert_allclose(logits.data, model(idx[:, -6:])[0].data[:, -1], **TOL)
        idx = np.concatenate([idx, logits.data.argmax(axis=-1)[:, None]], axis=1)
        assert cache.position == 6


def test_the_cached_path_reads_the_models_current_weights(make_gpt, rng):
    model = make_gpt(0.5)
    prompt = rng.integers(0, 11, size=(2, 2))
    before = generate_cached(model, prompt, 8, greedy=True).data
    for layer in (model.blocks[1].attn.value, model.blocks[0].mlp.fc, model.lm_head):
        layer.weight.data = rng.normal(0.0, 0.5, layer.weight.shape).astype(np.float32)
    model.wpe.weight.data = model.wpe.weight.data[::-1].copy()   # positions swapped around
    slow, fast = both(model, prompt, 8, greedy=True)
    np.testing.assert_array_equal(fast, slow)
    assert not np.array_equal(fast, before)                      # the change was seen


def test_a_dropout_model_in_training_mode_generates_as_in_evaluation(make_gpt, rng):
    model = make_gpt(0.5, dropout=0.5).train()
    prompt = rng.integers(0, 11, size=(2, 3))
    slow, fast = both(model, prompt, 7, seed=4)
    np.testing.assert_array_equal(fast, slow)
    reference = generate_cached(model.eval(), prompt, 7, seed=4).data
    np.testing.assert_array_equal(fast, reference)              # no dropout was applied


def test_a_deeper_and_wider_model(make_gpt, rng):
    model = make_gpt(0.3, vocab_size=50, block_size=20, n_layer=4, n_head=4, n_embd=32)
    prompt = rng.integers(0, 50, size=(2, 4))
    for options in (dict(greedy=True), dict(temperature=0.9, top_k=10, seed=5)):
        slow, fast = both(model, prompt, 25, **options)         # crosses block_size 20 too
        np.testing.assert_array_equal(fast, slow)
