"""Core behaviour of module 04: MSELoss, CrossEntropyLoss and BinaryCrossEntropyLoss
against hand computation and PyTorch, their output shapes, and their shared interface."""
import math

import numpy as np
import pytest

from tinytorch.core.layers import Module
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

# ---- hand-computed values ----------------------------------------------------------------


def test_mse_hand_computed():
    loss = MSELoss()(Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[1.0, 0.0], [5.0, 4.0]]))
    assert loss.item() == 2.0                        # squares 0, 4, 4, 0: mean 2


def test_cross_entropy_hand_computed():
    # Row 0: logits log([1, 2, 5]) give probabilities [1/8, 2/8, 5/8]; class 2 costs log(8/5).
    # Row 1: equal logits give 1/3 each; any class costs log 3.
    logits = Tensor([np.log([1.0, 2.0, 5.0]), [0.0, 0.0, 0.0]])
    loss = CrossEntropyLoss()(logits, np.array([2, 1]))
    assert loss.item() == pytest.approx((math.log(8 / 5) + math.log(3)) / 2, rel=1e-6)


def test_binary_cross_entropy_hand_computed():
    # logit log 3 means p = 3/4: label 1 costs log(4/3), label 0 costs log 4; logit 0 costs log 2.
    logits = Tensor([math.log(3), math.log(3), 0.0])
    loss = BinaryCrossEntropyLoss()(logits, Tensor([1.0, 0.0, 1.0]))
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(4) + math.log(2)) / 3, rel=1e-6)


def test_binary_cross_entropy_with_soft_targets():
    loss = BinaryCrossEntropyLoss()(Tensor([math.log(3)]), Tensor([0.25]))
    assert loss.item() == pytest.approx(0.25 * math.log(4 / 3) + 0.75 * math.log(4), rel=1e-6)


# ---- against PyTorch ------------------------------------------------------------------------

def test_mse_matches_torch(torch, rng):
    pred, target = rng.normal(size=(2, 16, 3)).astype(np.float32)
    expected = torch.nn.functional.mse_loss(torch.from_numpy(pred), torch.from_numpy(target))
    loss = MSELoss()(Tensor(pred), Tensor(target))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_cross_entropy_matches_torch(torch, rng):
    logits = (rng.normal(size=(20, 6)) * 3).astype(np.float32)
    target = rng.integers(0, 6, size=20)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target))
    loss = CrossEntropyLoss()(Tensor(logits), target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_binary_cross_entropy_matches_torch(torch, rng):
    logits = (rng.normal(size=(10, 4)) * 4).astype(np.float32)
    target = rng.uniform(0, 1, size=(10, 4)).astype(np.float32)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits),
                                                                    torch.from_numpy(target))
    loss = BinaryCrossEntropyLoss()(Tensor(logits), Tensor(target))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ---- targets in any form --------------------------------------------------------------------

def test_cross_entropy_targets_as_list_array_or_tensor():
    logits = Tensor([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    values = [CrossEntropyLoss()(logits, target).item()
              for target in ([1, 2], np.array([1, 2]), Tensor([1, 2]),
                             np.array([1, 2], dtype=np.uint8))]
    assert values == [values[0]] * 4


def test_mse_and_bce_accept_list_and_integer_targets():
    pred = Tensor([0.5, -1.0, 2.0])
    assert MSELoss()(pred, [1, 0, 2]).item() == pytest.approx((0.25 + 1.0 + 0.0) / 3)
    as_bool = BinaryCrossEntropyLoss()(pred, np.array([True, False, True])).item()
    assert as_bool == BinaryCrossEntropyLoss()(pred, [1.0, 0.0, 1.0]).item()


def test_mse_is_symmetric():
    a, b = Tensor([1.0, 5.0, -2.0]), Tensor([0.0, 2.0, 2.0])
    assert MSELoss()(a, b).item() == MSELoss()(b, a).item() == pytest.approx(26 / 3)


# ---- shapes ------------------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("batch", [1, 7, 256])
def test_cross_entropy_over_batch_sizes(torch, rng, batch):
    logits = rng.normal(size=(batch, 5)).astype(np.float32)
    target = rng.integers(0, 5, size=batch)
    loss = CrossEntropyLoss()(Tensor(logits), target)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target))
    assert loss.shape == () and loss.dtype == np.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.shape
@pytest.mark.parametrize("shape", [(1,), (1, 1), (64,), (64, 1), (8, 5), (2, 3, 4)])
def test_mse_and_bce_over_shapes(torch, rng, shape):
    pred = rng.normal(size=shape).astype(np.float32)
    target = rng.integers(0, 2, size=shape).astype(np.float32)
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    mse = MSELoss()(Tensor(pred), Tensor(target))
    bce = BinaryCrossEntropyLoss()(Tensor(pred), Tensor(target))
    assert mse.shape == bce.shape == ()
    assert mse.item() == pytest.approx(torch.nn.functional.mse_loss(p, t).item(), rel=1e-5)
    assert bce.item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(p, t).item(), rel=1e-5)


@pytest.mark.shape
def test_loss_is_the_mean_not_the_sum():
    """Repeating a batch does not change a mean loss."""
    logits = Tensor([[2.0, 0.0], [0.0, 1.0]])
    twice = Tensor(np.concatenate([logits.data, logits.data]))
    assert CrossEntropyLoss()(logits, [0, 0]).item() == pytest.approx(
        CrossEntropyLoss()(twice, [0, 0, 0, 0]).item(), rel=1e-6)


# ---- one interface for every loss --------------------------------------------------------

CASES = {   # loss class, a prediction, a target
    "MSELoss": (MSELoss, Tensor([[0.5, 1.0], [2.0, -1.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])),
    "CrossEntropyLoss": (CrossEntropyLoss, Tensor([[0.5, 1.0], [2.0, -1.0]]), np.array([1, 0])),
    "BinaryCrossEntropyLoss": (BinaryCrossEntropyLoss, Tensor([[0.5, 1.0], [2.0, -1.0]]),
                               np.array([[0.0, 1.0], [1.0, 1.0]])),
}


@pytest.mark.api_consistency
@pytest.mark.parametrize("name", CASES)
def test_every_loss_is_a_parameterless_module(name):
    loss_class, _, _ = CASES[name]
    loss = loss_class()
    assert isinstance(loss, Module)
    assert loss.parameters() == [] and loss.children() == []


@pytest.mark.api_consistency
@pytest.mark.parametrize("name", CASES)
def test_every_loss_is_called_as_loss_of_prediction_and_target(name):
    loss_class, pred, target = CASES[name]
    loss = loss_class()
    value = loss(pred, target)
    assert isinstance(value, Tensor) and value.shape == () and value.dtype == np.float32
    assert value.item() == loss.forward(pred, target).item()
    assert value.item() == loss(pred, Tensor(target)).item() == loss(pred, target.tolist()).item()
    assert loss.eval()(pred, target).item() == value.item()      # no train/eval difference
    assert value.item() > 0


@pytest.mark.api_consistency
@pytest.mark.parametrize("name", CASES)
def test_every_loss_names_itself_when_the_prediction_is_not_a_tensor(name):
    loss_class, pred, target = CASES[name]
    with pytest.raises(TypeError, match=f"{name}: the prediction must be a Tensor, got ndarray"):
        loss_class()(pred.data, target)
