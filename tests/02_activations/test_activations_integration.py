"""Activations working on the results of Tensor operations, and feeding them."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor


def test_relu_of_affine_layer_matches_numpy(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    hidden = ReLU()(Tensor(x) @ Tensor(w) + Tensor(b))
    assert hidden.shape == (5, 4) and hidden.dtype == np.float32
    np.testing.assert_allclose(hidden.data, np.maximum(x @ w + b, 0), rtol=1e-6, atol=1e-7)


def test_softmax_of_batched_matmul_scores(rng):
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    k = rng.standard_normal((2, 5, 4)).astype(np.float32)
    weights = Softmax()(Tensor(q) @ Tensor(k).transpose(-2, -1) / 2.0)   # (2, 3, 5)
    scores = q @ k.transpose(0, 2, 1) / 2.0
    expected = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    assert weights.shape == (2, 3, 5)
    np.testing.assert_allclose(weights.data, expected, rtol=1e-5)


def test_activations_chain(rng):
    x = rng.standard_normal((4, 6))
    out = LogSoftmax()(GELU()(Tanh()(Sigmoid()(ReLU()(Tensor(x, dtype=np.float64))))))
    step = 1 / (1 + np.exp(-np.maximum(x, 0)))
    step = np.tanh(step)
    step = 0.5 * step * (1 + np.tanh(np.sqrt(2 / np.pi) * (step + 0.044715 * step ** 3)))
    expected = step - np.log(np.exp(step).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_activation_outputs_feed_tensor_ops():
    probs = Softmax()(Tensor([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]]))
    best = probs.max(axis=1)
    confident = probs > 0.5
    np.testing.assert_allclose(best.data, [0.66524096, 0.98670329], rtol=1e-6)
    np.testing.assert_array_equal(confident.data, [[False, True, False], [False, False, True]])
    np.testing.assert_allclose(probs[:, 2].data, [0.24472847, 0.98670329], rtol=1e-6)


def test_activation_on_indexed_and_reshaped_views():
    x = Tensor(np.arange(-6.0, 6.0).reshape(3, 4))
    np.testing.assert_array_equal(ReLU()(x[1:, ::2]).data, [[0.0, 0.0], [2.0, 4.0]])
    np.testing.assert_array_equal(ReLU()(x.reshape(12)).reshape(3, 4).data, ReLU()(x).data)


def test_mask_then_softmax_ignores_masked_entries():
    # attention-style masking: -inf scores get probability exactly 0
    scores = Tensor([[2.0, 1.0, 0.5], [0.3, 0.3, 0.3]])
    mask = Tensor([[0.0, 0.0, -np.inf], [0.0, -np.inf, -np.inf]])
    probs = Softmax()(scores + mask)
    e = np.exp([2.0, 1.0])
    np.testing.assert_allclose(probs.data, [[*(e / e.sum()), 0.0], [1.0, 0.0, 0.0]], rtol=1e-6)


@pytest.mark.parametrize("make", [ReLU, Sigmoid, Tanh, GELU])
def test_elementwise_activations_commute_with_reshape_and_transpose(rng, make):
    x = Tensor(rng.standard_normal((2, 3, 4)))
    act = make()
    np.testing.assert_array_equal(act(x.transpose(0, 2)).data, act(x).transpose(0, 2).data)
    np.testing.assert_array_equal(act(x.reshape(6, 4)).data, act(x).reshape(6, 4).data)
