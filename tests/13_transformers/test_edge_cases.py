"""Edge cases: invalid configurations, token ids, targets and generate() arguments raise
clear errors; single tokens, single rows and zero new tokens work."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig, LayerNorm


@pytest.mark.parametrize("changes,message", [
    (dict(n_embd=10, n_head=4), "n_embd 10 is not divisible by n_head 4"),
    (dict(vocab_size=0), "vocab_size must be a positive integer"),
    (dict(block_size=2.5), "block_size must be a positive integer"),
    (dict(n_layer=True), "n_layer must be a positive integer"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
])
def test_invalid_configurations_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**changes)


def test_gpt_needs_a_config():
    with pytest.raises(TypeError, match="GPT expects a GPTConfig"):
        GPT(dict(vocab_size=5))


def test_sequences_longer_than_block_size_are_rejected(tiny_config):
    model = GPT(tiny_config(block_size=4))
    with pytest.raises(ValueError, match="sequence length 5 is longer than block_size 4"):
        model(np.zeros((1, 5), dtype=np.int64))


@pytest.mark.parametrize("idx,message", [
    (np.array([[0, 7]]), r"token ids in \[0, 7\), got values from 0 to 7"),
    (np.array([[-1, 2]]), r"token ids in \[0, 7\)"),
    (np.array([[0.0, 1.0]]), "integer token ids"),
    (np.array([0, 1, 2]), r"must be a \(B, T\) array"),
])
def test_bad_token_ids_are_rejected(tiny_config, idx, message):
    with pytest.raises(ValueError, match=message):
        GPT(tiny_config())(idx)


def test_targets_must_match_the_inputs(tiny_config):
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match=r"targets must have the shape of idx \(1, 3\)"):
        model(np.array([[1, 2, 3]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="targets must be token ids"):
        model(np.array([[1, 2, 3]]), np.array([[1, 2, 9]]))


def test_a_single_token_and_a_single_row_work(tiny_config):
    model = GPT(tiny_config())
    logits, loss = model(np.array([[3]]), np.array([[4]]))
    assert logits.shape == (1, 1, 7) and np.isfinite(loss.item())


def test_zero_new_tokens_returns_the_prompt(tiny_config):
    prompt = np.array([[1, 2, 3]])
    out = GPT(tiny_config()).generate(Tensor(prompt), max_new_tokens=0)
    assert isinstance(out, Tensor) and np.array_equal(out.data, prompt)


@pytest.mark.parametrize("kwargs,message", [
    (dict(max_new_tokens=-1), "max_new_tokens must be a non-negative integer"),
    (dict(max_new_tokens=2.0), "max_new_tokens must be a non-negative integer"),
    (dict(max_new_tokens=2, temperature=0.0), "temperature must be positive"),
    (dict(max_new_tokens=2, top_k=0), r"top_k must be in \[1, 7\]"),
    (dict(max_new_tokens=2, top_k=8), r"top_k must be in \[1, 7\]"),
])
def test_invalid_generate_arguments_are_rejected(tiny_config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GPT(tiny_config()).generate(np.array([[1]]), **kwargs)


def test_generate_needs_some_context_of_valid_ids(tiny_config):
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match="at least one token of context"):
        model.generate(np.zeros((1, 0), dtype=np.int64), 3)
    with pytest.raises(ValueError, match="token ids"):
        model.generate(np.array([[9]]), 3)


def test_layernorm_rejects_wrong_widths_and_bad_arguments(rng):
    ln = LayerNorm(4)
    with pytest.raises(ValueError, match="last dimension is 4, got shape"):
        ln(Tensor(rng.standard_normal((2, 3))))
    with pytest.raises(TypeError, match="LayerNorm expects a Tensor"):
        ln(np.zeros(4))
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        LayerNorm(0)
    with pytest.raises(ValueError, match="eps must be positive"):
        LayerNorm(4, eps=0.0)


def test_layernorm_of_width_one_outputs_the_bias():
    ln = LayerNorm(1)
    ln.bias.data[:] = 0.25
    assert ln(Tensor([[3.0], [-7.0]])).data.tolist() == [[0.25], [0.25]]
