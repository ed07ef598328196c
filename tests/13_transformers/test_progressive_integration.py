"""Progressive integration: the transformer loads exactly its closure of earlier
modules and is made of their pieces (02 GELU, 03 Linear/Dropout/Module, 04
CrossEntropyLoss, 05 autograd, 11 Embedding/LearnedPositionalEmbedding,
12 MultiHeadAttention)."""
import numpy as np

from tinytorch.core.activations import GELU
from tinytorch.core.layers import Dropout, Linear, Module
from tinytorch.models.attention import MultiHeadAttention
from tinytorch.models.transformer import GPT, MLP, TransformerBlock
from tinytorch.text.embeddings import Embedding, LearnedPositionalEmbedding


def test_importing_the_transformer_loads_exactly_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.models.transformer") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.losses", "tinytorch.core.autograd", "tinytorch.text.embeddings",
        "tinytorch.models.attention", "tinytorch.models.transformer"}


def test_blocks_are_built_from_earlier_modules(tiny_config):
    model = GPT(tiny_config(dropout=0.1))
    block = model.blocks[0]
    assert isinstance(block, TransformerBlock) and isinstance(block, Module)
    assert isinstance(block.attn, MultiHeadAttention)
    assert block.attn.num_heads == 2 and block.attn.embed_dim == 8
    assert isinstance(block.mlp, MLP) and isinstance(block.mlp.gelu, GELU)
    assert isinstance(block.mlp.fc, Linear) and isinstance(block.mlp.dropout, Dropout)
    assert block.mlp.dropout.p == 0.1 and block.attn.attn_dropout.p == 0.1


def test_parameters_are_collected_by_module_03_through_lists_of_blocks(tiny_config):
    model = GPT(tiny_config(n_layer=3))
    found = {id(p) for p in model.parameters()}
    for block in model.blocks:
        assert {id(p) for p in block.parameters()} <= found
    assert len(found) == len(model.parameters()) == 2 + 3 * 16 + 2 + 1


def test_backward_from_module_05_trains_a_step_with_plain_sgd(tiny_config, rng):
    model = GPT(tiny_config())
    idx, targets = rng.integers(0, 7, size=(2, 4, 6))
    losses = []
    for _ in range(5):
        _, loss = model(idx, targets)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:]))          # every step goes down
    assert losses[-1] < losses[0] - 0.1            # measured: 1.961 -> 1.818


def test_token_and_position_vectors_come_from_module_11(tiny_config, rng):
    model = GPT(tiny_config())
    assert isinstance(model.wte, Embedding) and isinstance(model.wpe, LearnedPositionalEmbedding)
    assert model.wte.weight.shape == (7, 8) and model.wpe.weight.shape == (6, 8)
    idx = rng.integers(0, 7, size=(2, 5))
    x = model.wpe(model.wte(idx))                                   # (B, T, C)
    expected = model.wte.weight.data[idx] + model.wpe.weight.data[:5]
    np.testing.assert_array_equal(x.data, expected)
