"""Core: convergence (XOR, linear regression), the metrics history, schedules against their
closed forms and torch, clip_grad_norm by hand and against torch, checkpoint round trips,
train/eval modes, and the progress line."""
import inspect
import io
import math
import re
import sys

import numpy as np
import pytest

from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (
    ArrayBatches,
    CosineAnnealingLR,
    StepLR,
    Trainer,
    accuracy,
    clip_grad_norm,
    count_correct,
    load_checkpoint,
    progress_line,
    save_checkpoint,
)

API = ["Trainer", "ArrayBatches", "LRScheduler", "StepLR", "CosineAnnealingLR",
       "clip_grad_norm", "save_checkpoint", "load_checkpoint", "CheckpointError",
       "progress_line", "accuracy", "count_correct"]

# ---- convergence ---------------------------------------------------------------------------


def test_xor_reaches_low_loss_and_full_accuracy(xor):
    x, y = xor
    model = Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 2, seed=1))
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.05))
    history = trainer.fit([(x, y)], epochs=200)
    result = trainer.evaluate([(x, y)])
    assert result["loss"] < 0.05            # measured: 0.00084
    assert result["accuracy"] == 1.0
    assert history["train_accuracy"][-1] == 1.0


def test_linear_regression_reaches_the_noise_floor_and_recovers_w(linear_data):
    X, y, w, b, noise_std = linear_data
    model = Linear(3, 1, seed=0)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.05))
    trainer.fit(ArrayBatches(X, y, batch_size=32, shuffle=True, seed=0), epochs=30)
    mse = trainer.evaluate([(X, y)])["loss"]
    # the noise variance is 0.01; least squares on this sample reaches 0.008993, we 0.008995
    assert abs(mse - noise_std ** 2) < 0.15 * noise_std ** 2, mse
    design = np.c_[X, np.ones(len(X))].astype(np.float64)
    best = np.mean((design @ np.linalg.lstsq(design, y, rcond=None)[0] - y) ** 2)
    assert mse <= 1.01 * best, (mse, best)
    np.testing.assert_allclose(model.weight.data[:, 0], w, atol=0.03)
    np.testing.assert_allclose(model.bias.data, [b], atol=0.03)


def test_loss_decreases_every_epoch_with_full_batch_gradient_descent(linear_data):
    # on a convex quadratic, gradient descent with lr below 1/L decreases the loss at every step
    X, y, *_ = linear_data
    model = Linear(3, 1, seed=0)
    history = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1)).fit([(X, y)], epochs=15)
    losses = history["train_loss"]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses


def test_minibatch_loss_is_monotone_over_windows(linear_data):
    X, y, *_ = linear_data
    model = Linear(3, 1, seed=1)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01, momentum=0.5))
    batches = ArrayBatches(X, y, batch_size=16, shuffle=True, seed=1)
    losses = trainer.fit(batches, epochs=12)["train_loss"]
    windows = [np.mean(losses[i:i + 3]) for i in range(0, 12, 3)]
    assert all(later < earlier for earlier, later in zip(windows, windows[1:])), windows

# ---- the metrics history and evaluate --------------------------------------------------------


def test_history_has_one_value_per_epoch_and_accumulates_over_fit_calls(xor):
    x, y = xor
    model = Sequential(Linear(2, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    history = trainer.fit([(x, y)], epochs=3, val_data=[(x, y)])
    assert {k: len(v) for k, v in history.items()} == {
        "train_loss": 3, "train_accuracy": 3, "val_loss": 3, "val_accuracy": 3, "lr": 3}
    trainer.fit([(x, y)], epochs=2)
    assert {k: len(v) for k, v in trainer.history.items()} == {
        "train_loss": 5, "train_accuracy": 5, "val_loss": 3, "val_accuracy": 3, "lr": 5}
    assert trainer.epoch == 5


def test_regression_history_has_no_accuracy(linear_data):
    X, y, *_ = linear_data
    model = Linear(3, 1, seed=0)
    history = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1)).fit([(X, y)], epochs=2)
    assert set(history) == {"train_loss", "val_loss", "lr"} and history["val_loss"] == []


def test_epoch_loss_is_the_mean_over_examples_not_over_batches(linear_data):
    # with lr = 0 nothing changes, so the epoch loss must equal the loss on all 10 examples,
    # although the batches hold 3, 3, 3 and 1 of them
    X, y, *_ = linear_data
    X, y = X[:10], y[:10]
    model = Linear(3, 1, seed=0)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.0))
    history = trainer.fit(ArrayBatches(X, y, batch_size=3), epochs=1)
    expected = np.mean((X @ model.weight.data + model.bias.data - y).astype(np.float64) ** 2)
    np.testing.assert_allclose(history["train_loss"], [expected], rtol=1e-6)
    np.testing.assert_allclose(trainer.evaluate(ArrayBatches(X, y, batch_size=4))["loss"], expected,
                               rtol=1e-6)


def test_evaluate_reports_loss_and_accuracy_of_the_model_in_eval_mode(rng):
    x = rng.standard_normal((9, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=9)
    model = Sequential(Linear(4, 3, seed=0))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    result = trainer.evaluate(ArrayBatches(x, labels, batch_size=4))
    logits = x @ model[0].weight.data + model[0].bias.data
    assert result["accuracy"] == np.mean(logits.argmax(axis=1) == labels)
    np.testing.assert_allclose(result["loss"], CrossEntropyLoss()(Tensor(logits), labels).item(),
                               rtol=1e-6)


def test_train_step_returns_the_loss_before_the_update_and_applies_sgd():
    model = Linear(1, 1, bias=False, seed=0)
    model.weight.data[...] = 2.0
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1))
    loss, outputs = trainer.train_step(Tensor([[1.0]]), Tensor([[0.5]]))
    # loss (2 - 0.5)^2 = 2.25, gradient 2 (2 - 0.5) = 3, new weight 2 - 0.3
    assert loss == 2.25 and outputs.data[0, 0] == 2.0
    np.testing.assert_allclose(model.weight.data, [[1.7]], rtol=1e-6)

def test_accuracy_for_class_logits_and_for_binary_logits():
    logits = Tensor([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert count_correct(logits, Tensor([0, 2, 0, 1])) == 2          # argmax 0, 2, 1, 2
    assert accuracy(logits, np.array([0, 2, 1, 2])) == 1.0
    binary = Tensor([[3.0], [-0.5], [0.2], [-4.0]])                  # positive logit -> 1
    assert accuracy(binary, Tensor([[1.0], [1.0], [1.0], [0.0]])) == 0.75
    with pytest.raises(ValueError, match="neither"):
        accuracy(logits, Tensor([[1.0], [0.0]]))

# ---- train / eval modes --------------------------------------------------------------------------


def test_fit_trains_in_train_mode_and_evaluates_in_eval_mode_without_a_graph(recorder, xor):
    x, y = xor
    model = recorder(2, 2)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    trainer.fit([(x[:2], y[:2]), (x[2:], y[2:])], epochs=2, val_data=[(x, y)])
    # per epoch: two training batches (train mode, graph), one validation batch (eval, no graph)
    assert model.calls == [(True, True), (True, True), (False, False)] * 2
    assert model.training


def test_evaluate_restores_the_previous_mode(recorder, xor):
    x, y = xor
    model = recorder(2, 2)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    model.eval()
    trainer.evaluate([(x, y)])
    assert not model.training
    model.train()
    trainer.evaluate([(x, y)])
    assert model.training


def test_dropout_is_inactive_during_evaluate(rng):
    x = rng.standard_normal((32, 8)).astype(np.float32)
    labels = rng.integers(0, 2, size=32)
    model = Sequential(Linear(8, 16, seed=0), Dropout(0.5, seed=0), Linear(16, 2, seed=1))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    results = [trainer.evaluate([(x, labels)])["loss"] for _ in range(3)]
    assert results[0] == results[1] == results[2]          # no random masks
    model.eval()
    expected = CrossEntropyLoss()(model(Tensor(x)), labels).item()
    model.train()
    assert results[0] == expected
    training_losses = {CrossEntropyLoss()(model(Tensor(x)), labels).item() for _ in range(3)}
    assert len(training_losses) == 3                        # in training mode dropout is random

# ---- schedules ---------------------------------------------------------------------------------


def one_param_optimizer(lr):
    return SGD([Tensor([1.0], requires_grad=True)], lr=lr)


def lrs(scheduler, epochs):
    values = [scheduler.optimizer.lr]
    for _ in range(epochs):
        scheduler.step()
        values.append(scheduler.optimizer.lr)
    return values


def test_step_lr_closed_form():
    values = lrs(StepLR(one_param_optimizer(0.1), step_size=3, gamma=0.5), epochs=7)
    np.testing.assert_allclose(values, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rtol=1e-15)


def test_cosine_annealing_closed_form():
    values = lrs(CosineAnnealingLR(one_param_optimizer(1.0), T_max=4, eta_min=0.1), epochs=8)
    c = math.cos(math.pi / 4)                # cos(pi t / 4) for t = 1, 2, 3: c, 0, -c
    expected = [1.0, 0.1 + 0.45 * (1 + c), 0.55, 0.1 + 0.45 * (1 - c), 0.1,
                0.1 + 0.45 * (1 - c), 0.55, 0.1 + 0.45 * (1 + c), 1.0]
    np.testing.assert_allclose(values, expected, rtol=1e-12)


@pytest.mark.parametrize("make_ours, make_theirs", [
    (lambda o: StepLR(o, step_size=4, gamma=0.3),
     lambda t, o: t.optim.lr_scheduler.StepLR(o, 4, 0.3)),
    (lambda o: CosineAnnealingLR(o, T_max=10),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 10)),
    (lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01)),
])
def test_schedules_match_torch(torch, make_ours, make_theirs):
    ours = make_ours(one_param_optimizer(0.2))
    torch_optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    theirs = make_theirs(torch, torch_optimizer)
    expected = [torch_optimizer.param_groups[0]["lr"]]
    for _ in range(25):
        torch_optimizer.step()
        theirs.step()
        expected.append(torch_optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs(ours, 25), expected, rtol=1e-9, atol=1e-12)


def test_trainer_steps_the_scheduler_once_per_epoch_and_records_the_lr(xor):
    x, y = xor
    model = Sequential(Linear(2, 2, seed=0))
    optimizer = SGD(model.parameters(), lr=0.4)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, scheduler=StepLR(optimizer, 2, 0.5))
    history = trainer.fit([(x[:2], y[:2]), (x[2:], y[2:])], epochs=5)
    assert history["lr"] == [0.4, 0.4, 0.2, 0.2, 0.1]
    assert optimizer.lr == 0.1           # epoch 5: 0.4 * 0.5 ** (5 // 2)

# ---- clip_grad_norm -----------------------------------------------------------------------------


def test_clip_grad_norm_by_hand():
    a, b = Tensor([0.0, 0.0], requires_grad=True), Tensor([[0.0]], requires_grad=True)
    a.grad, b.grad = Tensor([3.0, 4.0]), Tensor([[12.0]])        # global norm 13
    norm = clip_grad_norm([a, b], max_norm=6.5)
    assert norm == 13.0
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.data, [3.0 * scale, 4.0 * scale], rtol=1e-6)
    np.testing.assert_allclose(b.grad.data, [[12.0 * scale]], rtol=1e-6)


def test_clip_grad_norm_leaves_small_gradients_alone():
    a = Tensor([0.0, 0.0], requires_grad=True)
    a.grad = Tensor([0.3, 0.4])
    assert clip_grad_norm([a], max_norm=1.0) == pytest.approx(0.5, rel=1e-7)
    np.testing.assert_array_equal(a.grad.data, np.array([0.3, 0.4], dtype=np.float32))


def test_clip_grad_norm_matches_torch(torch, rng):
    shapes = [(3, 4), (4,), (4, 2), (2,)]
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in shapes]
    ours = [Tensor(np.zeros(s), requires_grad=True) for s in shapes]
    theirs = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = Tensor(g), torch.from_numpy(g.copy())
    norm = clip_grad_norm(ours, max_norm=2.0)
    torch_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm=2.0)
    assert norm == pytest.approx(float(torch_norm), rel=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-7)

# ---- checkpoints ---------------------------------------------------------------------------------


def trained_mlp(rng, steps=3):
    model = Sequential(Linear(4, 6, seed=0), Tanh(), Linear(6, 3, seed=1))
    optimizer = Adam(model.parameters(), lr=0.01, betas=(0.8, 0.95))
    x, labels = Tensor(rng.standard_normal((8, 4))), rng.integers(0, 3, size=8)
    for _ in range(steps):
        optimizer.zero_grad()
        CrossEntropyLoss()(model(x), labels).backward()
        optimizer.step()
    return model, optimizer


def test_checkpoint_round_trip_is_exact_for_parameters_and_optimizer_state(rng, tmp_path):
    model, optimizer = trained_mlp(rng)
    path = tmp_path / "run.npz"
    save_checkpoint(path, model, optimizer, epoch=7, extra={"note": "after 3 steps", "best": 0.25})
    fresh_model = Sequential(Linear(4, 6, seed=5), Tanh(), Linear(6, 3, seed=6))
    fresh_optimizer = Adam(fresh_model.parameters(), lr=0.5)
    info = load_checkpoint(path, fresh_model, fresh_optimizer)
    assert info == {"epoch": 7, "extra": {"note": "after 3 steps", "best": 0.25}}
    for ours, saved in zip(fresh_model.parameters(), model.parameters()):
        assert ours.dtype == saved.dtype
        assert np.array_equal(ours.data, saved.data)
    before, after = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"]
    assert set(after["state"]) == set(before["state"]) == {0, 1, 2, 3}
    for i, entry in before["state"].items():
        assert after["state"][i]["step"] == entry["step"] == 3
        for name in ("exp_avg", "exp_avg_sq"):
            assert np.array_equal(after["state"][i][name], entry[name])


def test_checkpoint_without_optimizer_restores_the_model(rng, tmp_path):
    model, _ = trained_mlp(rng)
    save_checkpoint(tmp_path / "weights.npz", model)
    fresh = Sequential(Linear(4, 6, seed=5), Tanh(), Linear(6, 3, seed=6))
    assert load_checkpoint(tmp_path / "weights.npz", fresh) == {"epoch": 0, "extra": {}}
    assert all(np.array_equal(a.data, b.data)
               for a, b in zip(fresh.parameters(), model.parameters()))


def test_checkpoint_is_written_to_exactly_the_given_path(rng, tmp_path):
    model, optimizer = trained_mlp(rng, steps=1)
    save_checkpoint(tmp_path / "ckpt", model, optimizer)
    save_checkpoint(tmp_path / "ckpt", model, optimizer, epoch=2)       # overwrites
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]      # no ".npz", no temp file
    keys = set(np.load(tmp_path / "ckpt").files)
    assert {"meta", "model/0", "model/3", "optimizer/0/exp_avg", "optimizer/3/step"} <= keys

# ---- progress ------------------------------------------------------------------------------------


def test_progress_line_format():
    assert progress_line(3, 10, {"loss": 0.123}, width=10) == "epoch 3/10 [###.......] loss 0.123"
    assert progress_line(10, 10, {"loss": 0.01234567, "acc": 1.0}) == \
        "epoch 10/10 [####################] loss 0.01235 acc 1"
    assert progress_line(1, 3, {}) == "epoch 1/3 [#######.............]"


def test_fit_writes_one_progress_line_per_epoch_to_the_stream(xor):
    x, y = xor
    model = Sequential(Linear(2, 2, seed=0))
    stream = io.StringIO()
    Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1)).fit(
        [(x, y)], epochs=4, val_data=[(x, y)], progress=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    pattern = (r"epoch {}/4 \[[#.]{{20}}\] loss [0-9.e-]+ acc [0-9.]+ val_loss [0-9.e-]+ "
               r"val_acc [0-9.]+")
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(pattern.format(epoch), line), line
    assert lines[1].count("#") == 10


def test_progress_is_off_by_default_and_goes_to_stdout_when_asked(xor, capsys):
    x, y = xor
    model = Sequential(Linear(2, 2, seed=0))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    trainer.fit([(x, y)], epochs=2)
    assert capsys.readouterr().out == ""
    trainer.fit([(x, y)], epochs=1, progress=sys.stdout)
    out = capsys.readouterr().out
    assert out.startswith("epoch 1/1 [####################] loss ") and out.endswith("\n")

# ---- shapes, export, API -------------------------------------------------------------------------


@pytest.mark.shape
def test_array_batches_shapes_and_order():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    batches = list(ArrayBatches(x, y, batch_size=4))
    assert len(ArrayBatches(x, y, batch_size=4)) == 3
    assert [(bx.shape, by.shape) for bx, by in batches] == [((4, 2), (4,)), ((4, 2), (4,)),
                                                            ((2, 2), (2,))]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype.kind == "i"
    assert np.array_equal(np.concatenate([by.data for _, by in batches]), y)


@pytest.mark.shape
def test_shuffled_batches_cover_every_example_once_per_epoch_in_a_new_order():
    x, y = np.arange(12, dtype=np.float32)[:, None], np.arange(12)
    batches = ArrayBatches(x, y, batch_size=5, shuffle=True, seed=3)
    orders = [np.concatenate([by.data for _, by in batches]) for _ in range(2)]
    for order in orders:
        assert sorted(order) == list(range(12))
    assert not np.array_equal(orders[0], orders[1])
    again = ArrayBatches(x, y, batch_size=5, shuffle=True, seed=3)
    assert np.array_equal(np.concatenate([by.data for _, by in again]), orders[0])


@pytest.mark.shape
def test_trainer_handles_multi_output_regression_batches(rng):
    x = rng.standard_normal((7, 3)).astype(np.float32)
    y = rng.standard_normal((7, 2)).astype(np.float32)
    model = Linear(3, 2, seed=0)
    history = Trainer(model, MSELoss(), Adam(model.parameters(), lr=0.01)).fit(
        ArrayBatches(x, y, batch_size=3), epochs=2)
    assert len(history["train_loss"]) == 2 and model.weight.shape == (3, 2)


@pytest.mark.export_import
def test_public_api_is_exported(export_api):
    found = export_api("tinytorch.core.training", API)
    assert issubclass(found["StepLR"], found["LRScheduler"])
    assert issubclass(found["CheckpointError"], ValueError)


@pytest.mark.api_consistency
def test_signatures_follow_torch_names(torch):
    assert list(inspect.signature(StepLR).parameters) == ["optimizer", "step_size", "gamma"]
    assert list(inspect.signature(CosineAnnealingLR).parameters) == \
        ["optimizer", "T_max", "eta_min"]
    for ours, theirs in ((StepLR, torch.optim.lr_scheduler.StepLR),
                         (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR)):
        torch_parameters = inspect.signature(theirs).parameters
        for name, parameter in inspect.signature(ours).parameters.items():
            assert name in torch_parameters
            if parameter.default is not inspect.Parameter.empty:
                assert parameter.default == torch_parameters[name].default
    assert list(inspect.signature(clip_grad_norm).parameters) == ["parameters", "max_norm"]
    assert list(inspect.signature(Trainer.fit).parameters)[:4] == ["self", "train_data", "epochs",
                                                                   "val_data"]


@pytest.mark.api_consistency
def test_return_types():
    model = Linear(1, 1, seed=0)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1))
    data = [(np.ones((2, 1), dtype=np.float32), np.zeros((2, 1), dtype=np.float32))]
    history = trainer.fit(data, epochs=1)
    assert history is trainer.history
    assert all(isinstance(v, float) for values in history.values() for v in values)
    result = trainer.evaluate(data)
    assert set(result) == {"loss"} and isinstance(result["loss"], float)
    model.weight.grad = Tensor([[1.0]])
    assert isinstance(clip_grad_norm(model.parameters(), 1.0), float)
