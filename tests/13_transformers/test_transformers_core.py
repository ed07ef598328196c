"""Core: LayerNorm, MLP, TransformerBlock and GPT against hand computations and a
PyTorch re-implementation; initialisation; generate; shapes; API; export; memory."""
import gc
import inspect
import math
import tracemalloc
import weakref
from dataclasses import asdict, fields

import numpy as np
import pytest

from tinytorch.core.activations import GELU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import MultiHeadAttention
from tinytorch.models.transformer import GPT, MLP, GPTConfig, LayerNorm, TransformerBlock

API = ["GPTConfig", "LayerNorm", "MLP", "TransformerBlock", "GPT"]


def f64(array):
    return Tensor(array, dtype=np.float64)


# ---- LayerNorm -------------------------------------------------------------------------

def test_layernorm_on_a_hand_computed_example():
    # mean 2.5, biased variance 1.25
    out = LayerNorm(4, eps=0.0 + 1e-5)(f64([[1.0, 2.0, 3.0, 4.0]]))
    expected = (np.array([1.0, 2.0, 3.0, 4.0]) - 2.5) / np.sqrt(1.25 + 1e-5)
    np.testing.assert_allclose(out.data, [expected], rtol=1e-14)


def test_layernorm_output_has_zero_mean_unit_variance_then_gain_and_bias(rng):
    ln = LayerNorm(16)
    x = Tensor(rng.standard_normal((3, 5, 16)) * 4 + 7)
    y = ln(x).data
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-4)
    ln.weight.data[:] = 3.0
    ln.bias.data[:] = -1.0
    np.testing.assert_allclose(ln(x).data, 3 * y - 1, rtol=1e-5, atol=1e-5)
    assert ln(x).dtype == np.float32


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_layernorm_matches_torch(torch, rng, eps):
    ln = LayerNorm(10, eps=eps)
    ln.weight.data = rng.standard_normal(10)
    ln.bias.data = rng.standard_normal(10)
    x = rng.standard_normal((2, 3, 10)) * 0.1            # small variance: eps matters
    expected = torch.nn.functional.layer_norm(torch.tensor(x), (10,), torch.tensor(ln.weight.data),
                                              torch.tensor(ln.bias.data), eps)
    np.testing.assert_allclose(ln(f64(x)).data, expected.numpy(), rtol=1e-10, atol=1e-12)


def test_layernorm_parameters_start_at_one_and_zero():
    ln = LayerNorm(5)
    assert [p.shape for p in ln.parameters()] == [(5,), (5,)]
    assert np.array_equal(ln.weight.data, np.ones(5)) and np.array_equal(ln.bias.data, np.zeros(5))
    assert repr(ln) == "LayerNorm(5, eps=1e-05)"


# ---- MLP and block -----------------------------------------------------------------------

def test_mlp_is_linear_gelu_linear_with_a_4x_hidden_layer(torch, rng, float64):
    mlp = float64(MLP(6, seed=0), rng, scale=0.5)
    assert (mlp.fc.in_features, mlp.fc.out_features, mlp.proj.out_features) == (6, 24, 6)
    x = rng.standard_normal((2, 3, 6))
    h = torch.tensor(x) @ torch.tensor(mlp.fc.weight.data) + torch.tensor(mlp.fc.bias.data)
    gelu = torch.nn.functional.gelu(h, approximate="tanh")
    expected = gelu @ torch.tensor(mlp.proj.weight.data) + torch.tensor(mlp.proj.bias.data)
    np.testing.assert_allclose(mlp(f64(x)).data, expected.numpy(), rtol=1e-6, atol=1e-10)


def test_block_is_pre_norm_with_two_residual_additions(rng, float64):
    block = float64(TransformerBlock(8, 2, seed=0), rng, scale=0.3)
    x = f64(rng.standard_normal((2, 5, 8)))
    after_attn = x + block.attn(block.ln1(x), is_causal=True)
    expected = after_attn + block.mlp(block.ln2(after_attn))
    np.testing.assert_allclose(block(x).data, expected.data, rtol=1e-13)
    assert isinstance(block.attn, MultiHeadAttention) and isinstance(block.mlp.gelu, GELU)


def test_block_without_causal_mask_lets_position_zero_see_the_future(rng):
    block = TransformerBlock(8, 2, seed=1)
    x = rng.standard_normal((1, 4, 8))
    changed = x.copy()
    changed[0, 3] = rng.standard_normal(8)       # (adding a constant would vanish in LayerNorm)
    causal = [block(Tensor(a)).data[0, 0] for a in (x, changed)]
    both_ways = [block(Tensor(a), is_causal=False).data[0, 0] for a in (x, changed)]
    assert np.array_equal(causal[0], causal[1])
    assert not np.allclose(both_ways[0], both_ways[1])


# ---- GPT forward vs PyTorch --------------------------------------------------------------

def test_gpt_logits_and_loss_match_a_torch_reimplementation(torch_gpt, tiny_config, float64, rng):
    model = float64(GPT(tiny_config()), rng, scale=0.3)     # larger weights than 0.02: a real test
    idx = rng.integers(0, 7, size=(3, 6))
    targets = rng.integers(0, 7, size=(3, 6))
    logits, loss = model(idx, targets)
    forward, _ = torch_gpt(model)
    expected_logits, expected_loss = forward(idx, targets)
    assert logits.shape == (3, 6, 7)
    np.testing.assert_allclose(logits.data, expected_logits.detach().numpy(), rtol=1e-6, atol=1e-9)
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-9)


def test_forward_without_targets_returns_logits_and_none(tiny_config, rng):
    model = GPT(tiny_config())
    logits, loss = model(Tensor(rng.integers(0, 7, size=(2, 4))))
    assert loss is None and logits.shape == (2, 4, 7)


def test_loss_is_the_mean_cross_entropy_of_every_position(tiny_config, rng):
    model = GPT(tiny_config())
    idx, targets = rng.integers(0, 7, size=(2, 2, 5))
    logits, loss = model(idx, targets)
    z = logits.data.astype(np.float64)
    log_probs = z - z.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, targets[..., None], axis=-1).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# ---- initialisation ----------------------------------------------------------------------

def test_initialisation_follows_gpt2_in_one_place():
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=4, n_head=4, n_embd=64, seed=0)
    model = GPT(config)
    assert model.wte.weight.data.std() == pytest.approx(0.02, rel=0.05)
    assert model.wpe.weight.data.std() == pytest.approx(0.02, rel=0.1)
    assert model.blocks[0].mlp.fc.weight.data.std() == pytest.approx(0.02, rel=0.05)
    assert model.lm_head.bias is None
    residual = np.concatenate([layer.weight.data.ravel() for b in model.blocks
                               for layer in (b.attn.out, b.mlp.proj)])
    assert residual.std() == pytest.approx(0.02 / math.sqrt(2 * 4), rel=0.05)
    for block in model.blocks:
        assert all(np.all(layer.bias.data == 0)
                   for layer in (block.attn.query, block.mlp.fc, block.mlp.proj))
        assert np.all(block.ln1.weight.data == 1) and np.all(block.ln2.bias.data == 0)
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_initial_loss_is_about_log_vocab_size(rng):
    model = GPT(GPTConfig(vocab_size=40, block_size=8, n_layer=2, n_head=2, n_embd=16, seed=0))
    idx, targets = rng.integers(0, 40, size=(2, 8, 8))
    _, loss = model(idx, targets)
    assert loss.item() == pytest.approx(math.log(40), abs=0.02)   # near-uniform predictions


def test_same_seed_same_model_and_different_seed_different_model(tiny_config):
    a, b, c = GPT(tiny_config(seed=3)), GPT(tiny_config(seed=3)), GPT(tiny_config(seed=4))
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a.wte.weight.data, c.wte.weight.data)


def test_parameters_and_their_count(tiny_config):
    model = GPT(tiny_config())
    V, S, L, C = 7, 6, 2, 8
    per_block = 2 * (2 * C) + 4 * (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert model.num_parameters() == V * C + S * C + L * per_block + 2 * C + C * V
    assert len(model.parameters()) == 2 + L * (4 + 8 + 4) + 2 + 1
    assert model.parameters()[0] is model.wte.weight
    assert model.parameters()[-1] is model.lm_head.weight


# ---- generate ----------------------------------------------------------------------------

def test_greedy_generation_is_deterministic_and_picks_the_argmax(tiny_config, rng):
    model = GPT(tiny_config(block_size=8))
    # a decisive model
    model.wte.weight.data = rng.normal(0, 1, model.wte.weight.shape).astype(np.float32)
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    out = model.generate(prompt, max_new_tokens=5, greedy=True)
    assert out.shape == (2, 8) and out.data.dtype.kind == "i"
    assert np.array_equal(out.data[:, :3], prompt)
    assert np.array_equal(out.data, model.generate(prompt, 5, greedy=True).data)
    for t in range(3, 8):                        # every new token is the argmax given its past
        logits, _ = model(out.data[:, :t])
        assert np.array_equal(out.data[:, t], logits.data[:, -1].argmax(axis=-1))


def test_generation_crops_the_context_to_block_size(tiny_config, rng):
    model = GPT(tiny_config(block_size=4))
    model.wte.weight.data = rng.normal(0, 1, model.wte.weight.shape).astype(np.float32)
    prompt = rng.integers(0, 7, size=(1, 10))                      # longer than block_size
    out = model.generate(prompt, max_new_tokens=3, greedy=True)
    assert out.shape == (1, 13) and np.array_equal(out.data[:, :10], prompt)
    logits, _ = model(prompt[:, -4:])                              # only the last 4 count
    assert out.data[0, 10] == logits.data[0, -1].argmax()
    # the first 6 tokens of the prompt cannot influence what comes next
    other = prompt.copy()
    other[0, :6] = (other[0, :6] + 1) % 7
    assert np.array_equal(model.generate(other, 3, greedy=True).data[:, 10:], out.data[:, 10:])


def test_sampling_is_repeatable_with_a_seed_and_top_k_1_is_greedy(tiny_config, rng):
    model = GPT(tiny_config(block_size=16))
    prompt = np.array([[0]])
    a = model.generate(prompt, 12, seed=5).data
    assert np.array_equal(a, model.generate(prompt, 12, seed=5).data)
    assert not np.array_equal(a, model.generate(prompt, 12, seed=6).data)
    np.testing.assert_array_equal(model.generate(prompt, 12, top_k=1, seed=7).data,
                                  model.generate(prompt, 12, greedy=True).data)


def test_sampling_follows_the_softmax_distribution(tiny_config):
    # a model whose next-token logits are fixed: zero weights everywhere except a head bias
    model = GPT(tiny_config(vocab_size=3, block_size=2))
    for p in model.parameters():
        p.data = np.zeros_like(p.data)
    model.ln_f.bias.data = np.array([1.0] + [0.0] * 7, dtype=np.float32)
    model.lm_head.weight.data[0] = np.log([0.2, 0.3, 0.5])        # logits = log p: softmax = p
    prompt = np.zeros((4000, 1), dtype=np.int64)
    drawn = model.generate(prompt, 1, seed=0).data[:, 1]
    freq = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.025)  # ~3.5 standard errors
    top2 = np.bincount(model.generate(prompt, 1, top_k=2, seed=0).data[:, 1], minlength=3)
    assert top2[0] == 0 and abs(top2[2] / 4000 - 0.625) < 0.025   # 0.5 / (0.3 + 0.5)
    cold = np.bincount(model.generate(prompt, 1, temperature=0.05, seed=0).data[:, 1], minlength=3)
    assert cold[2] >= 3990                                         # p^20, renormalised: ~1


def test_generate_restores_training_mode_and_records_no_graph(tiny_config):
    model = GPT(tiny_config(dropout=0.5))
    assert model.training
    greedy = [model.generate(np.array([[1, 2]]), 4, greedy=True).data for _ in range(2)]
    assert np.array_equal(*greedy)                                  # no dropout while generating
    assert model.training and model.blocks[0].attn.attn_dropout.training
    model.eval()
    model.generate(np.array([[1]]), 1)
    assert not model.training
    assert not model.generate(np.array([[1]]), 2).requires_grad


# ---- shapes --------------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("B,T", [(1, 1), (2, 3), (4, 6), (3, 5)])
def test_gpt_output_shapes(tiny_config, rng, B, T):
    model = GPT(tiny_config())
    logits, loss = model(rng.integers(0, 7, size=(B, T)), rng.integers(0, 7, size=(B, T)))
    assert logits.shape == (B, T, 7) and loss.shape == () and logits.dtype == np.float32


@pytest.mark.shape
@pytest.mark.parametrize("shape", [(1, 1, 8), (2, 5, 8), (3, 16, 8)])
def test_block_and_layernorm_keep_the_shape(rng, shape):
    x = Tensor(rng.standard_normal(shape))
    assert TransformerBlock(8, 4, seed=0)(x).shape == shape
    assert LayerNorm(8)(x).shape == shape
    assert MLP(8, seed=0)(x).shape == shape


@pytest.mark.shape
def test_layernorm_normalises_only_the_last_axis(rng):
    x = rng.standard_normal((2, 3, 4))
    y = LayerNorm(4)(f64(x)).data
    for index in np.ndindex(2, 3):               # each position on its own
        np.testing.assert_allclose(y[index], LayerNorm(4)(f64(x[index][None])).data[0], rtol=1e-12)


# ---- memory --------------------------------------------------------------------------------

@pytest.mark.memory_performance
def test_the_graph_is_freed_after_each_step(tiny_config, rng):
    model = GPT(tiny_config())
    idx, targets = rng.integers(0, 7, size=(2, 2, 6))
    _, loss = model(idx, targets)
    loss.backward()
    graph = weakref.ref(loss)
    inner = weakref.ref(loss._parents[0])
    del loss
    assert graph() is None and inner() is None       # no reference cycle keeps the graph alive
    assert all(p.grad._parents == () for p in model.parameters())   # gradients carry no graph


@pytest.mark.memory_performance
def test_repeated_training_steps_do_not_grow_memory(tiny_config, rng):
    model = GPT(tiny_config(block_size=16, n_embd=16))
    idx, targets = rng.integers(0, 7, size=(2, 4, 16))

    def step():
        _, loss = model(idx, targets)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 1e-3 * p.grad.data

    step()                                           # warm-up: first allocations, caches
    gc.collect()
    tracemalloc.start()
    try:
        step()
        after_one = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            step()
        after_eleven, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A step's graph (the peak above the resting memory) is about 1 MB here; keeping even
    # one graph per step would grow memory by that much each step. Ten steps leave only
    # Python's free lists (recycled small tuples: measured ~25 KB, bounded) behind.
    one_graph = peak - after_one
    assert 256 * 1024 < one_graph < 8 * 2**20
    assert after_eleven - after_one < 0.1 * one_graph


@pytest.mark.memory_performance
def test_no_grad_forward_keeps_no_graph(tiny_config, rng):
    model = GPT(tiny_config())
    with no_grad():
        logits, loss = model(rng.integers(0, 7, size=(2, 6)), rng.integers(0, 7, size=(2, 6)))
    assert not logits.requires_grad and logits._parents == () and loss._parents == ()


# ---- API and export --------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.models.transformer", API)
    assert all(issubclass(found[name], Module) for name in API if name != "GPTConfig")


@pytest.mark.api_consistency
def test_config_fields_and_defaults():
    assert [f.name for f in fields(GPTConfig)] == ["vocab_size", "block_size", "n_layer", "n_head",
                                                  "n_embd", "dropout", "seed"]
    assert asdict(GPTConfig()) == dict(vocab_size=65, block_size=32, n_layer=2, n_head=4,
                                       n_embd=64, dropout=0.0, seed=None)


@pytest.mark.api_consistency
def test_signatures():
    assert list(inspect.signature(GPT.forward).parameters) == ["self", "idx", "targets"]
    gen = inspect.signature(GPT.generate).parameters
    assert list(gen) == ["self", "idx", "max_new_tokens", "temperature", "top_k", "greedy", "seed"]
    assert (gen["temperature"].default, gen["top_k"].default, gen["greedy"].default) == \
        (1.0, None, False)
    assert list(inspect.signature(LayerNorm.__init__).parameters) == ["self", "dim", "eps"]
    assert list(inspect.signature(TransformerBlock.forward).parameters) == ["self", "x", "mask",
                                                                           "is_causal"]


@pytest.mark.api_consistency
def test_gpt_is_a_module_tree_of_earlier_layers(tiny_config):
    model = GPT(tiny_config())
    assert isinstance(model.lm_head, Linear) and isinstance(model.ln_f, LayerNorm)
    assert len(model.blocks) == 2 and all(isinstance(b, TransformerBlock) for b in model.blocks)
    assert model.eval() is model and not model.blocks[1].mlp.dropout.training
    assert model.train() is model and model.blocks[1].attn.resid_dropout.training
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
