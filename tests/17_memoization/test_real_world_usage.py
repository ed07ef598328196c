"""Real-world usage: a character-level GPT trained briefly on the shipped corpus (the
Python Language Reference, data/corpus/python_reference.txt) writes the same text with
and without the KV cache: greedy and sampled, one prompt and a batch of them, within
the context and past block_size.

The characters are encoded with module 10's CharTokenizer; Adam is written here, so the
test needs no module outside the cache's dependency closure."""
from pathlib import Path

import numpy as np
import pytest

from tests.support.adam import Adam
from tinytorch.core.autograd import no_grad
from tinytorch.memoization import KVCache, cached_forward, generate_cached
from tinytorch.models.transformer import GPT, GPTConfig
from tinytorch.text.tokenization import CharTokenizer

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "python_reference.txt"
TRAIN_CHARS = 200_000
BLOCK, BATCH, STEPS = 64, 16, 200


@pytest.fixture(scope="module")
def trained():
    """A 2-layer char GPT after STEPS Adam steps on 16 x 64-character windows (seed 0)."""
    text = CORPUS.read_text(encoding="utf-8")
    tokenizer = CharTokenizer().train(text)
    data = np.array(tokenizer.encode(text[:TRAIN_CHARS]), dtype=np.int64)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=BLOCK, n_layer=2, n_head=4,
                       n_embd=64, seed=0)
    model = GPT(config)
    optimizer, rng, losses = Adam(model.parameters()), np.random.default_rng(0), []
    offsets = np.arange(BLOCK)
    for _ in range(STEPS):
        starts = rng.integers(0, len(data) - BLOCK - 1, size=BATCH)
        _, loss = model(data[starts[:, None] + offsets], data[starts[:, None] + offsets + 1])
        model.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return dict(model=model.eval(), tokenizer=tokenizer, losses=losses)


def test_the_model_learned_something(trained):
    # measured (seed 0): loss 4.68 (ln 107 = 4.67) at the first step, 2.54 at the last,
    # 2.47 over the last 10 steps: well below the corpus' unigram entropy (3.24, module 13)
    losses = trained["losses"]
    assert losses[0] == pytest.approx(np.log(trained["tokenizer"].vocab_size), abs=0.05)
    assert np.mean(losses[-10:]) < 2.8


def test_greedy_text_is_the_same_with_and_without_the_cache(trained):
    model, tokenizer = trained["model"], trained["tokenizer"]
    prompt = np.array([tokenizer.encode("The ")])
    slow = tokenizer.decode(model.generate(prompt, 60, greedy=True).data[0])
    fast = tokenizer.decode(generate_cached(model, prompt, 60, greedy=True).data[0])
    assert fast == slow and len(fast) == 64 and fast.startswith("The ")   # fills the context
    # measured: "The the the the ..." (greedy decoding repeats itself): 0.73 letters
    assert sum(c.islower() for c in fast) / len(fast) > 0.5


def test_sampled_text_is_the_same_and_reads_like_the_corpus(trained):
    model, tokenizer = trained["model"], trained["tokenizer"]
    prompt = np.array([tokenizer.encode("The ")])
    slow = tokenizer.decode(model.generate(prompt, 150, temperature=0.8, seed=0).data[0])
    fast = tokenizer.decode(generate_cached(model, prompt, 150, temperature=0.8, seed=0).data[0])
    assert fast == slow and len(fast) == 154                       # 90 tokens past block_size
    # English-like character statistics: a uniform model would give ~26/107 lower-case
    # letters and 1/107 spaces (measured 0.79 and 0.16)
    assert sum(c.islower() for c in fast) / len(fast) > 0.5
    assert 0.08 < fast.count(" ") / len(fast) < 0.35


def test_a_batch_of_prompts_generates_the_same_texts(trained):
    model, tokenizer = trained["model"], trained["tokenizer"]
    prompts = np.array([tokenizer.encode(p) for p in ("def ", "The ", "in a", "x = ")])
    slow = model.generate(prompts, 40, temperature=0.9, top_k=10, seed=1).data
    fast = generate_cached(model, prompts, 40, temperature=0.9, top_k=10, seed=1).data
    np.testing.assert_array_equal(fast, slow)
    assert len({tokenizer.decode(row) for row in fast}) == 4


def test_the_cached_logits_track_the_uncached_ones_on_real_text(trained):
    model, tokenizer = trained["model"], trained["tokenizer"]
    idx = np.array([tokenizer.encode("A class definition creates a class object.")])
    cache = KVCache.for_model(model, batch_size=1)
    cached_forward(model, idx[:, :1], cache)
    with no_grad():
        full = model(idx)[0].data                                  # (1, 43, vocab)
    for t in range(1, idx.shape[1]):                               # one character at a time
        step = cached_forward(model, idx[:, t:t + 1], cache).data[:, -1]
        np.testing.assert_allclose(step, full[:, t], rtol=1e-5, atol=1e-5)
