"""Edge cases: empty prompts, nothing to generate, prompts longer than block_size,
block_size 1, batches, float64 models, and clear errors for bad arguments and for
caches that do not fit."""
import numpy as np
import pytest

from tinytorch.core.layers import Linear
from tinytorch.memoization import KVCache, cached_forward, generate_cached

TOL = dict(rtol=1e-5, atol=1e-5)


def test_an_empty_prompt_is_a_clear_error(make_gpt):
    model = make_gpt()
    empty = np.zeros((2, 0), dtype=np.int64)
    with pytest.raises(ValueError, match="at least one token of context"):
        generate_cached(model, empty, 3)
    with pytest.raises(ValueError, match="at least one new token"):
        cached_forward(model, empty, KVCache.for_model(model, batch_size=2))


def test_zero_new_tokens_returns_the_prompt(make_gpt, rng):
    model = make_gpt()
    prompt = rng.integers(0, 11, size=(2, 4))
    got = generate_cached(model, prompt, max_new_tokens=0)
    np.testing.assert_array_equal(got.data, prompt)
    np.testing.assert_array_equal(got.data, model.generate(prompt, 0).data)
    long_prompt = rng.integers(0, 11, size=(1, 30))                  # longer than block_size
    np.testing.assert_array_equal(generate_cached(model, long_prompt, 0).data, long_prompt)


@pytest.mark.parametrize("options", [dict(greedy=True), dict(temperature=1.3, seed=3)])
def test_a_prompt_longer_than_block_size_is_cropped_like_generate(make_gpt, rng, options):
    model = make_gpt(0.5)                                             # block_size 12
    prompt = rng.integers(0, 11, size=(2, 20))
    slow = model.generate(prompt, 5, **options).data
    fast = generate_cached(model, prompt, 5, **options).data
    assert fast.shape == (2, 25)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast[:, :20], prompt)


def test_block_size_one_reprefills_every_step(make_gpt, rng):
    model = make_gpt(0.5, block_size=1)
    prompt = rng.integers(0, 11, size=(3, 2))
    np.testing.assert_array_equal(generate_cached(model, prompt, 6, greedy=True).data,
                                  model.generate(prompt, 6, greedy=True).data)


def test_one_new_token_from_a_one_token_prompt(make_gpt):
    model = make_gpt(0.5)
    prompt = np.array([[5]])
    np.testing.assert_array_equal(generate_cached(model, prompt, 1, greedy=True).data,
                                  model.generate(prompt, 1, greedy=True).data)


def test_rows_of_a_batch_are_generated_independently(make_gpt, rng):
    model = make_gpt(0.5)
    prompts = rng.integers(0, 11, size=(5, 3))
    batch = generate_cached(model, prompts, 8, greedy=True).data
    for row, prompt in zip(batch, prompts):
        alone = generate_cached(model, prompt[None], 8, greedy=True).data[0]
        np.testing.assert_array_equal(row, alone)
    np.testing.assert_array_equal(batch, model.generate(prompts, 8, greedy=True).data)


def test_top_k_one_samples_the_greedy_tokens(make_gpt, rng):
    model = make_gpt(0.5)
    prompt = rng.integers(0, 11, size=(2, 2))
    np.testing.assert_array_equal(generate_cached(model, prompt, 9, top_k=1, seed=0).data,
                                  generate_cached(model, prompt, 9, greedy=True).data)


def test_a_float64_model_gets_a_float64_cache(make_gpt, rng):
    model = make_gpt(0.5)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    cache = KVCache.for_model(model, batch_size=1)
    assert cache.keys[0].dtype == np.float64
    idx = rng.integers(0, 11, size=(1, 7))
    logits = cached_forward(model, idx, cache)
    np.testing.assert_allclose(logits.data, model(idx)[0].data, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(generate_cached(model, idx[:, :2], 10, greedy=True).data,
                                  model.generate(idx[:, :2], 10, greedy=True).data)


@pytest.mark.parametrize("arguments,message", [
    (dict(max_new_tokens=-1), "max_new_tokens must be a non-negative integer"),
    (dict(max_new_tokens=2.0), "max_new_tokens must be a non-negative integer"),
    (dict(max_new_tokens=2, temperature=0), "temperature must be positive"),
    (dict(max_new_tokens=2, top_k=0), r"top_k must be in \[1, 11\]"),
    (dict(max_new_tokens=2, top_k=12), r"top_k must be in \[1, 11\]"),
])
def test_bad_generation_arguments_fail_like_generate(make_gpt, arguments, message):
    model = make_gpt()
    prompt = np.array([[1, 2]])
    with pytest.raises(ValueError, match=message):
        model.generate(prompt, **arguments)
    with pytest.raises(ValueError, match=message):
        generate_cached(model, prompt, **arguments)


def test_bad_token_ids_are_rejected(make_gpt):
    model = make_gpt()
    with pytest.raises(ValueError, match=r"token ids in \[0, 11\)"):
        generate_cached(model, np.array([[1, 11]]), 2)
    with pytest.raises(ValueError, match=r"\(B, T\) array of integer token ids"):
        generate_cached(model, np.array([1, 2]), 2)                   # no batch axis
    with pytest.raises(ValueError, match=r"\(B, T\) array of integer token ids"):
        generate_cached(model, np.array([[1.0, 2.0]]), 2)


def test_only_a_gpt_can_be_cached():
    layer = Linear(4, 4, seed=0)
    with pytest.raises(TypeError, match="generate_cached expects a GPT, got Linear"):
        generate_cached(layer, np.array([[1]]), 2)
    with pytest.raises(TypeError, match="cached_forward expects a GPT, got Linear"):
        cached_forward(layer, np.array([[1]]), KVCache(1, 1, 1, 4, 4))


def test_a_cache_that_does_not_fit_the_model_or_batch_is_rejected(make_gpt):
    model = make_gpt()                                   # 2 layers, 2 heads, head_dim 8
    idx = np.array([[1, 2], [3, 4]])
    for cache in (KVCache.for_model(model, batch_size=3),
                  KVCache(n_layer=3, batch_size=2, n_head=2, max_len=12, head_dim=8),
                  KVCache(n_layer=2, batch_size=2, n_head=4, max_len=12, head_dim=4)):
        with pytest.raises(ValueError, match="does not fit this model"):
            cached_forward(model, idx, cache)
        assert cache.position == 0


def test_feeding_past_the_cache_or_past_block_size_is_a_clear_error(make_gpt, rng):
    model = make_gpt()                                   # block_size 12
    small = KVCache.for_model(model, batch_size=1, max_len=4)
    cached_forward(model, rng.integers(0, 11, size=(1, 3)), small)
    with pytest.raises(ValueError, match="KVCache is full: it holds 3 of 4 tokens"):
        cached_forward(model, rng.integers(0, 11, size=(1, 2)), small)
    assert small.position == 3                           # the failed call stored nothing

    big = KVCache(n_layer=2, batch_size=1, n_head=2, max_len=20, head_dim=8)
    cached_forward(model, rng.integers(0, 11, size=(1, 12)), big)
    with pytest.raises(ValueError, match="positions up to 12 do not exist: the model has "
                                         "block_size=12"):
        cached_forward(model, rng.integers(0, 11, size=(1, 1)), big)


@pytest.mark.parametrize("sizes,message", [
    (dict(n_layer=0), "n_layer must be a positive integer"),
    (dict(batch_size=2.5), "batch_size must be a positive integer"),
    (dict(max_len=True), "max_len must be a positive integer"),
    (dict(head_dim=-1), "head_dim must be a positive integer"),
])
def test_cache_sizes_must_be_positive_integers(sizes, message):
    arguments = {**dict(n_layer=1, batch_size=1, n_head=1, max_len=4, head_dim=4), **sizes}
    with pytest.raises(ValueError, match=message):
        KVCache(**arguments)


def test_for_model_refuses_more_positions_than_the_model_has(make_gpt):
    model = make_gpt()
    with pytest.raises(ValueError, match="max_len 13 is larger than the model's block_size 12"):
        KVCache.for_model(model, batch_size=1, max_len=13)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        KVCache.for_model(model, batch_size=1, max_len=0)


def test_writes_of_the_wrong_shape_or_layer_are_rejected(rng):
    cache = KVCache(n_layer=2, batch_size=2, n_head=3, max_len=5, head_dim=4)
    k = rng.standard_normal((2, 3, 1, 4)).astype(np.float32)
    with pytest.raises(IndexError, match=r"layer 2 is out of range \[0, 2\)"):
        cache.write(2, k, k)
    with pytest.raises(ValueError, match=r"k must have shape \(2, 3, T_new, 4\)"):
        cache.write(0, k[:, :2], k)
    with pytest.raises(ValueError, match=r"v must have shape \(2, 3, T_new, 4\)"):
        cache.write(0, k, k[0])
    with pytest.raises(ValueError, match="must have the same shape"):
        cache.write(0, k, np.concatenate([k, k], axis=2))
