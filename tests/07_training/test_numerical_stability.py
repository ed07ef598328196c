"""Numerical stability: divergence is caught and located, clipping bounds the damage of a bad
batch and copes with huge gradients, schedules stay in range over long horizons, epoch
averages are accurate, checkpoints keep every bit."""
import math

import numpy as np
import pytest

from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (
    ArrayBatches,
    CosineAnnealingLR,
    StepLR,
    Trainer,
    clip_grad_norm,
    load_checkpoint,
    save_checkpoint,
)


def test_divergence_stops_training_with_the_epoch_and_batch(linear_data):
    X, y, *_ = linear_data
    model = Linear(3, 1, seed=0)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=10.0))
    with np.errstate(over="ignore", invalid="ignore"):      # the blow-up itself is the point
        with pytest.raises(FloatingPointError,
                           match=r"epoch \d+, batch \d+: the loss is (inf|nan): training diverged"):
            trainer.fit(ArrayBatches(X, y, batch_size=64), epochs=50)
    assert trainer.epoch < 50


def test_clipping_bounds_the_damage_of_one_corrupted_label():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 1)).astype(np.float32)
    y = (2 * x + 1 + 0.05 * rng.standard_normal((64, 1))).astype(np.float32)
    y[5] = 1e3                                                # one label off by 1000
    fitted = {}
    for clip in (None, 1.0):
        model = Linear(1, 1, seed=0)
        Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1), max_grad_norm=clip).fit(
            ArrayBatches(x, y, batch_size=8), epochs=20)
        fitted[clip] = (model.weight.data[0, 0], model.bias.data[0])
    assert abs(fitted[None][0] - 2) > 10                     # measured: w = 30.0
    assert abs(fitted[1.0][0] - 2) < 0.25 and abs(fitted[1.0][1] - 1) < 0.25   # w 2.12, b 1.03


def test_clip_grad_norm_handles_gradients_whose_squares_overflow_float32():
    p = Tensor(np.zeros(4), requires_grad=True)
    p.grad = Tensor([1e30, -1e30, 1e30, -1e30])               # (1e30)^2 > float32 max
    norm = clip_grad_norm([p], max_norm=1.0)
    assert norm == pytest.approx(2e30, rel=1e-6)
    assert np.all(np.isfinite(p.grad.data)) and p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad.data, [0.5, -0.5, 0.5, -0.5], rtol=1e-6)


def test_clip_grad_norm_leaves_tiny_gradients_exactly_alone():
    p = Tensor(np.zeros(3), requires_grad=True)
    p.grad = Tensor([1e-30, -1e-38, 0.0])
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(1e-30, rel=1e-6)
    np.testing.assert_array_equal(p.grad.data, np.array([1e-30, -1e-38, 0.0], dtype=np.float32))


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_clip_grad_norm_refuses_broken_gradients(bad):
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = Tensor([1.0, bad])
    with pytest.raises(FloatingPointError, match="gradient norm is (inf|nan)"):
        clip_grad_norm([p], max_norm=1.0)


def test_cosine_schedule_stays_in_range_and_hits_its_ends_over_a_long_horizon():
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.3)
    scheduler = CosineAnnealingLR(optimizer, T_max=1000, eta_min=1e-4)
    values = [optimizer.lr]
    for _ in range(2000):
        scheduler.step()
        values.append(optimizer.lr)
    assert all(1e-4 <= v <= 0.3 for v in values)
    assert values[1000] == pytest.approx(1e-4, abs=1e-15) and values[2000] == pytest.approx(0.3)
    assert all(a > b for a, b in zip(values[:1000], values[1:1001]))    # strictly decreasing


def test_step_schedule_decays_geometrically_without_reaching_zero():
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(1000):
        scheduler.step()
    assert optimizer.lr == 0.5 ** 1000 > 0


def test_epoch_loss_over_many_single_sample_batches_is_accurate(rng):
    x = rng.standard_normal((500, 2)).astype(np.float32)
    y = rng.standard_normal((500, 1)).astype(np.float32) * 100
    model = Linear(2, 1, seed=0)
    history = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.0)).fit(
        ArrayBatches(x, y, batch_size=1), epochs=1)
    predictions = (x @ model.weight.data + model.bias.data).astype(np.float64)
    np.testing.assert_allclose(history["train_loss"], [np.mean((predictions - y) ** 2)], rtol=1e-6)


def test_large_logits_keep_the_classification_metrics_finite(rng):
    x = rng.standard_normal((16, 4)).astype(np.float32) * 1e3    # logits in the thousands
    labels = (x[:, 0] > 0).astype(np.int64)
    model = Sequential(Linear(4, 2, seed=0))
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.1))
    history = trainer.fit([(x, labels)], epochs=30, val_data=[(x, labels)])
    assert all(math.isfinite(v) for values in history.values() for v in values)
    assert history["val_loss"][0] > 100                       # confidently wrong at first
    assert history["val_accuracy"][-1] == 1.0


def test_checkpoints_keep_every_bit_of_extreme_values(tmp_path):
    model = Sequential(Linear(2, 4, seed=0), Tanh(), Linear(4, 1, seed=1))
    extremes = np.array([[1e-45, -0.0, 3.4028235e38, np.inf],
                         [-np.inf, np.nan, 1.1754944e-38, -1e-40]], dtype=np.float32)
    model[0].weight.data[...] = extremes
    save_checkpoint(tmp_path / "extreme.npz", model)
    fresh = Sequential(Linear(2, 4, seed=7), Tanh(), Linear(4, 1, seed=8))
    load_checkpoint(tmp_path / "extreme.npz", fresh)
    for ours, saved in zip(fresh.parameters(), model.parameters()):
        assert np.array_equal(ours.data.view(np.uint32), saved.data.view(np.uint32))
