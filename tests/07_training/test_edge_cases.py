"""Edge cases: empty data, used-up generators, single-sample batches, epochs = 0, malformed
batches and arguments, and checkpoints that are corrupt, truncated, incomplete or mismatched."""
import io

import numpy as np
import pytest

from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (
    ArrayBatches,
    CheckpointError,
    CosineAnnealingLR,
    StepLR,
    Trainer,
    clip_grad_norm,
    load_checkpoint,
    save_checkpoint,
)


def regression_trainer(lr=0.1):
    model = Linear(2, 1, seed=0)
    return Trainer(model, MSELoss(), SGD(model.parameters(), lr=lr))


def batches(n=4):
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2) / 10
    return [(x, x.sum(axis=1, keepdims=True))]

# ---- data -------------------------------------------------------------------------------------


def test_empty_training_data_raises_a_clear_error():
    with pytest.raises(ValueError, match="train_data yielded no batches"):
        regression_trainer().fit([], epochs=1)


def test_empty_validation_data_raises_a_clear_error():
    with pytest.raises(ValueError, match="val_data yielded no batches"):
        regression_trainer().fit(batches(), epochs=1, val_data=[])
    with pytest.raises(ValueError, match="data yielded no batches"):
        regression_trainer().evaluate([])


def test_a_generator_used_up_after_one_epoch_is_reported():
    trainer = regression_trainer()
    with pytest.raises(ValueError, match="generator that was already used up"):
        trainer.fit((b for b in batches()), epochs=2)
    assert len(trainer.history["train_loss"]) == 1          # the first epoch did run


def test_array_batches_reject_empty_or_mismatched_arrays():
    with pytest.raises(ValueError, match="no examples"):
        ArrayBatches(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        ArrayBatches(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ArrayBatches(np.zeros((3, 2)), np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="first"):
        ArrayBatches(np.float32(1.0), np.zeros(3))


def test_batch_larger_than_the_data_gives_one_batch():
    batches_ = list(ArrayBatches(np.zeros((3, 2)), np.zeros(3), batch_size=100))
    assert len(batches_) == 1 and batches_[0][0].shape == (3, 2)


def test_single_sample_batches_train_and_average_correctly():
    x = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    y = 2 * x
    model = Linear(1, 1, seed=0)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.0))
    history = trainer.fit(ArrayBatches(x, y, batch_size=1), epochs=1)
    predictions = x @ model.weight.data + model.bias.data
    np.testing.assert_allclose(history["train_loss"], [np.mean((predictions - y) ** 2)], rtol=1e-6)
    model = Sequential(Linear(1, 2, seed=0))
    classifier = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    assert classifier.fit([(x[:1], np.array([1]))], epochs=3)["train_accuracy"][-1] in (0.0, 1.0)


def test_epochs_zero_changes_nothing_and_prints_nothing():
    trainer = regression_trainer()
    before = [p.data.copy() for p in trainer.model.parameters()]
    stream = io.StringIO()
    history = trainer.fit([], epochs=0, progress=stream)      # data is never touched
    assert all(values == [] for values in history.values()) and trainer.epoch == 0
    assert stream.getvalue() == ""
    assert all(np.array_equal(p.data, b) for p, b in zip(trainer.model.parameters(), before))


@pytest.mark.parametrize("epochs", [-1, 1.5, True, "3"])
def test_invalid_epochs_are_rejected(epochs):
    with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
        regression_trainer().fit(batches(), epochs=epochs)


def test_malformed_batches_are_rejected():
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair"):
        regression_trainer().fit([np.zeros((2, 2))], epochs=1)
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair"):
        regression_trainer().fit([(np.zeros((2, 2)), np.zeros((2, 1)), "extra")], epochs=1)
    with pytest.raises(ValueError, match="0-d inputs"):
        regression_trainer().fit([(1.0, 2.0)], epochs=1)

# ---- arguments --------------------------------------------------------------------------------


def test_trainer_rejects_wrong_arguments():
    model = Linear(2, 1, seed=0)
    optimizer = SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="model must be a Module"):
        Trainer(lambda x: x, MSELoss(), optimizer)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        Trainer(model, "mse", optimizer)
    with pytest.raises(TypeError, match="optimizer must be an Optimizer"):
        Trainer(model, MSELoss(), object())
    with pytest.raises(ValueError, match="none of the model's parameters"):
        Trainer(model, MSELoss(), SGD(Linear(2, 1).parameters(), lr=0.1))
    other = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="different optimizer"):
        Trainer(model, MSELoss(), optimizer, scheduler=StepLR(other, 1))
    with pytest.raises(ValueError, match="max_grad_norm"):
        Trainer(model, MSELoss(), optimizer, max_grad_norm=0)


def test_schedulers_reject_wrong_arguments():
    optimizer = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="gamma"):
        StepLR(optimizer, step_size=1, gamma=0)
    with pytest.raises(ValueError, match="T_max must be a positive integer"):
        CosineAnnealingLR(optimizer, T_max=0)
    with pytest.raises(ValueError, match="eta_min"):
        CosineAnnealingLR(optimizer, T_max=3, eta_min=-1)
    with pytest.raises(TypeError, match="expected an Optimizer"):
        StepLR("sgd", step_size=1)


def test_clip_grad_norm_edge_cases():
    a, b = Tensor([1.0], requires_grad=True), Tensor([1.0, 1.0], requires_grad=True)
    assert clip_grad_norm([a, b], max_norm=1.0) == 0.0          # no gradients at all
    b.grad = Tensor([3.0, 4.0])
    assert clip_grad_norm(b, max_norm=0.0) == 5.0               # a single tensor; max_norm 0
    np.testing.assert_array_equal(b.grad.data, [0.0, 0.0])
    with pytest.raises(ValueError, match="max_norm must be a finite number >= 0"):
        clip_grad_norm([b], max_norm=-1.0)

# ---- checkpoints --------------------------------------------------------------------------------


def mlp(seed=0):
    return Sequential(Linear(3, 4, seed=seed), Tanh(), Linear(4, 2, seed=seed + 1))


@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint of a trained mlp() with Adam state, and that model and optimizer."""
    model = mlp()
    optimizer = Adam(model.parameters(), lr=0.01)
    x, y = Tensor(np.ones((2, 3))), np.array([0, 1])
    CrossEntropyLoss()(model(x), y).backward()
    optimizer.step()
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model, optimizer, epoch=1)
    return path, model, optimizer


def assert_unchanged(model, optimizer, params, state):
    assert all(np.array_equal(p.data, v) for p, v in zip(model.parameters(), params))
    if optimizer is not None:
        assert optimizer.state_dict()["hyperparameters"] == state["hyperparameters"]
        assert set(optimizer.state_dict()["state"]) == set(state["state"])


def load_into_fresh(path, optimizer_class=Adam, model=None):
    model = model or mlp(seed=10)
    optimizer = optimizer_class(model.parameters(), lr=0.5) if optimizer_class else None
    params, state = [p.data.copy() for p in model.parameters()], \
        optimizer.state_dict() if optimizer else None
    return model, optimizer, params, state


def test_a_truncated_checkpoint_raises_naming_the_file(checkpoint):
    path = checkpoint[0]
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2])
    model, optimizer, params, state = load_into_fresh(path)
    with pytest.raises(CheckpointError, match=r"ckpt\.npz: not a readable checkpoint"):
        load_checkpoint(path, model, optimizer)
    assert_unchanged(model, optimizer, params, state)


def test_a_corrupt_checkpoint_raises_naming_the_file(checkpoint):
    path = checkpoint[0]
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle:middle + 64] = bytes(64)                 # damage the stored arrays
    path.write_bytes(bytes(content))
    model, optimizer, *_ = load_into_fresh(path)
    with pytest.raises(CheckpointError, match=r"ckpt\.npz: not a readable checkpoint"):
        load_checkpoint(path, model, optimizer)


def test_a_file_that_is_not_a_checkpoint_raises(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are not arrays")
    with pytest.raises(CheckpointError, match=r"notes\.npz: not a readable checkpoint"):
        load_checkpoint(path, mlp())
    np.savez(tmp_path / "plain.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match=r"plain\.npz: missing key 'meta'"):
        load_checkpoint(tmp_path / "plain.npz", mlp())


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_checkpoint(tmp_path / "nowhere.npz", mlp())


def rewrite_without(path, key):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != key}
    with open(path, "wb") as file:
        np.savez(file, **arrays)


@pytest.mark.parametrize("key", ["model/2", "optimizer/1/exp_avg_sq"])
def test_a_missing_key_raises_naming_it_and_changes_nothing(checkpoint, key):
    path = checkpoint[0]
    rewrite_without(path, key)
    model, optimizer, params, state = load_into_fresh(path)
    with pytest.raises(CheckpointError, match=rf"ckpt\.npz: missing key '{key}'"):
        load_checkpoint(path, model, optimizer)
    assert_unchanged(model, optimizer, params, state)


def test_a_shape_mismatch_raises_naming_the_parameter_and_both_shapes(checkpoint):
    path = checkpoint[0]
    wider = Sequential(Linear(3, 5, seed=0), Tanh(), Linear(5, 2, seed=1))
    model, optimizer, params, state = load_into_fresh(path, model=wider)
    with pytest.raises(CheckpointError, match=r"ckpt\.npz: parameter 0 has shape \(3, 4\) in the "
                                              r"checkpoint but \(3, 5\) in the model"):
        load_checkpoint(path, model, optimizer)
    assert_unchanged(model, optimizer, params, state)


def test_a_different_number_of_parameters_is_reported(checkpoint):
    path = checkpoint[0]
    with pytest.raises(CheckpointError, match="holds 4 parameter tensors, the model has 2"):
        load_checkpoint(path, Linear(3, 2))


def test_the_wrong_kind_of_optimizer_is_reported(checkpoint):
    path = checkpoint[0]
    model, optimizer, params, state = load_into_fresh(path, optimizer_class=SGD)
    with pytest.raises(CheckpointError, match="holds the state of a Adam optimizer, not of a SGD"):
        load_checkpoint(path, model, optimizer)
    assert_unchanged(model, optimizer, params, state)


def test_a_checkpoint_without_optimizer_state_cannot_restore_one(tmp_path):
    save_checkpoint(tmp_path / "weights.npz", mlp())
    model, optimizer, params, state = load_into_fresh(tmp_path / "weights.npz")
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "weights.npz", model, optimizer)
    assert_unchanged(model, optimizer, params, state)


def test_extra_must_be_json_serializable_and_nothing_is_written(tmp_path):
    with pytest.raises(TypeError, match="extra must be JSON-serializable"):
        save_checkpoint(tmp_path / "bad.npz", mlp(), extra={"array": np.ones(2)})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temp_file(checkpoint,
                                                                            monkeypatch):
    path, model, optimizer = checkpoint
    original = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, optimizer, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.npz"]
    assert load_checkpoint(path, mlp(seed=3))["epoch"] == 1
