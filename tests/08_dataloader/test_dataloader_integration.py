"""Module 08 with module 01: batches are ordinary constant Tensors that feed Tensor ops."""
import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import DataLoader, TensorDataset


def test_batches_are_constant_tensors_even_from_parameters():
    weights = Tensor(np.arange(12.0).reshape(6, 2), requires_grad=True)
    loader = DataLoader(TensorDataset(weights, np.arange(6)), batch_size=4)
    for x, y in loader:
        assert isinstance(x, Tensor) and not x.requires_grad and x.is_leaf
        assert not y.requires_grad and x.grad is None
    (sample, _) = loader.dataset[2]
    assert not sample.requires_grad and sample._parents == ()   # no graph back to `weights`


def test_batches_feed_matmul_and_reductions():
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    w = Tensor([[1.0], [-1.0]])
    outputs = [(xb @ w + 0.5).data for (xb,) in DataLoader(TensorDataset(x), batch_size=5)]
    assert [o.shape for o in outputs] == [(5, 1), (5, 1), (2, 1)]
    assert np.array_equal(np.concatenate(outputs)[:, 0], x[:, 0] - x[:, 1] + 0.5)   # all -0.5


def test_batch_means_combine_to_the_dataset_mean(rng):
    data = rng.standard_normal((50, 3)).astype(np.float32)
    loader = DataLoader(TensorDataset(data), batch_size=8, shuffle=True, seed=1)
    total = sum(xb.sum(axis=0).data.astype(np.float64) for (xb,) in loader)
    assert np.allclose(total / 50, data.astype(np.float64).mean(axis=0), atol=1e-6)


def test_label_batches_index_and_compare_as_integer_tensors():
    images = np.eye(4, dtype=np.float32)
    labels = np.array([3, 1, 0, 2])
    (x, y), = DataLoader(TensorDataset(images, labels), batch_size=4)
    assert y.dtype == np.int64
    picked = x[np.arange(4), y]                                # fancy indexing with a batch
    assert np.array_equal(picked.data, [0.0, 1.0, 0.0, 0.0])
    assert np.array_equal((y == Tensor([3, 0, 0, 2])).data, [True, False, True, True])


def test_a_hand_written_least_squares_step_on_batches():
    # y = 2 x0 - 3 x1 exactly; one pass of batch gradient steps with the closed-form
    # gradient (module 01 only, no autograd) moves w towards (2, -3).
    x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    y = x @ np.array([2.0, -3.0], dtype=np.float32)
    w = Tensor(np.zeros(2))
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    start = float(np.mean((x @ w.data - y) ** 2))
    for _ in range(20):
        for xb, yb in loader:
            residual = xb @ w - yb                             # (16,)
            w = w - 0.1 * (residual @ xb) * (2 / xb.shape[0])
    assert w.dtype == np.float32
    assert np.allclose(w.data, [2.0, -3.0], atol=1e-3)
    assert float(np.mean((x @ w.data - y) ** 2)) < 1e-5 * start
