"""Fixtures for the attention tests: copying a MultiHeadAttention into PyTorch's."""
import numpy as np
import pytest


def _as_float64(module):
    """Cast every parameter of a tinytorch module to float64, in place; returns it."""
    for parameter in module.parameters():
        parameter.data = parameter.data.astype(np.float64)
    return module


@pytest.fixture
def float64():
    return _as_float64


@pytest.fixture
def torch_mha(torch):
    """torch_mha(mha) -> torch.nn.MultiheadAttention(batch_first=True, float64) with
    mha's weights. Our Linear stores weight as (in, out); torch stores (out, in), and
    packs the q, k, v projections as the rows of in_proj_weight (3C, C)."""
    def copy(mha):
        C = mha.embed_dim
        has_bias = mha.out.bias is not None
        theirs = torch.nn.MultiheadAttention(C, mha.num_heads, bias=has_bias, batch_first=True,
                                             dtype=torch.float64)
        with torch.no_grad():
            projections = (mha.query, mha.key, mha.value)
            theirs.in_proj_weight.copy_(torch.tensor(
                np.concatenate([p.weight.data.T for p in projections]), dtype=torch.float64))
            theirs.out_proj.weight.copy_(torch.tensor(mha.out.weight.data.T, dtype=torch.float64))
            if has_bias:
                theirs.in_proj_bias.copy_(torch.tensor(
                    np.concatenate([p.bias.data for p in projections]), dtype=torch.float64))
                theirs.out_proj.bias.copy_(torch.tensor(mha.out.bias.data, dtype=torch.float64))
        return theirs
    return copy


@pytest.fixture
def random_biases():
    """random_biases(mha, rng): give every bias random values (zeros would hide bugs)."""
    def fill(mha, rng):
        for layer in (mha.query, mha.key, mha.value, mha.out):
            layer.bias.data = rng.standard_normal(layer.bias.shape).astype(layer.bias.dtype)
        return mha
    return fill
