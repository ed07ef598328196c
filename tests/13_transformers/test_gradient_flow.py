"""Gradient flow: every GPT parameter gets a finite, non-zero gradient of its shape;
gradients match float64 finite differences (gradcheck) and PyTorch's autograd on a
re-implementation that reads our weights."""
import numpy as np
import pytest

from tinytorch.core.autograd import gradcheck
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, LayerNorm, TransformerBlock


def test_every_parameter_gets_a_nonzero_finite_gradient_of_its_shape(tiny_config):
    model = GPT(tiny_config())
    idx = np.array([[0, 1, 2, 3, 4, 5], [6, 5, 4, 3, 2, 1]])       # every token, every position
    targets = np.roll(idx, -1, axis=1)
    _, loss = model(idx, targets)
    loss.backward()
    params = model.parameters()
    assert len(params) == 37
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == p.dtype
        assert np.all(np.isfinite(p.grad.data))
        assert np.abs(p.grad.data).max() > 0


def test_gradients_reach_the_first_block_with_a_healthy_size(tiny_config):
    # the residual stream gives the first block a direct path: its gradients are not
    # orders of magnitude smaller than the last block's
    model = GPT(tiny_config(n_layer=4, n_embd=16, n_head=4, block_size=8, vocab_size=11))
    rng = np.random.default_rng(1)
    idx, targets = rng.integers(0, 11, size=(2, 4, 8))
    model(idx, targets)[1].backward()
    first = np.abs(model.blocks[0].mlp.fc.weight.grad.data).mean()
    last = np.abs(model.blocks[-1].mlp.fc.weight.grad.data).mean()
    assert 0.1 < first / last < 10


def test_gradcheck_of_a_tiny_gpt_loss(tiny_config, float64, rng):
    model = float64(GPT(tiny_config(n_layer=1, block_size=4, vocab_size=5, n_embd=4)), rng, 0.5)
    idx, targets = np.array([[0, 3, 1, 4], [2, 2, 0, 1]]), np.array([[3, 1, 4, 2], [2, 0, 1, 3]])
    block = model.blocks[0]
    some = [model.wte.weight, model.wpe.weight, block.ln1.weight, block.attn.query.weight,
            block.attn.value.bias, block.mlp.fc.weight, block.mlp.proj.bias, model.ln_f.bias,
            model.lm_head.weight]
    error = gradcheck(lambda *_: model(idx, targets)[1], some)
    assert error < 1e-7


def test_gpt_gradients_match_torch(torch_gpt, tiny_config, float64, rng):
    model = float64(GPT(tiny_config()), rng, scale=0.3)
    idx, targets = rng.integers(0, 7, size=(2, 3, 6))
    _, loss = model(idx, targets)
    loss.backward()
    forward, theirs = torch_gpt(model)
    forward(idx, targets)[1].backward()
    for ours, ref in zip(model.parameters(), theirs):
        assert ours.grad.shape == tuple(ref.grad.shape)
        np.testing.assert_allclose(ours.grad.data, ref.grad.numpy(), rtol=1e-6, atol=1e-10)


def test_gradcheck_layernorm_wrt_input_gain_and_bias(rng):
    ln = LayerNorm(5, eps=1e-3)
    ln.weight.data = rng.standard_normal(5)
    ln.bias.data = rng.standard_normal(5)
    x = Tensor(rng.standard_normal((2, 3, 5)), dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda x, w, b: ln(x), [x, ln.weight, ln.bias]) < 1e-7


def test_layernorm_gradients_match_torch(torch, rng):
    ln = LayerNorm(6)
    ln.weight.data, ln.bias.data = rng.standard_normal(6), rng.standard_normal(6)
    x = rng.standard_normal((4, 6))
    w = rng.standard_normal((4, 6))                                  # d loss / d output
    xs = Tensor(x, dtype=np.float64, requires_grad=True)
    (ln(xs) * w).sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = (torch.tensor(a, requires_grad=True) for a in (ln.weight.data, ln.bias.data))
    (torch.nn.functional.layer_norm(xt, (6,), wt, bt, 1e-5) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xs.grad.data, xt.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ln.weight.grad.data, wt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ln.bias.grad.data, bt.grad.numpy(), rtol=1e-12)


def test_gradcheck_transformer_block_wrt_its_input(rng, float64):
    block = float64(TransformerBlock(4, 2, seed=0), rng, scale=0.5)
    x = Tensor(rng.standard_normal((2, 3, 4)), dtype=np.float64, requires_grad=True)
    assert gradcheck(block, [x]) < 1e-7


def test_logits_at_t_send_no_gradient_to_later_tokens(tiny_config, rng):
    model = GPT(tiny_config())
    idx = np.array([[0, 1, 2, 3, 4, 5]])
    logits, _ = model(idx)
    logits[:, 2].sum().backward()                  # predictions made at position 2
    assert np.all(model.wpe.weight.grad.data[3:] == 0.0)  # positions 3..5 played no part
    assert np.all(np.abs(model.wpe.weight.grad.data[:3]).max(axis=1) > 0)
    assert np.all(model.wte.weight.grad.data[[3, 4, 5, 6]] == 0.0)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_training_with_dropout_still_reaches_every_parameter(tiny_config, p):
    model = GPT(tiny_config(dropout=p))
    idx = np.array([[0, 1, 2, 3, 4, 5], [6, 5, 4, 3, 2, 1]] * 2)
    model(idx, np.roll(idx, -1, axis=1))[1].backward()
    assert all(np.abs(q.grad.data).max() > 0 for q in model.parameters())
