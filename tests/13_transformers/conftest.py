"""Fixtures for the transformer tests: small configs, float64 casting, a hand-written
Adam (so these tests need no optimizer module) and a PyTorch re-implementation of our
GPT's forward pass that reads our weights (the oracle for values and gradients)."""
import numpy as np
import pytest

from tests.support.adam import Adam

# No tinytorch import at the top of a conftest: pytest loads it before the orchestrator's
# plugin exports the modules, so a top-level import would test a stale export.


@pytest.fixture
def tiny_config():
    """tiny_config(**changes) -> a small GPTConfig (vocab 7, block 6, 2 layers, C = 8)."""
    from tinytorch.models.transformer import GPTConfig

    def make(**changes):
        sizes = dict(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=8, seed=0)
        return GPTConfig(**{**sizes, **changes})
    return make


def _as_float64(module, rng=None, scale=None):
    """Cast every parameter to float64 in place; with rng and scale, also redraw each
    as N(0, scale^2) (GPT's 0.02 init makes gradients too small for a sharp gradcheck)."""
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
        if rng is not None:
            p.data = rng.normal(0.0, scale, p.shape)
    return module


@pytest.fixture
def float64():
    return _as_float64


@pytest.fixture(scope="session")
def adam():
    return Adam


@pytest.fixture
def torch_gpt(torch):
    """torch_gpt(model) -> (forward, params): a float64 PyTorch version of model's forward
    pass built from F.layer_norm, F.scaled_dot_product_attention and F.gelu(tanh), with
    params[i] a leaf tensor holding model.parameters()[i]. forward(idx, targets) returns
    (logits, loss). Our Linear stores weight as (in, out), so x @ W + b needs no transpose."""
    F = torch.nn.functional

    def build(model):
        params = [torch.tensor(p.data, dtype=torch.float64, requires_grad=True)
                  for p in model.parameters()]
        lookup = {id(p): t for p, t in zip(model.parameters(), params)}

        def t(p):
            return lookup[id(p)]

        def linear(layer, x):
            return x @ t(layer.weight) + (t(layer.bias) if layer.bias is not None else 0)

        def norm(ln, x):
            return F.layer_norm(x, (ln.dim,), t(ln.weight), t(ln.bias), ln.eps)

        def attention(mha, x):
            B, T, C = x.shape

            def split(y):
                return y.view(B, T, mha.num_heads, mha.head_dim).transpose(1, 2)
            q, k, v = (split(linear(layer, x)) for layer in (mha.query, mha.key, mha.value))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return linear(mha.out, y.transpose(1, 2).reshape(B, T, C))

        def forward(idx, targets=None):
            idx = torch.tensor(np.asarray(idx))
            T = idx.shape[1]
            x = t(model.wte.weight)[idx] + t(model.wpe.weight)[:T]
            for block in model.blocks:
                x = x + attention(block.attn, norm(block.ln1, x))
                h = F.gelu(linear(block.mlp.fc, norm(block.ln2, x)), approximate="tanh")
                x = x + linear(block.mlp.proj, h)
            logits = linear(model.lm_head, norm(model.ln_f, x))
            if targets is None:
                return logits, None
            targets = torch.tensor(np.asarray(targets))
            return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))

        return forward, params
    return build
