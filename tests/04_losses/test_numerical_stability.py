"""Numerical stability of module 04: logits of +-1e4 (and far beyond) give finite,
exact losses with no overflow warnings (pytest turns any warning into an error),
and float64 inputs are computed to float64 precision."""
import math

import numpy as np
import pytest

from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


@pytest.mark.parametrize("big", [1e4, 1e30])
def test_cross_entropy_with_huge_logits_is_exact(big):
    logits = Tensor([[big, -big, 0.0], [-big, big, 0.0], [0.0, 0.0, 0.0]])
    loss = CrossEntropyLoss()(logits, [0, 0, 2]).item()
    # Row 0 is certain and right (0), row 1 certain and wrong (2 big), row 2 uniform (log 3).
    assert math.isfinite(loss)
    assert loss == pytest.approx((2 * big + math.log(3)) / 3, rel=1e-6)


@pytest.mark.parametrize("big", [1e4, 1e30])
def test_binary_cross_entropy_with_huge_logits_is_exact(big):
    logits = Tensor([big, -big, big, -big])
    loss = BinaryCrossEntropyLoss()(logits, Tensor([1.0, 0.0, 0.0, 1.0])).item()
    assert math.isfinite(loss)
    assert loss == pytest.approx(big / 2, rel=1e-6)  # two free, two cost `big` each


def test_huge_logits_match_torch(torch, rng):
    logits = (rng.normal(size=(16, 4)) * 1e4).astype(np.float32)
    classes = rng.integers(0, 4, size=16)
    labels = rng.integers(0, 2, size=(16, 4)).astype(np.float32)
    F = torch.nn.functional
    expected_ce = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(classes)).item()
    expected_bce = F.binary_cross_entropy_with_logits(torch.from_numpy(logits),
                                                      torch.from_numpy(labels)).item()
    loss = CrossEntropyLoss()(Tensor(logits), classes)
    assert loss.item() == pytest.approx(expected_ce, rel=1e-5)
    assert BinaryCrossEntropyLoss()(Tensor(logits), Tensor(labels)).item() == pytest.approx(
        expected_bce, rel=1e-5)


def test_cross_entropy_is_float64_accurate(rng):
    logits = rng.normal(size=(30, 7)) * 5
    target = rng.integers(0, 7, size=30)
    m = logits.max(axis=1, keepdims=True)
    log_sum_exp = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    expected = np.mean(log_sum_exp - logits[np.arange(30), target])
    loss = CrossEntropyLoss()(Tensor(logits, dtype=np.float64), target)
    assert loss.dtype == np.float64
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_ignores_a_common_shift_of_the_logits(rng):
    logits = rng.normal(size=(10, 4))
    target = rng.integers(0, 4, size=10)
    plain = CrossEntropyLoss()(Tensor(logits, dtype=np.float64), target).item()
    shifted = CrossEntropyLoss()(Tensor(logits + 1000.0, dtype=np.float64), target).item()
    assert shifted == pytest.approx(plain, rel=1e-10)


def test_binary_cross_entropy_is_float64_accurate(rng):
    logits = rng.normal(size=50) * 10
    labels = rng.uniform(0, 1, size=50)
    expected = np.mean(np.logaddexp(0, logits) - logits * labels)   # log(1 + e^x) - x y
    loss = BinaryCrossEntropyLoss()(Tensor(logits, dtype=np.float64),
                                    Tensor(labels, dtype=np.float64))
    assert loss.dtype == np.float64
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_binary_cross_entropy_agrees_with_the_textbook_formula_where_that_is_safe(rng):
    logits = rng.uniform(-8, 8, size=40)
    labels = rng.integers(0, 2, size=40).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    textbook = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    loss = BinaryCrossEntropyLoss()(Tensor(logits, dtype=np.float64),
                                    Tensor(labels, dtype=np.float64))
    assert loss.item() == pytest.approx(textbook, rel=1e-10)


def test_mse_of_large_float64_errors_is_finite_and_exact():
    loss = MSELoss()(Tensor([1e150, 0.0], dtype=np.float64), Tensor([0.0, 0.0], dtype=np.float64))
    assert loss.item() == pytest.approx(0.5e300, rel=1e-12)


def test_float32_cross_entropy_agrees_with_float64(rng):
    logits = rng.normal(size=(64, 10)) * 20
    target = rng.integers(0, 10, size=64)
    low = CrossEntropyLoss()(Tensor(logits.astype(np.float32)), target).item()
    high = CrossEntropyLoss()(Tensor(logits, dtype=np.float64), target).item()
    assert low == pytest.approx(high, rel=1e-5)
