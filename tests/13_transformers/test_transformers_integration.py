"""Integration: GPT trained end to end with modules 01-05 and 12 (Tensor ops, Linear,
GELU, CrossEntropyLoss, autograd, MultiHeadAttention): it memorises a sequence and
generates it back; the causal property holds for the whole model; blocks work as an
encoder with padding masks."""
import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import MultiHeadAttention, length_mask, padding_mask
from tinytorch.models.transformer import GPT, TransformerBlock
from tinytorch.text.embeddings import Embedding, SinusoidalPositionalEncoding


def test_gpt_memorises_a_sequence_and_generates_it_back(tiny_config, adam):
    model = GPT(tiny_config(vocab_size=10, block_size=10, n_embd=16, n_head=2))
    sequence = np.array([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]])
    x, y = sequence[:, :-1], sequence[:, 1:]
    optimizer, losses = adam(model.parameters(), lr=1e-2), []
    for _ in range(60):
        _, loss = model(x, y)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert abs(losses[0] - np.log(10)) < 0.05 and losses[-1] < 0.05
    # "1" is followed by 4 once and by 5 once, so the prompt needs the token before it
    out = model.generate(sequence[:, :2], max_new_tokens=9, greedy=True)
    np.testing.assert_array_equal(out.data, sequence)


def test_whole_model_is_causal(tiny_config, rng):
    # changing the tokens after position t leaves the logits at 0..t exactly unchanged
    model = GPT(tiny_config(block_size=8))
    model.wte.weight.data = rng.normal(0, 1, model.wte.weight.shape).astype(np.float32)
    idx = rng.integers(0, 7, size=(2, 8))
    logits, _ = model(idx)
    for t in range(7):
        changed = idx.copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + rng.integers(0, 6, size=(2, 7 - t))) % 7
        assert np.all(changed[:, t + 1:] != idx[:, t + 1:])
        other, _ = model(changed)
        np.testing.assert_array_equal(other.data[:, :t + 1], logits.data[:, :t + 1])
        assert not np.allclose(other.data[:, t + 1:], logits.data[:, t + 1:])


def test_loss_is_module_04_cross_entropy_on_the_flattened_logits(tiny_config, rng):
    model = GPT(tiny_config())
    idx, targets = rng.integers(0, 7, size=(2, 3, 5))
    logits, loss = model(idx, targets)
    expected = CrossEntropyLoss()(logits.reshape(15, 7), targets.reshape(15))
    assert loss.item() == expected.item()


def test_lm_head_is_a_linear_over_the_final_layernorm(tiny_config, rng):
    model = GPT(tiny_config())
    idx = rng.integers(0, 7, size=(1, 4))
    x = model.wpe(model.wte(idx))
    for block in model.blocks:
        x = block(x)
    logits, _ = model(idx)
    assert isinstance(model.lm_head, Linear)
    np.testing.assert_array_equal(logits.data, model.lm_head(model.ln_f(x)).data)


def test_transformer_block_as_an_encoder_ignores_padding(rng):
    block = TransformerBlock(8, 2, seed=0)
    real = rng.standard_normal((1, 3, 8))
    padded = np.concatenate([real, rng.standard_normal((1, 2, 8)) * 5], axis=1)
    alone = block(Tensor(real), is_causal=False)
    batch = block(Tensor(padded), mask=length_mask([3], 5), is_causal=False)
    np.testing.assert_allclose(batch.data[:, :3], alone.data, rtol=1e-5, atol=1e-6)


def test_dropout_model_in_eval_mode_equals_the_model_without_dropout(tiny_config, rng):
    plain, dropping = GPT(tiny_config(dropout=0.0)), GPT(tiny_config(dropout=0.3))
    idx = rng.integers(0, 7, size=(2, 6))
    assert not np.allclose(dropping(idx)[0].data, plain(idx)[0].data)    # training: dropped
    dropping.eval()
    np.testing.assert_array_equal(dropping(idx)[0].data, plain(idx)[0].data)


def test_evaluation_under_no_grad_matches_the_training_forward(tiny_config, rng):
    model = GPT(tiny_config())
    idx, targets = rng.integers(0, 7, size=(2, 2, 6))
    logits, loss = model(idx, targets)
    with no_grad():
        eval_logits, eval_loss = model(Tensor(idx), Tensor(targets))
    np.testing.assert_array_equal(eval_logits.data, logits.data)
    assert eval_loss.item() == loss.item() and not eval_loss.requires_grad

def test_attention_over_module_11_embeddings_with_padding(rng):
    embed = Embedding(12, 8, padding_idx=0, seed=0)
    positions = SinusoidalPositionalEncoding(16, 8)
    mha = MultiHeadAttention(8, 2, seed=1)
    ids = np.array([[5, 3, 9, 0, 0], [7, 0, 0, 0, 0]])              # 0 = padding
    x = positions(embed(ids))                                       # (B, T, C)
    y, weights = mha(x, mask=padding_mask(ids, pad_id=0), return_weights=True)
    assert y.shape == (2, 5, 8)
    assert np.all(weights.data[0, :, :, 3:] == 0) and np.all(weights.data[1, :, :, 1:] == 0)
    # the real tokens' outputs are those of the unpadded sequence
    alone = mha(positions(embed(ids[:1, :3])))
    np.testing.assert_allclose(y.data[0, :3], alone.data[0], rtol=1e-5, atol=1e-6)
    y.sum().backward()
    assert np.all(embed.weight.grad.data[0] == 0)                   # padding row: no gradient
    assert np.abs(embed.weight.grad.data[[3, 5, 7, 9]]).min(axis=1).max() > 0
