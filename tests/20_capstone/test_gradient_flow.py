"""Gradient flow through the whole TinyGPT training step: every parameter of the GPT gets
a finite, non-zero gradient from train_step, the gradients are those of central finite
differences in float64 (gradcheck), and AdamW then moves every parameter."""
import numpy as np
import pytest

from tinytorch.applications.tinygpt import get_batch, train_step
from tinytorch.core.autograd import gradcheck
from tinytorch.core.optimizers import AdamW


def _batch(corpus, block_size=16, batch_size=4, seed=0):
    return get_batch(corpus["train"], batch_size, block_size, np.random.default_rng(seed))


def test_every_parameter_gets_a_finite_nonzero_gradient(make_gpt, corpus):
    model = make_gpt(n_layer=2)
    x, y = _batch(corpus)                        # T = block_size: every position is used
    train_step(model, AdamW(model.parameters(), lr=0.0, weight_decay=0.0), x, y, grad_clip=1.0)
    params = model.parameters()
    assert len(params) == 2 + 2 * 16 + 2 + 1      # wte, wpe, 16 per block, ln_f, lm_head
    for i, p in enumerate(params):
        assert p.grad is not None and p.grad.shape == p.shape, i
        assert np.isfinite(p.grad.data).all(), i
        assert np.abs(p.grad.data).sum() > 0, i


def test_token_table_rows_get_gradient_exactly_for_the_tokens_seen(make_gpt, corpus):
    model = make_gpt()
    x, y = _batch(corpus)
    train_step(model, AdamW(model.parameters(), lr=0.0), x, y)
    rows_with_gradient = np.flatnonzero(np.abs(model.wte.weight.grad.data).sum(axis=1))
    np.testing.assert_array_equal(rows_with_gradient, np.unique(x))
    assert (np.abs(model.wpe.weight.grad.data).sum(axis=1) > 0).all()   # every position


def test_training_step_gradients_match_finite_differences(corpus, spread):
    """gradcheck (float64 central differences) on a model whose every parameter is
    float64, on a selection of tensors from every kind of layer; then train_step must
    leave exactly those autograd gradients on the parameters."""
    from tinytorch.models.transformer import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=corpus["tokenizer"].vocab_size, block_size=6, n_layer=2,
                          n_head=2, n_embd=8, seed=0))
    spread(model, scale=0.3)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x, y = _batch(corpus, block_size=6, batch_size=2)
    checked = [model.wpe.weight, model.blocks[0].attn.query.weight, model.blocks[0].ln1.bias,
               model.blocks[1].mlp.fc.bias, model.blocks[1].attn.out.weight, model.ln_f.weight]

    def loss(*_):
        return model(x, y)[1]
    assert gradcheck(loss, checked, eps=1e-6, atol=1e-7, rtol=1e-5) < 1e-7

    model.zero_grad()
    model(x, y)[1].backward()
    expected = [p.grad.data.copy() for p in model.parameters()]
    train_step(model, AdamW(model.parameters(), lr=0.0, weight_decay=0.0), x, y)
    for p, grad in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad.data, grad)


def test_one_adamw_step_moves_every_parameter_against_its_gradient(make_gpt, corpus):
    model = make_gpt()
    x, y = _batch(corpus)
    before = [p.data.copy() for p in model.parameters()]
    train_step(model, AdamW(model.parameters(), lr=1e-3, weight_decay=0.0), x, y, grad_clip=1.0)
    for p, old in zip(model.parameters(), before):
        moved = p.data - old
        seen = p.grad.data != 0                      # unseen token rows have no gradient
        # Adam's first step is -lr * g / (|g| + eps): the sign of the clipped gradient
        g = p.grad.data[seen].astype(np.float64)
        np.testing.assert_allclose(moved[seen], -1e-3 * g / (np.abs(g) + 1e-8), rtol=1e-4,
                                   atol=1e-10)
        np.testing.assert_array_equal(moved[~seen], 0)


def test_gradients_reach_the_first_block_after_clipping(make_gpt, corpus):
    model = make_gpt(n_layer=3)
    x, y = _batch(corpus)
    norm = train_step(model, AdamW(model.parameters(), lr=0.0), x, y, grad_clip=1e-3)[1]
    first = model.blocks[0].attn.query.weight.grad.data
    total = np.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum())
                        for p in model.parameters()))
    assert total == pytest.approx(1e-3, rel=1e-4) and norm > 1e-3
    assert np.abs(first).max() > 0 and np.isfinite(first).all()
