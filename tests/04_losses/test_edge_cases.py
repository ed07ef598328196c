"""Edge cases and errors of module 04: perfect and hopeless predictions, and the
mistakes a loss must catch (shape mismatches, bad class indices, bad labels)."""
import math

import numpy as np
import pytest

from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

# ---- perfect and hopeless predictions ------------------------------------------------------


def test_mse_of_a_perfect_prediction_is_exactly_zero(rng):
    values = rng.normal(size=(5, 3)).astype(np.float32)
    assert MSELoss()(Tensor(values), Tensor(values.copy())).item() == 0.0


def test_confident_correct_cross_entropy_is_near_zero():
    logits = Tensor([[50.0, 0.0, 0.0], [0.0, 0.0, 50.0]])
    loss = CrossEntropyLoss()(logits, [0, 2]).item()
    assert 0.0 <= loss < 1e-6                        # exactly: log(1 + 2 e^-50) ~ 4e-22


def test_confident_correct_binary_cross_entropy_is_tiny_and_accurate():
    loss = BinaryCrossEntropyLoss()(Tensor([30.0, -30.0]), Tensor([1.0, 0.0])).item()
    assert loss == pytest.approx(math.log1p(math.exp(-30)), rel=1e-5)   # 9.36e-14, not 0


def test_confidently_wrong_predictions_cost_their_margin():
    assert CrossEntropyLoss()(Tensor([[0.0, 1e4]]), [0]).item() == 1e4
    assert BinaryCrossEntropyLoss()(Tensor([-1e4]), Tensor([1.0])).item() == 1e4


def test_uniform_logits_cost_log_of_the_class_count():
    loss = CrossEntropyLoss()(Tensor(np.zeros((4, 10))), [0, 3, 7, 9]).item()
    assert loss == pytest.approx(math.log(10), rel=1e-6)


def test_a_single_class_costs_nothing():
    assert CrossEntropyLoss()(Tensor([[3.0], [-2.0]]), [0, 0]).item() == 0.0


# ---- mistakes the losses catch ----------------------------------------------------------------

@pytest.mark.parametrize("loss_class", [MSELoss, BinaryCrossEntropyLoss])
def test_shape_mismatch_names_both_shapes(loss_class):
    # (4, 1) against (4,) would otherwise broadcast to (4, 4) and compare the wrong pairs.
    with pytest.raises(ValueError,
                       match=r"prediction shape \(4, 1\) and target shape \(4,\) must match"):
        loss_class()(Tensor(np.zeros((4, 1))), Tensor(np.zeros(4)))


@pytest.mark.parametrize("target, low, high", [([0, 3], 0, 3), ([-1, 2], -1, 2)])
def test_class_index_out_of_range(target, low, high):
    with pytest.raises(ValueError, match=rf"in \[0, 3\), got values from {low} to {high}"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3))), np.array(target))


@pytest.mark.parametrize("target", [np.array([0.0, 1.0]), Tensor([0.0, 1.0]),
                                    np.array([True, False]),
                                    np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])])   # one-hot
def test_non_integer_class_targets_are_a_type_error(target):
    with pytest.raises(TypeError, match="targets must be integer class indices, got dtype"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3))), target)


def test_class_targets_of_the_wrong_shape():
    with pytest.raises(ValueError,
                       match=r"logits \(2, 3\) need targets of shape \(2,\), got \(2, 1\)"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3))), np.array([[0], [1]]))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4)])
def test_cross_entropy_needs_two_dimensional_logits(shape):
    with pytest.raises(ValueError, match=r"expects logits of shape \(N, C\)"):
        CrossEntropyLoss()(Tensor(np.zeros(shape)), np.zeros(shape[0], dtype=int))


@pytest.mark.parametrize("bad", [2.0, -0.5, 1.0001])
def test_binary_targets_outside_zero_one(bad):
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]"):
        BinaryCrossEntropyLoss()(Tensor([0.0, 0.0]), Tensor([0.0, bad]))


def test_binary_targets_at_exactly_zero_and_one_are_fine():
    loss = BinaryCrossEntropyLoss()(Tensor([0.0, 0.0]), Tensor([0.0, 1.0])).item()
    assert loss == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize("loss, pred, target", [
    (MSELoss(), np.zeros((0, 3)), np.zeros((0, 3))),
    (CrossEntropyLoss(), np.zeros((0, 4)), np.zeros(0, dtype=np.int64)),
    (BinaryCrossEntropyLoss(), np.zeros(0), np.zeros(0)),
])
def test_empty_batch_is_a_clear_error_not_nan(loss, pred, target):
    with pytest.raises(ValueError, match=r"empty batch \(prediction shape \(0,"):
        loss(Tensor(pred), Tensor(target) if target.dtype.kind == "f" else target)


@pytest.mark.parametrize("loss, target", [("MSELoss", [1, 3]), ("BinaryCrossEntropyLoss", [1, 0]),
                                          ("CrossEntropyLoss", [0])])
def test_integer_predictions_are_refused_as_in_pytorch(torch, loss, target):
    from tinytorch.core import losses
    pred = [[1, 2]] if loss == "CrossEntropyLoss" else [1, 2]
    theirs = {"MSELoss": torch.nn.functional.mse_loss,
              "BinaryCrossEntropyLoss": torch.nn.functional.binary_cross_entropy_with_logits,
              "CrossEntropyLoss": torch.nn.functional.cross_entropy}[loss]
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):   # torch 2.13
        theirs(torch.tensor(pred), torch.tensor(target))
    ours = target if loss == "CrossEntropyLoss" else Tensor(target)
    message = f"{loss}: the prediction must be floating point, got int64"
    with pytest.raises(TypeError, match=message):
        getattr(losses, loss)()(Tensor(pred), ours)
