# %% [markdown]
# # Module 04: Losses
#
# A loss turns "how wrong is the network?" into one number that training can push
# down. Each loss here is a `Module` called as `loss(prediction, target)` that
# returns a scalar Tensor: the mean over the batch.
#
# | loss | prediction | target | for |
# |---|---|---|---|
# | `MSELoss` | any shape | same shape | regression |
# | `CrossEntropyLoss` | logits `(N, C)` | class indices `(N,)` | one of C classes |
# | `BinaryCrossEntropyLoss` | logits, any shape | 0/1 (or in [0, 1]), same shape | yes/no |
#
# Both cross-entropies take **logits** (raw scores), not probabilities: combining
# the softmax/sigmoid with the log inside the loss is what keeps it finite for
# scores like 1e4, where `log(softmax(x))` would compute `log(0) = -inf`.

# %%
#| default_exp core.losses

# %%
#| export
"""Losses: MSELoss, CrossEntropyLoss and BinaryCrossEntropyLoss (on logits), each
returning the batch mean as a scalar Tensor, finite even for logits of +-1e4."""
import numpy as np

from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Checking inputs
#
# A loss is where shapes from two different places (the model, the data) meet, so
# mismatches surface here. We reject them with messages that show both shapes,
# rather than letting broadcasting silently compare the wrong things: `(N, 1)`
# predictions minus `(N,)` targets would broadcast to `(N, N)`. Predictions must be
# floating point (an integer prediction is a `TypeError`, as in PyTorch); targets
# take the prediction's dtype, so integer 0/1 labels work as they are.

# %%
#| export
def _check_prediction(loss, pred):
    if not isinstance(pred, Tensor):
        raise TypeError(f"{loss}: the prediction must be a Tensor, got {type(pred).__name__}")
    if pred.dtype.kind != "f":       # as PyTorch: predictions (and logits) are floats
        raise TypeError(f"{loss}: the prediction must be floating point, got {pred.dtype}")
    if pred.size == 0:
        # the mean over no samples is undefined: say so rather than return NaN
        raise ValueError(f"{loss}: empty batch (prediction shape {pred.shape})")


def _target_like(loss, pred, target):
    """The target as a Tensor with the prediction's shape and dtype."""
    target = target if isinstance(target, Tensor) else Tensor(target)
    if target.shape != pred.shape:
        raise ValueError(f"{loss}: prediction shape {pred.shape} and target shape "
                         f"{target.shape} must match")
    if target.dtype != pred.dtype and not target.requires_grad:
        target = Tensor(target.data, dtype=pred.dtype)
    return target

# %% [markdown]
# ## Mean squared error
#
# `mean((pred - target)^2)`: the average squared distance. Built from Tensor
# operations, so its gradient, `2 (pred - target) / n`, comes for free.

# %%
#| export
class MSELoss(Module):
    """mean((pred - target) ** 2)."""

    def forward(self, pred, target):
        _check_prediction("MSELoss", pred)
        target = _target_like("MSELoss", pred, target)
        return ((pred - target) ** 2).mean()

# %% [markdown]
# ## Cross-entropy over classes
#
# For logits `x` of one example and its true class `y`, the model's probability
# for `y` is `softmax(x)_y`, and the loss is `-log softmax(x)_y`:
#
# `loss = -(x_y - log sum_j exp(x_j))`
#
# computed with the log-sum-exp trick of module 02: subtract the row maximum `m`
# first, `log sum_j exp(x_j) = m + log sum_j exp(x_j - m)`. (This module builds on
# 01 and 03, not 02, so it writes those two lines itself.) Picking `x_y` for every
# row at once is integer-array indexing: `log_probs[arange(N), y]`.

# %%
#| export
def _class_indices(target, logits):
    """Validate (N,) integer class indices for (N, C) logits; return them as an array."""
    if logits.ndim != 2:
        raise ValueError(f"CrossEntropyLoss expects logits of shape (N, C), got {logits.shape}")
    classes = target.data if isinstance(target, Tensor) else np.asarray(target)
    if classes.dtype.kind not in "iu":
        raise TypeError(f"CrossEntropyLoss: targets must be integer class indices, "
                        f"got dtype {classes.dtype}")
    n, c = logits.shape
    if classes.shape != (n,):
        raise ValueError(f"CrossEntropyLoss: logits {logits.shape} need targets of shape ({n},), "
                         f"got {classes.shape}")
    if n and (classes.min() < 0 or classes.max() >= c):
        raise ValueError(f"CrossEntropyLoss: class indices must be in [0, {c}), "
                         f"got values from {classes.min()} to {classes.max()}")
    return classes


class CrossEntropyLoss(Module):
    """mean over rows of -log softmax(logits)[target]; logits (N, C), target (N,) ints."""

    def forward(self, logits, target):
        _check_prediction("CrossEntropyLoss", logits)
        classes = _class_indices(target, logits)
        shifted = logits - logits.max(axis=1, keepdims=True).detach()
        log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
        return -log_probs[np.arange(len(classes)), classes].mean()

# %% [markdown]
# ## Binary cross-entropy on logits
#
# For a logit `x`, probability `p = sigmoid(x)` and label `y` in [0, 1]:
#
# `loss = -(y log p + (1 - y) log(1 - p))`
#
# With `x = 1e4`, `p` rounds to exactly 1 and `log(1 - p) = -inf`. Substituting
# `p = 1 / (1 + exp(-x))` and simplifying gives a form with nothing to overflow:
#
# `loss = max(x, 0) - x y + log(1 + exp(-|x|))`
#
# `exp(-|x|)` is in (0, 1], so the log is of a number in (1, 2]; we use `log1p`,
# which stays accurate when `exp(-|x|)` is tiny. The loss records its own
# operation, `"bce_with_logits"`, because its gradient has a simple, stable form,
# `sigmoid(x) - y`, which module 05 uses directly (differentiating `max` and `|x|`
# piece by piece would be wrong at exactly `x = 0`).

# %%
#| export
def binary_cross_entropy_with_logits(logits, target):
    """Elementwise max(x, 0) - x*y + log(1 + exp(-|x|)), as a Tensor (not yet averaged)."""
    x, y = logits.data, target.data
    losses = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    return Tensor._make(losses, "bce_with_logits", (logits, target))


class BinaryCrossEntropyLoss(Module):
    """Binary cross-entropy on logits (like PyTorch's BCEWithLogitsLoss), averaged."""

    def forward(self, logits, target):
        _check_prediction("BinaryCrossEntropyLoss", logits)
        target = _target_like("BinaryCrossEntropyLoss", logits, target)
        if target.size and (target.data.min() < 0 or target.data.max() > 1):
            raise ValueError("BinaryCrossEntropyLoss: targets must be in [0, 1] "
                             "(it takes logits as predictions and 0/1 labels as targets)")
        return binary_cross_entropy_with_logits(logits, target).mean()

# %% [markdown]
# ## Trying it out

# %%
mse = MSELoss()(Tensor([1.0, 2.0, 3.0]), Tensor([1.0, 2.0, 5.0]))
assert abs(mse.item() - 4 / 3) < 1e-6

logits = Tensor([[2.0, 1.0, 0.1], [1e4, -1e4, 0.0]])
ce = CrossEntropyLoss()(logits, np.array([0, 0]))
expected_row0 = -np.log(np.exp(2.0) / np.exp([2.0, 1.0, 0.1]).sum())
assert abs(ce.item() - expected_row0 / 2) < 1e-5               # row 1 is certain and right: 0

bce = BinaryCrossEntropyLoss()(Tensor([1e4, -1e4, 0.0]), Tensor([1.0, 0.0, 1.0]))
assert abs(bce.item() - np.log(2) / 3) < 1e-6                  # only the 0 logit costs log 2
print(ce, bce)
