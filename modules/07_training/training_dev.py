# %% [markdown]
# # Module 07: Training
#
# Modules 01-06 give us every piece of a training step: a model (03), a loss (04),
# gradients (05) and an optimizer (06). Training repeats that step over a data set
# for many epochs, and around that loop people always need the same few things:
#
# - a **Trainer**: the loop itself, with train/eval modes, evaluation without a
#   graph, and a history of loss and accuracy per epoch;
# - **batches**: data arrives as an iterable of `(inputs, targets)` pairs, so any
#   list of pairs works today and module 08's DataLoader plugs in tomorrow;
#   `ArrayBatches` cuts a pair of arrays into such batches;
# - **learning-rate schedules**: a large step early, small steps late;
# - **gradient clipping**: one bad batch must not throw the weights far away;
# - **checkpoints**: save the model and the optimizer, resume exactly;
# - a **progress line** per epoch, for runs long enough to wonder about.

# %%
#| default_exp core.training

# %%
#| export
"""Training: Trainer (fit / evaluate with train/eval modes and a metrics history),
ArrayBatches, StepLR and CosineAnnealingLR, clip_grad_norm, save_checkpoint /
load_checkpoint (.npz, written atomically) and a text progress line."""
import json
import math
import os
import zipfile
import zlib

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Module
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.optimizers import Optimizer
from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Batches from arrays
#
# `ArrayBatches(x, y, batch_size=32)` is an iterable of `(x_batch, y_batch)`
# Tensor pairs; the last batch holds what is left. Iterating again starts a new
# epoch: with `shuffle=True` each epoch visits the examples in a new order, drawn
# from a seeded generator so that a run can be repeated exactly. Shuffling matters
# for SGD: batches in a fixed order (say, all of class 0 first) pull the weights
# back and forth instead of down.

# %%
#| export
class ArrayBatches:
    """Iterable of (inputs, targets) Tensor batches cut from two arrays of equal length."""

    def __init__(self, inputs, targets, batch_size=32, shuffle=False, seed=None):
        self.inputs, self.targets = np.asarray(inputs), np.asarray(targets)
        if self.inputs.ndim == 0 or self.targets.ndim == 0:
            raise ValueError("ArrayBatches: inputs and targets must be arrays with a first "
                             "(example) dimension")
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"ArrayBatches: {len(self.inputs)} inputs "
                             f"but {len(self.targets)} targets")
        if len(self.inputs) == 0:
            raise ValueError("ArrayBatches: no examples (the arrays are empty)")
        self.batch_size = check_int("ArrayBatches", "batch_size", batch_size)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return math.ceil(len(self.inputs) / self.batch_size)

    def __iter__(self):
        order = np.arange(len(self.inputs))
        if self.shuffle:
            self.rng.shuffle(order)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            yield Tensor(self.inputs[chosen]), Tensor(self.targets[chosen])

# %% [markdown]
# ## Accuracy
#
# For classification, the loss says how confident the model is; accuracy says how
# often it is right. Two kinds of outputs, matching the two classification losses
# of module 04 (both take **logits**):
#
# - `(N, C)` logits with `(N,)` integer classes (`CrossEntropyLoss`): the
#   prediction is the class with the largest logit;
# - logits and 0/1 targets of the same shape (`BinaryCrossEntropyLoss`): the
#   prediction is 1 where the logit is positive (probability above 1/2).

# %%
#| export
def count_correct(outputs, targets):
    """How many predictions in a batch of logits match the targets."""
    outputs = outputs.data if isinstance(outputs, Tensor) else np.asarray(outputs)
    targets = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    if outputs.ndim == 2 and targets.shape == outputs.shape[:1]:    # (N, C) and (N,) classes
        return int(np.sum(outputs.argmax(axis=1) == targets))
    if outputs.shape == targets.shape:                               # binary, same shape
        return int(np.sum((outputs > 0) == (targets > 0.5)))
    raise ValueError(f"accuracy: outputs of shape {outputs.shape} and targets of shape "
                     f"{targets.shape} are neither (N, C) logits with (N,) classes "
                     "nor the same shape")


def accuracy(outputs, targets):
    """The fraction of correct predictions (see count_correct)."""
    total = len(targets.data if isinstance(targets, Tensor) else np.asarray(targets))
    return count_correct(outputs, targets) / total

# %% [markdown]
# ## Gradient clipping by global norm
#
# Treat all gradients as one long vector `g`. If its length `||g||` exceeds
# `max_norm`, scale every gradient by `max_norm / ||g||`: the direction is kept,
# only the step shrinks. (PyTorch's `clip_grad_norm_`, including its `1e-6` in the
# denominator.) The function returns the norm *before* clipping, which is worth
# logging: spikes in it are the first sign of instability.
#
# The squares are summed in float64: a float32 gradient entry of 1e20 is fine,
# but its square overflows float32. A norm that is still infinite or NaN means the
# gradients themselves are broken, and clipping cannot repair them, so we say so.

# %%
#| export
def clip_grad_norm(parameters, max_norm):
    """Scale gradients in place so their global 2-norm is at most max_norm; return the norm
    before clipping. Parameters whose .grad is None are ignored."""
    number = (int, float, np.integer, np.floating)
    if isinstance(max_norm, bool) or not isinstance(max_norm, number) \
            or not 0 <= max_norm < math.inf:
        raise ValueError(f"clip_grad_norm: max_norm must be a finite number >= 0, got {max_norm!r}")
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad.data for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    if not math.isfinite(total):
        raise FloatingPointError(f"clip_grad_norm: the gradient norm is {total}; some gradient "
                                 f"holds inf or NaN, which clipping cannot repair")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return total

# %% [markdown]
# ## Learning-rate schedules
#
# A scheduler changes `optimizer.lr` once per epoch (`scheduler.step()` at the end
# of each epoch). Each schedule is a closed form of the epoch number `t`, starting
# from the optimizer's learning rate `base_lr` when the scheduler is created:
#
# - `StepLR(optimizer, step_size, gamma)`: `base_lr * gamma ** (t // step_size)`,
#   e.g. divide by 10 every 30 epochs;
# - `CosineAnnealingLR(optimizer, T_max, eta_min)`:
#   `eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`, a smooth
#   descent from `base_lr` to `eta_min` at `t = T_max` (and back up after, as in
#   PyTorch).
#
# PyTorch computes the same numbers recursively, one epoch from the last; ours
# evaluate the formula directly, so they are equal up to rounding.
#
# To resume a run, a scheduler's `state_dict()` (its `base_lr` and the epoch
# reached) goes into the checkpoint next to the optimizer's.

# %%
#| export
class LRScheduler:
    """Base class: sets optimizer.lr = lr_at(epoch) at creation (epoch 0) and on each step()."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch):
        raise NotImplementedError(f"{type(self).__name__} must define lr_at(epoch)")

    def step(self):
        """Move to the next epoch and set its learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def state_dict(self):
        """What resuming needs (JSON-able): the starting lr and the epoch reached."""
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.base_lr, self.last_epoch = float(state["base_lr"]), int(state["last_epoch"])
        self.optimizer.lr = self.lr_at(self.last_epoch)


# Each schedule stores its settings before calling LRScheduler.__init__, which uses
# lr_at(0) and so needs them.
class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = check_int("StepLR", "step_size", step_size)
        if not (isinstance(gamma, (int, float)) and 0 < gamma < math.inf):
            raise ValueError(f"StepLR: gamma must be a finite number > 0, got {gamma!r}")
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max)
        if not (isinstance(eta_min, (int, float)) and 0 <= eta_min < math.inf):
            raise ValueError("CosineAnnealingLR: eta_min must be a finite number >= 0, "
                             f"got {eta_min!r}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine

# %% [markdown]
# ## Checkpoints
#
# A checkpoint is one `.npz` file (numpy's zip of arrays) holding:
#
# - `model/0`, `model/1`, ...: the parameters, in `model.parameters()` order;
# - `optimizer/<i>/<name>`: the optimizer's state arrays for parameter `i`
#   (momentum buffers, Adam's moments and step counts);
# - `meta`: a JSON string with the format, the epoch, the number of parameters,
#   the optimizer's class and hyper-parameters, and any JSON-able `extra` you pass
#   (a history, a note).
#
# Resuming needs the optimizer state as much as the weights: Adam restarted with
# empty moments takes its large bias-corrected first steps again.
#
# **Writing** goes to a temporary file in the same directory, renamed over the
# target at the end. A crash mid-write leaves the previous checkpoint intact,
# never a half-written one.
#
# **Loading** trusts nothing: a truncated or corrupt file, a missing entry, a
# parameter whose shape differs from the model's, or an optimizer of another kind
# raises `CheckpointError`, naming the file and the problem. Everything is checked
# before anything is changed, so a failed load leaves model and optimizer as they were.

# %%
#| export
CHECKPOINT_FORMAT = "tinytorch-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the model or optimizer."""


def save_checkpoint(path, model, optimizer=None, epoch=0, extra=None):
    """Write the model's parameters (and the optimizer's state) to `path` as .npz, atomically."""
    params = model.parameters()
    arrays = {f"model/{i}": p.data for i, p in enumerate(params)}
    meta = {"format": CHECKPOINT_FORMAT, "epoch": int(epoch), "parameters": len(params),
            "extra": {} if extra is None else extra}
    if optimizer is not None:
        saved = optimizer.state_dict()
        meta["optimizer"] = {"class": type(optimizer).__name__,
                             "hyperparameters": saved["hyperparameters"],
                             "state": {str(i): sorted(entry)
                                       for i, entry in saved["state"].items()}}
        for i, entry in saved["state"].items():
            for name, value in entry.items():
                arrays[f"optimizer/{i}/{name}"] = np.asarray(value)
    try:
        arrays["meta"] = np.array(json.dumps(meta))
    except TypeError as error:
        raise TypeError(f"save_checkpoint: extra must be JSON-serializable: {error}") from None
    _write_atomically(os.fspath(path), arrays)


def _write_atomically(path, arrays):
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:          # a file object: savez adds no ".npz"
            np.savez(file, **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)

# %% [markdown]
# Loading, in three steps: read every array (any failure there means the file is
# damaged), check each part against the model and the optimizer, then copy.

# %%
#| export
UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def load_checkpoint(path, model, optimizer=None):
    """Restore parameters (and optimizer state) saved by save_checkpoint, in place.
    Returns {"epoch": ..., "extra": ...}; raises CheckpointError naming the file and problem."""
    path = os.fspath(path)
    arrays, meta = _read_checkpoint(path)
    values = _saved_parameters(path, arrays, meta, model.parameters())
    if optimizer is not None:
        state_dict = _saved_optimizer_state(path, arrays, meta, optimizer)
        try:
            optimizer.load_state_dict(state_dict)    # checks everything before changing anything
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from None
    with no_grad():                                    # an in-place change: bumps versions
        for param, value in zip(model.parameters(), values):
            param.copy_(value)
    return {"epoch": meta["epoch"], "extra": meta["extra"]}


def _read_checkpoint(path):
    with open(path, "rb") as file:              # FileNotFoundError names the path itself
        try:
            with np.load(file, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except UNREADABLE as error:
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated "
                                  f"file?): {type(error).__name__}: {error}") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path}: missing key 'meta' (not a tinytorch checkpoint)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: the 'meta' entry is not valid JSON: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format (expected {CHECKPOINT_FORMAT!r})")
    missing = {"epoch", "parameters", "extra"} - set(meta)
    if missing:
        raise CheckpointError(f"{path}: the 'meta' entry lacks {sorted(missing)}")
    return arrays, meta


def _entry(path, arrays, key):
    if key not in arrays:
        raise CheckpointError(f"{path}: missing key {key!r}")
    return arrays[key]


def _saved_parameters(path, arrays, meta, params):
    if meta["parameters"] != len(params):
        raise CheckpointError(f"{path}: holds {meta['parameters']} parameter tensors, "
                              f"the model has {len(params)}")
    values = [_entry(path, arrays, f"model/{i}") for i in range(len(params))]
    for i, (param, value) in enumerate(zip(params, values)):
        if value.shape != param.shape:
            raise CheckpointError(f"{path}: parameter {i} has shape {value.shape} in the "
                                  f"checkpoint but {param.shape} in the model")
    return values


def _saved_optimizer_state(path, arrays, meta, optimizer):
    saved = meta.get("optimizer")
    if saved is None:
        raise CheckpointError(f"{path}: holds no optimizer state (saved without an optimizer)")
    if saved["class"] != type(optimizer).__name__:
        raise CheckpointError(f"{path}: holds the state of a {saved['class']} optimizer, "
                              f"not of a {type(optimizer).__name__}")
    state = {int(i): {name: _entry(path, arrays, f"optimizer/{i}/{name}") for name in names}
             for i, names in saved["state"].items()}
    return {"hyperparameters": saved["hyperparameters"], "state": state}

# %% [markdown]
# ## A progress line
#
# One line per epoch, so a long run shows where it is and whether it is learning:
#
# `epoch 3/10 [######..............] loss 0.4127 acc 0.875 val_loss 0.5012 val_acc 0.85`

# %%
#| export
def progress_line(epoch, epochs, metrics, width=20):
    """'epoch 3/10 [######..............] loss 0.4127 ...' for a dict of metric values."""
    done = round(width * epoch / epochs) if epochs else width
    bar = "#" * done + "." * (width - done)
    values = "".join(f" {name} {value:.4g}" for name, value in metrics.items())
    return f"epoch {epoch}/{epochs} [{bar}]{values}"

# %% [markdown]
# ## The Trainer
#
# One training step, in the order that matters:
#
# 1. `optimizer.zero_grad()`: gradients accumulate, so clear the last step's;
# 2. forward pass and loss;
# 3. `loss.backward()`: gradients for every parameter;
# 4. optionally, clip the gradients;
# 5. `optimizer.step()`.
#
# A loss that is `inf` or `NaN` stops training with a `FloatingPointError` that
# says when (epoch and batch) and what to try, before step 3: one step with NaN
# gradients would turn every weight into NaN.
#
# An epoch runs the steps over all batches with the model in training mode
# (`model.train()`: Dropout active), then evaluates on `val_data`, if given,
# in evaluation mode (`model.eval()`: Dropout off) and under `no_grad()` (no graph,
# since nothing will be differentiated). The scheduler then moves to the next epoch.
#
# Epoch metrics are averages over *examples*: each batch's mean loss is weighted
# by its size, so a small last batch counts for what it holds.
#
# `history` holds one value per epoch for `train_loss`, `val_loss` (when there is
# validation data), `lr`, and for classification (a cross-entropy loss)
# `train_accuracy` and `val_accuracy`. The training metrics are measured during the
# epoch, while the weights were still changing, as Keras and most loops do.
#
# `trainer.save_checkpoint(path)` stores everything a resumed run needs (weights,
# optimizer and scheduler state, epoch count, history); after
# `trainer.load_checkpoint(path)`, `fit()` continues exactly where it stopped.

# %%
#| export
class Trainer:
    """fit(train_data, epochs, val_data) and evaluate(data) for a model, loss and optimizer."""

    def __init__(self, model, loss_fn, optimizer, scheduler=None, max_grad_norm=None,
                 classification=None):
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be a Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {type(loss_fn).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError("Trainer: optimizer must be an Optimizer, "
                            f"got {type(optimizer).__name__}")
        model_params = {id(p) for p in model.parameters()}
        if model_params and not any(id(p) in model_params for p in optimizer.params):
            raise ValueError("Trainer: the optimizer holds none of the model's parameters "
                             "(was it built from another model?)")
        if scheduler is not None and scheduler.optimizer is not optimizer:
            raise ValueError("Trainer: the scheduler belongs to a different optimizer")
        if max_grad_norm is not None and not (isinstance(max_grad_norm, (int, float))
                                              and 0 < max_grad_norm < math.inf):
            raise ValueError(f"Trainer: max_grad_norm must be a positive number or None, "
                             f"got {max_grad_norm!r}")
        if classification is None:
            classification = isinstance(loss_fn, (CrossEntropyLoss, BinaryCrossEntropyLoss))
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.max_grad_norm = scheduler, max_grad_norm
        self.classification = bool(classification)
        names = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"]
        self.history = {name: [] for name in names
                        if self.classification or not name.endswith("accuracy")}
        self.epoch = 0      # epochs completed, over all calls to fit()

    def train_step(self, x, y):
        """One optimization step on one batch; returns (loss value, model outputs)."""
        self.optimizer.zero_grad()
        outputs = self.model(x)
        loss = self.loss_fn(outputs, y)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss is {value}: training diverged (lower the "
                                     f"learning rate, or clip gradients with max_grad_norm)")
        loss.backward()
        if self.max_grad_norm is not None:
            clip_grad_norm(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return value, outputs

    def fit(self, train_data, epochs, val_data=None, progress=None):
        """Train for `epochs` passes over train_data (an iterable of (x, y) batches);
        write a progress line per epoch to the `progress` stream if given. Returns history."""
        epochs = check_int("fit", "epochs", epochs, minimum=0)
        for epoch in range(1, epochs + 1):
            self.model.train()
            lr = self.optimizer.lr
            train = self._run_epoch(train_data, "train_data", epoch)
            self._record("train", train)
            self.history["lr"].append(lr)
            if val_data is not None:
                self._record("val", self.evaluate(val_data, "val_data"))
            if self.scheduler is not None:
                self.scheduler.step()
            self.epoch += 1
            if progress is not None:
                progress.write(progress_line(epoch, epochs, self._latest()) + "\n")
                progress.flush()
        return self.history

    def save_checkpoint(self, path):
        """Save model, optimizer, scheduler, epoch count and history: all a resume needs."""
        extra = {"history": self.history,
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}
        save_checkpoint(path, self.model, self.optimizer, epoch=self.epoch, extra=extra)

    def load_checkpoint(self, path):
        """Restore what save_checkpoint saved, so that fit() continues where it stopped."""
        saved = load_checkpoint(path, self.model, self.optimizer)
        extra = saved["extra"] if isinstance(saved["extra"], dict) else {}
        if self.scheduler is not None and extra.get("scheduler") is not None:
            self.scheduler.load_state_dict(extra["scheduler"])
        history = extra.get("history") or {}
        self.history = {name: list(history.get(name, [])) for name in self.history}
        self.epoch = saved["epoch"]

    def evaluate(self, data, name="data"):
        """Mean loss (and accuracy) over data, in eval mode and without a graph."""
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                return self._run_epoch(data, name, epoch=None)
        finally:
            self.model.train(was_training)

    # ---- the loop over batches --------------------------------------------------------

    def _run_epoch(self, data, name, epoch):
        """Average loss (and accuracy) over the batches; trains when epoch is not None."""
        loss_sum, correct, count = 0.0, 0, 0
        for batch, item in enumerate(data, start=1):
            x, y = _batch(item, name)
            if epoch is None:
                outputs = self.model(x)
                loss = self.loss_fn(outputs, y).item()
            else:
                try:
                    loss, outputs = self.train_step(x, y)
                except FloatingPointError as error:
                    raise FloatingPointError(f"epoch {epoch}, batch {batch}: {error}") from None
            size = len(x)
            loss_sum += loss * size
            count += size
            if self.classification:
                correct += count_correct(outputs, y)
        if count == 0:
            raise ValueError(f"{name} yielded no batches (is it empty, or a generator that was "
                             f"already used up? pass a list of batches or ArrayBatches)")
        metrics = {"loss": loss_sum / count}
        if self.classification:
            metrics["accuracy"] = correct / count
        return metrics

    def _record(self, prefix, metrics):
        for name, value in metrics.items():
            self.history[f"{prefix}_{name}"].append(value)

    def _latest(self):
        short = {"train_loss": "loss", "train_accuracy": "acc", "val_loss": "val_loss",
                 "val_accuracy": "val_acc"}
        return {short[name]: values[-1] for name, values in self.history.items()
                if name in short and values}


def _batch(item, name):
    """An (inputs, targets) pair from a batch, as Tensors."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TypeError(f"each batch of {name} must be an (inputs, targets) pair, "
                        f"got {type(item).__name__}")
    x, y = (v if isinstance(v, Tensor) else Tensor(v) for v in item)
    if x.ndim == 0:
        raise ValueError(f"a batch of {name} has 0-d inputs; "
                         "batches need a first (example) dimension")
    return x, y

# %% [markdown]
# ## Trying it out: XOR
#
# The four XOR points cannot be separated by a line, so a hidden layer is needed.

# %%
import io

from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.optimizers import Adam

xor_x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
xor_y = np.array([0, 1, 1, 0])
model = Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 2, seed=1))
optimizer = Adam(model.parameters(), lr=0.05)
trainer = Trainer(model, CrossEntropyLoss(), optimizer, scheduler=CosineAnnealingLR(optimizer, 200))
log = io.StringIO()
history = trainer.fit(ArrayBatches(xor_x, xor_y, batch_size=4), epochs=200, progress=log)
print(log.getvalue().splitlines()[-1])
assert history["train_accuracy"][-1] == 1.0
assert trainer.evaluate([(xor_x, xor_y)])["accuracy"] == 1.0
