"""Fixtures for the KV-cache tests: small GPTs, optionally with spread-out weights."""
import numpy as np
import pytest

# No tinytorch import at the top of a conftest: pytest loads it before the orchestrator's
# plugin exports the modules, so a top-level import would test a stale export.


@pytest.fixture
def make_gpt():
    """make_gpt(scale=None, **config) -> a GPT in evaluation mode (vocab 11, block 12,
    2 layers, 2 heads, C = 16, seed 0 unless changed). With `scale`, every parameter is
    redrawn as N(0, scale^2) (seed 1): GPT's 0.02 initialisation makes attention nearly
    uniform and the logits nearly equal, which would hide mistakes in masks and positions."""
    from tinytorch.models.transformer import GPT, GPTConfig

    def make(scale=None, **changes):
        sizes = dict(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16, seed=0)
        model = GPT(GPTConfig(**{**sizes, **changes}))
        if scale is not None:
            rng = np.random.default_rng(1)
            for p in model.parameters():
                p.data = rng.normal(0.0, scale, p.shape).astype(p.dtype)
        return model.eval()
    return make
