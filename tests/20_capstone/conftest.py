"""Fixtures for the TinyGPT tests: the shipped corpus as token ids, small GPTs, a tiny
model trained on the corpus (shared by the tests of one file), and a runner for the
command line in a fresh interpreter."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# No tinytorch import at the top of a conftest: pytest loads it before the orchestrator's
# plugin exports the modules, so a top-level import would test a stale export.

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "corpus" / "python_reference.txt"

# The tiny model trained in tests: measured to reach val loss ~2.46 nats/char (unigram
# baseline 3.24) in 150 steps, well under a second.
TINY = dict(block_size=16, n_layer=1, n_head=2, n_embd=16)
TINY_TRAINING = dict(steps=150, batch_size=16, lr=1e-2, min_lr=1e-3, eval_every=150,
                     eval_windows=128, seed=0)


@pytest.fixture(scope="session")
def corpus():
    """The shipped corpus: text, its CharTokenizer, and the 90/10 train/val ids."""
    from tinytorch.applications.tinygpt import build_tokenizer, split_ids
    text = CORPUS.read_text(encoding="utf-8")
    tokenizer = build_tokenizer(text, "char")
    train_ids, val_ids = split_ids(tokenizer.encode(text), 0.1)
    return dict(text=text, tokenizer=tokenizer, train=train_ids, val=val_ids)


@pytest.fixture
def make_gpt(corpus):
    """make_gpt(**changes) -> a GPT over the corpus vocabulary (TINY sizes, seed 0)."""
    from tinytorch.models.transformer import GPT, GPTConfig

    def make(**changes):
        sizes = dict(vocab_size=corpus["tokenizer"].vocab_size, seed=0, **TINY)
        return GPT(GPTConfig(**{**sizes, **changes}))
    return make


@pytest.fixture(scope="module")
def trained(corpus):
    """A TINY GPT trained TINY_TRAINING on the corpus, with its training history."""
    from tinytorch.applications.tinygpt import TrainConfig, train
    from tinytorch.models.transformer import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=corpus["tokenizer"].vocab_size, seed=0, **TINY))
    history = train(model, corpus["train"], corpus["val"], TrainConfig(**TINY_TRAINING))
    return dict(model=model.eval(), history=history, tokenizer=corpus["tokenizer"])


@pytest.fixture(scope="session")
def run_cli():
    """run_cli(*args) -> CompletedProcess of `python -m tinytorch.applications.tinygpt
    args...` run from the repository root."""
    def run(*args, timeout=120):
        return subprocess.run([sys.executable, "-m", "tinytorch.applications.tinygpt",
                               *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    return run


def one_error_line(result):
    """The single stderr line of a failed command (asserting there is exactly one and no
    traceback)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="session")
def error_line():
    return one_error_line


def spread_weights(model, scale=0.3, seed=1):
    """Redraw every parameter as N(0, scale^2): GPT's 0.02 init gives nearly equal logits,
    which would let a wrong cache or sampler pass unnoticed."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data = rng.normal(0.0, scale, p.shape).astype(p.dtype)
    return model


@pytest.fixture(scope="session")
def spread():
    return spread_weights
