"""Numerical stability: bounded sinusoids, long tables computed precisely, exact gradient
accumulation, extreme table values."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)


def test_sinusoidal_values_are_bounded_by_one():
    table = sinusoidal_table(10_000, 512)
    assert np.all(np.isfinite(table))
    assert table.min() >= -1.0 and table.max() <= 1.0
    assert table.min() < -0.999 and table.max() > 0.999    # the range is actually used


def test_long_tables_are_accurate_at_far_positions():
    # angles up to 2e5 radians: computed in float64, only the final value is rounded to
    # float32. (sin of the float32 angle would be off by up to ~0.008 here.)
    max_len, dim = 200_000, 16
    table = sinusoidal_table(max_len, dim)
    pos = np.array([199_999, 123_457, 65_537], dtype=np.float64)
    i = np.arange(dim)
    angles = pos[:, None] / 10000 ** (2 * (i // 2) / dim)
    expected = np.where(i % 2 == 0, np.sin(angles), np.cos(angles))
    np.testing.assert_allclose(table[pos.astype(int)], expected, rtol=0, atol=1e-7)


def test_rows_of_the_table_stay_distinct_far_out():
    table = sinusoidal_table(100_000, 64).astype(np.float64)
    gaps = np.linalg.norm(np.diff(table[-1000:], axis=0), axis=1)
    assert gaps.min() > 0.5                                 # neighbours never collapse


def test_encoding_keeps_the_input_dtype():
    encode = SinusoidalPositionalEncoding(16, 4)
    assert encode(Tensor(np.zeros((3, 4), dtype=np.float32))).dtype == np.float32
    assert encode(Tensor(np.zeros((3, 4)), dtype=np.float64)).dtype == np.float64


def test_many_repeats_of_one_id_accumulate_exactly():
    embed = Embedding(3, 2, seed=0)
    ids = np.ones(100_000, dtype=np.int64)
    embed(ids).sum().backward()
    assert embed.weight.grad.dtype == np.float32
    assert embed.weight.grad.data.tolist() == [[0, 0], [100_000, 100_000], [0, 0]]


@pytest.mark.parametrize("padding_idx", [None, 0])
def test_huge_and_tiny_table_values_are_looked_up_exactly(padding_idx):
    embed = Embedding(3, 2, padding_idx=padding_idx, seed=0)
    embed.weight.data[:] = [[3e38, -3e38], [1e-45, -1e-45], [1.5, 0.0]]
    out = embed([[0, 1, 2, 0]])
    assert np.all(np.isfinite(out.data))
    np.testing.assert_array_equal(out.data[0], embed.weight.data[[0, 1, 2, 0]])


def test_learned_positions_on_large_inputs_stay_finite(rng):
    positions = LearnedPositionalEmbedding(64, 8, seed=0)
    x = Tensor((rng.standard_normal((4, 64, 8)) * 1e30).astype(np.float32), requires_grad=True)
    out = positions(x)
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert np.all(np.isfinite(out.data))
    assert positions.weight.grad.data.tolist() == np.full((64, 8), 4.0).tolist()
