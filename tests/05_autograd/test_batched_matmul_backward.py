"""Batched matrix multiplication backward: numpy's matmul conventions (leading batch
dimensions that broadcast, 1-D operands as vectors), checked against PyTorch, against
central finite differences and against the per-batch formula dA = G B^T, dB = A^T G."""
import numpy as np
import pytest

from tinytorch.core.autograd import gradcheck
from tinytorch.core.tensor import Tensor

# (shape of A, shape of B): equal batches, broadcast batches, 1-D operands, 4-D
SHAPES = [
    ((4, 2, 3), (4, 3, 5)),
    ((1, 2, 3), (4, 3, 5)),
    ((4, 2, 3), (1, 3, 5)),
    ((2, 3), (4, 3, 5)),
    ((4, 2, 3), (3, 5)),
    ((2, 1, 2, 3), (3, 3, 4)),
    ((2, 3, 2, 3), (2, 3, 3, 2)),
    ((3,), (4, 3, 5)),
    ((4, 2, 3), (3,)),
    ((2, 1, 3), (1, 3, 1)),
]
IDS = ["x".join(map(str, a)) + "@" + "x".join(map(str, b)) for a, b in SHAPES]


def operands(shape_a, shape_b, rng, dtype):
    a = Tensor(rng.standard_normal(shape_a), dtype=dtype, requires_grad=True)
    b = Tensor(rng.standard_normal(shape_b), dtype=dtype, requires_grad=True)
    return a, b


@pytest.mark.parametrize("shape_a, shape_b", SHAPES, ids=IDS)
def test_batched_matmul_matches_torch(shape_a, shape_b, torch, rng):
    a, b = operands(shape_a, shape_b, rng, np.float32)
    out = a @ b
    upstream = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)

    ta = torch.tensor(a.data, requires_grad=True)
    tb = torch.tensor(b.data, requires_grad=True)
    tout = ta @ tb
    tout.backward(torch.tensor(upstream))

    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape_a, shape_b", SHAPES, ids=IDS)
def test_batched_matmul_gradcheck(shape_a, shape_b, rng):
    a, b = operands(shape_a, shape_b, rng, np.float64)
    assert gradcheck(lambda x, y: x @ y, [a, b]) < 1e-6


@pytest.mark.parametrize("shape_a, shape_b", SHAPES[:7], ids=IDS[:7])
def test_batched_matmul_matches_independent_central_difference(shape_a, shape_b, rng,
                                                               central_difference):
    a, b = operands(shape_a, shape_b, rng, np.float64)
    batch = np.broadcast_shapes(shape_a[:-2], shape_b[:-2])
    w = rng.standard_normal(batch + (shape_a[-2], shape_b[-1]))
    (a @ b * Tensor(w, dtype=np.float64)).sum().backward()
    numeric_a = central_difference(lambda x: float((np.matmul(x, b.data) * w).sum()), a.data)
    numeric_b = central_difference(lambda y: float((np.matmul(a.data, y) * w).sum()), b.data)
    np.testing.assert_allclose(a.grad.data, numeric_a, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b.grad.data, numeric_b, rtol=1e-6, atol=1e-8)


@pytest.mark.shape
@pytest.mark.parametrize("shape_a, shape_b", SHAPES, ids=IDS)
def test_gradient_shapes_equal_operand_shapes(shape_a, shape_b, rng):
    a, b = operands(shape_a, shape_b, rng, np.float32)
    out = a @ b
    out.backward(np.ones(out.shape))
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    assert a.grad.dtype == b.grad.dtype == np.float32


def test_shared_matrix_gets_the_sum_of_per_batch_gradients(rng):
    # A (2, 3) used by each of 4 batch entries of B: dA = sum_i G_i B_i^T.
    a = Tensor(rng.standard_normal((2, 3)), dtype=np.float64, requires_grad=True)
    b = Tensor(rng.standard_normal((4, 3, 5)), dtype=np.float64, requires_grad=True)
    upstream = rng.standard_normal((4, 2, 5))
    (a @ b).backward(upstream)
    expected_a = sum(upstream[i] @ b.data[i].T for i in range(4))
    expected_b = np.stack([a.data.T @ upstream[i] for i in range(4)])
    np.testing.assert_allclose(a.grad.data, expected_a, rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, expected_b, rtol=1e-12)


def test_vector_times_batch_gradient_formula(rng):
    # v (3,) @ B (4, 3, 5) -> (4, 5): dv = sum_i B_i g_i, dB_i = outer(v, g_i)
    v = Tensor(rng.standard_normal(3), dtype=np.float64, requires_grad=True)
    b = Tensor(rng.standard_normal((4, 3, 5)), dtype=np.float64, requires_grad=True)
    upstream = rng.standard_normal((4, 5))
    (v @ b).backward(upstream)
    np.testing.assert_allclose(v.grad.data, sum(b.data[i] @ upstream[i] for i in range(4)),
                               rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, np.einsum("k,im->ikm", v.data, upstream), rtol=1e-12)


def test_attention_scores_backward_matches_torch(torch, rng):
    # scores = softmax(Q K^T / sqrt(d)) V, with (batch, heads, time, dim) tensors
    shape = (2, 3, 4, 5)
    q_data, k_data, v_data = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    upstream = rng.standard_normal(shape).astype(np.float32)

    q, k, v = (Tensor(d, requires_grad=True) for d in (q_data, k_data, v_data))
    scores = q @ k.transpose(-2, -1) / np.sqrt(5)
    shifted = scores - scores.max(axis=-1, keepdims=True).detach()
    weights = shifted.exp() / shifted.exp().sum(axis=-1, keepdims=True)
    (weights @ v).backward(upstream)

    tq, tk, tv = (torch.tensor(d, requires_grad=True) for d in (q_data, k_data, v_data))
    tweights = torch.softmax(tq @ tk.transpose(-2, -1) / np.sqrt(5), dim=-1)
    (tweights @ tv).backward(torch.tensor(upstream))
    for ours, theirs in ((q, tq), (k, tk), (v, tv)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_batched_matmul_operand_used_on_both_sides(rng):
    # x (3, 2, 2) @ x: each entry gets its contributions as left and as right operand
    x = Tensor(rng.standard_normal((3, 2, 2)), dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda t: t @ t, [x]) < 1e-6
    x.grad = None
    upstream = np.ones((3, 2, 2))
    (x @ x).backward(upstream)
    xt = np.swapaxes(x.data, -1, -2)
    np.testing.assert_allclose(x.grad.data, upstream @ xt + xt @ upstream, rtol=1e-12)
