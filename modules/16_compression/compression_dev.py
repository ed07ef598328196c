# %% [markdown]
# # Module 16: Compression
#
# A trained network has more weights than it needs. Module 15 kept every weight
# and stored it in fewer bits; this module removes weights, or replaces a big
# layer by a smaller computation, or trains a small network to imitate a big one:
#
# | technique | what shrinks | the model afterwards |
# |---|---|---|
# | **unstructured pruning** | individual weights set to 0 | same shapes, many zeros |
# | **structured pruning** | whole neurons / filters removed | genuinely smaller layers |
# | **low-rank factorization** | `W (in, out)` ~= `A (in, r) @ B (r, out)` | two thin layers |
# | **knowledge distillation** | a whole new, smaller student | any architecture |
#
# The recurring idea is **magnitude**: weights (or neurons) that are small matter
# least, so they go first. Every claim of this kind is checked in the tests by
# measuring accuracy before and after on the digits data set.

# %%
#| default_exp compression

# %%
#| export
"""Compression: magnitude pruning (unstructured with persistent masks; structured,
producing smaller layers), sparsity reports, low-rank factorization of Linear layers,
and the knowledge-distillation loss."""
import copy
import numbers
from typing import NamedTuple

import numpy as np

from tinytorch.core.activations import Activation, LogSoftmax
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import leaf_layers

# %% [markdown]
# ## Which weights can be pruned
#
# We prune the **weights** of `Linear` and `Conv2d` layers. Biases are left
# alone: there are few of them (a `Linear(64, 32)` has 2,048 weights and 32
# biases), and a neuron's bias is what lets it stay useful when its inputs thin out.
#
# `prunable_layers(model)` lists those layers with their names, in forward order,
# using module 14's `leaf_layers` (nested `Sequential`s opened up, names like
# `"0"` or `"2.1"`).

# %%
#| export
PRUNABLE = (Linear, Conv2d)


def prunable_layers(model):
    """[(name, layer)] for every Linear and Conv2d of the model, in forward order."""
    found = [(name, layer) for name, layer in leaf_layers(model) if isinstance(layer, PRUNABLE)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to prune")
    return found


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")

# %% [markdown]
# ## Unstructured magnitude pruning
#
# To prune a fraction `s` of `n` weights, zero the `round(s * n)` weights of
# smallest absolute value. We sort `|w|` rather than compare with a threshold,
# so the count is exact even when values tie (ties go to the earlier position).
#
# - **Per layer**: every layer loses the same fraction.
# - **Global**: one ranking over all layers together. Layers whose weights are
#   small overall (often big layers, whose initialisation scale is smaller) lose
#   more; small, important layers keep more. At the same total sparsity this
#   usually costs less accuracy.
#
# **Masks.** Zeroing is not enough: the next training step gives a pruned weight
# a gradient, and it comes back to life. So pruning returns its 0/1 masks in a
# `PruningMasks` object, and `masks.apply()` zeroes the pruned entries again. Call
# it after every optimizer step while fine-tuning a pruned model.

# %%
#| export
def magnitude_mask(weights, sparsity):
    """A 0/1 float32 mask with 0 at the round(sparsity * size) entries of smallest |w|."""
    _check_fraction("sparsity", sparsity)
    weights = np.asarray(weights)
    if np.isnan(weights).any():
        raise ValueError("magnitude_mask: the weights contain NaN, which has no magnitude to rank")
    n_pruned = int(round(sparsity * weights.size))
    order = np.argsort(np.abs(weights), axis=None, kind="stable")
    mask = np.ones(weights.size, np.float32)
    mask[order[:n_pruned]] = 0
    return mask.reshape(weights.shape)


class PruningMasks:
    """The 0/1 mask of each pruned weight; apply() zeroes the pruned entries again."""

    def __init__(self):
        self.entries = {}                 # layer name -> (weight Tensor, mask array)

    def add(self, name, weight, mask):
        if mask.shape != weight.shape:
            raise ValueError(f"mask {mask.shape} does not match weight {weight.shape} of {name}")
        self.entries[name] = (weight, mask.astype(weight.dtype))

    def apply(self):
        """Zero every pruned weight (in place): call after each update while fine-tuning."""
        for weight, mask in self.entries.values():
            weight.data *= mask

    def __getitem__(self, name):
        return self.entries[name][1]

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def sparsity(self):
        """The fraction of masked-out entries over all masks."""
        masks = [mask for _, mask in self.entries.values()]
        return sum(int((m == 0).sum()) for m in masks) / sum(m.size for m in masks)


def prune_per_layer(model, sparsity):
    """Zero the smallest-|w| `sparsity` fraction of each layer's weights; return the masks."""
    masks = PruningMasks()
    for name, layer in prunable_layers(model):
        masks.add(name, layer.weight, magnitude_mask(layer.weight.data, sparsity))
    masks.apply()
    return masks


def prune_global(model, sparsity):
    """Zero the smallest-|w| `sparsity` fraction of all weights, ranked together; return
    the masks."""
    layers = prunable_layers(model)
    everything = np.concatenate([layer.weight.data.ravel() for _, layer in layers])
    keep = magnitude_mask(everything, sparsity)
    masks, start = PruningMasks(), 0
    for name, layer in layers:
        size = layer.weight.size
        masks.add(name, layer.weight, keep[start:start + size].reshape(layer.weight.shape))
        start += size
    masks.apply()
    return masks

# %% [markdown]
# ## How sparse is it?
#
# `sparsity_report(model)` counts, for each prunable layer, the zeros among its
# weights, and the same over all of them (`"total"`). It counts the zeros that are
# actually in the arrays, whoever put them there.

# %%
#| export
class Sparsity(NamedTuple):
    zeros: int       # weights equal to 0
    params: int      # weights in all

    @property
    def fraction(self):
        return self.zeros / self.params if self.params else 0.0


def sparsity_report(model):
    """{layer name: Sparsity(zeros, params)} of each Linear/Conv2d weight, plus "total"."""
    report = {name: Sparsity(int((layer.weight.data == 0).sum()), layer.weight.size)
              for name, layer in prunable_layers(model)}
    report["total"] = Sparsity(sum(r.zeros for r in report.values()),
                               sum(r.params for r in report.values()))
    return report

# %% [markdown]
# ## Structured pruning: smaller layers, not just zeros
#
# Zeros in a dense array still cost memory and multiplications. Removing a whole
# output neuron of a `Linear` (a column of its weight and one bias), or a whole
# filter of a `Conv2d`, gives a layer that is genuinely smaller. Its **L2 norm**
# (of the weights feeding it) measures how much it can contribute; the weakest go.
#
# A removed output must also disappear from the **next** layer's inputs. What sits
# between the two layers decides how:
#
# - elementwise layers (activations, `Dropout`) and pooling keep the channel
#   structure: output `j` of one layer is input `j` of the next;
# - `Flatten` between a `Conv2d` and a `Linear` turns channel `c` into the
#   `H*W` consecutive inputs `c*H*W ... (c+1)*H*W - 1` of the `Linear`.
#
# The smaller model then computes exactly what the original computes when the
# removed neurons' weights (in and out) are zero. The last prunable layer keeps
# all its outputs: they are the model's outputs. The new model is built from a
# copy, so fine-tuning it never changes the original.

# %%
#| export
CHANNEL_PRESERVING = (Activation, Dropout, MaxPool2d, AvgPool2d, Flatten)


def output_norms(layer):
    """The L2 norm of each output neuron's (Linear) or filter's (Conv2d) weights."""
    w = layer.weight.data.astype(np.float64)
    if isinstance(layer, Linear):
        return np.sqrt((w ** 2).sum(axis=0))                   # weight is (in, out)
    return np.sqrt((w ** 2).reshape(w.shape[0], -1).sum(axis=1))


def strongest_outputs(layer, n_keep):
    """Sorted indices of the n_keep outputs with the largest L2 norm."""
    return np.sort(np.argsort(-output_norms(layer), kind="stable")[:n_keep])


def _rebuilt(layer, weight, bias):
    """A new layer of the same kind and settings holding the given weight and bias."""
    # the constructor draws (seeded) initial weights, which are replaced right away
    if isinstance(layer, Linear):
        new = Linear(weight.shape[0], weight.shape[1], bias=bias is not None, seed=0)
    else:
        new = Conv2d(weight.shape[1], weight.shape[0], layer.kernel_size, layer.stride,
                     layer.padding, bias=bias is not None, seed=0)
    new.weight = Tensor(weight, requires_grad=True)
    if bias is not None:
        new.bias = Tensor(bias, requires_grad=True)
    return new


def keep_outputs(layer, keep):
    """A smaller copy of layer with only the outputs (neurons or filters) `keep`."""
    bias = None if layer.bias is None else layer.bias.data[keep]
    if isinstance(layer, Linear):
        return _rebuilt(layer, layer.weight.data[:, keep], bias)
    return _rebuilt(layer, layer.weight.data[keep], bias)


def keep_inputs(layer, keep, group=1):
    """A smaller copy of layer with only the inputs of channels `keep`; for a Linear
    after Flatten each channel is `group` consecutive inputs."""
    bias = None if layer.bias is None else layer.bias.data.copy()
    if isinstance(layer, Conv2d):
        return _rebuilt(layer, layer.weight.data[:, keep], bias)
    rows = (np.asarray(keep)[:, None] * group + np.arange(group)).ravel()
    return _rebuilt(layer, layer.weight.data[rows], bias)


def _channels(layer):
    return layer.out_features if isinstance(layer, Linear) else layer.out_channels


def _group(layer, following, channels):
    """Inputs of `following` per output channel of `layer`: H*W for Conv2d -> Flatten ->
    Linear, else 1."""
    if isinstance(layer, Conv2d) and isinstance(following, Linear):
        if following.in_features % channels:
            raise ValueError(f"{following} cannot follow {channels} flattened channels")
        return following.in_features // channels
    return 1


def prune_structured(model, fraction):
    """A new, smaller Sequential: every Linear/Conv2d but the last loses the `fraction`
    of its outputs with the smallest L2 norm, and the next one the matching inputs."""
    _check_fraction("fraction", fraction)
    if not isinstance(model, Sequential):
        raise TypeError(f"prune_structured works on a Sequential, got {type(model).__name__}")
    layers = copy.deepcopy(model.layers)
    positions = [i for i, layer in enumerate(layers) if isinstance(layer, PRUNABLE)]
    for here, after in zip(positions, positions[1:]):
        for between in layers[here + 1:after]:
            if not isinstance(between, CHANNEL_PRESERVING):
                raise TypeError(f"prune_structured cannot see how {type(between).__name__} "
                                f"maps channels between layers {here} and {after}")
        channels = _channels(layers[here])
        keep = strongest_outputs(layers[here], max(1, channels - round(fraction * channels)))
        group = _group(layers[here], layers[after], channels)
        layers[here] = keep_outputs(layers[here], keep)
        layers[after] = keep_inputs(layers[after], keep, group)
    return Sequential(*layers)

# %% [markdown]
# ## Low-rank factorization
#
# Any weight matrix `W (in, out)` has a singular value decomposition
# `W = U diag(s) V^T` with singular values `s_1 >= s_2 >= ... >= 0`. Keeping only
# the first `r` gives the best rank-`r` approximation (Eckart-Young), and its
# squared Frobenius error is exactly the energy of what was dropped:
#
# `||W - W_r||_F^2 = s_{r+1}^2 + s_{r+2}^2 + ...`
#
# Split `W_r` into two factors, `A = U_r diag(sqrt(s_r))` of shape `(in, r)` and
# `B = diag(sqrt(s_r)) V_r^T` of shape `(r, out)`, and the layer `x @ W + b`
# becomes two layers, `Linear(in, r, bias=False)` then `Linear(r, out)`. They hold
# `r * (in + out)` weights instead of `in * out`: fewer whenever
# `r < in * out / (in + out)`. (At full rank the product reproduces `W`, up to
# float rounding.) The SVD runs in float64; the factors are stored as float32.

# %%
#| export
def factorize_linear(layer, rank):
    """Sequential(Linear(in, rank, bias=False), Linear(rank, out)) computing x @ W_r + b,
    with W_r the best rank-`rank` approximation of layer.weight."""
    if not isinstance(layer, Linear):
        raise TypeError(f"factorize_linear expects a Linear, got {type(layer).__name__}")
    full_rank = min(layer.in_features, layer.out_features)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) \
            or not 1 <= rank <= full_rank:
        raise ValueError(f"rank must be an integer in [1, {full_rank}], got {rank!r}")
    u, s, vt = np.linalg.svd(layer.weight.data.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    bias = None if layer.bias is None else layer.bias.data.copy()
    first = _rebuilt(layer, (u[:, :rank] * root).astype(np.float32), None)
    second = _rebuilt(layer, (root[:, None] * vt[:rank]).astype(np.float32), bias)
    return Sequential(first, second)

# %% [markdown]
# ## Knowledge distillation
#
# A big trained **teacher** knows more than the labels say: for an image of a 3,
# it gives 8 some probability and 1 almost none. A small **student** learns from
# those soft probabilities as well as from the labels (Hinton et al., 2015):
#
# `loss = alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * CE(student, labels)`
#
# with `p = softmax(logits / T)`. A **temperature** `T > 1` softens both
# distributions, so the small probabilities the teacher gives wrong classes carry
# weight. Dividing the logits by `T` divides the gradients of the KL term by
# `T^2`; multiplying by `T^2` keeps the two terms on the same scale whatever `T` is.
#
# `KL(p || q) = sum_i p_i (log p_i - log q_i)`, averaged over the batch (PyTorch's
# `KLDivLoss(reduction="batchmean")`). The teacher is a constant: its logits are
# read as numbers and no gradient flows to it. The student's part is built from
# Tensor operations (`LogSoftmax` of module 02, `CrossEntropyLoss` of module 04),
# so its gradient comes from autograd.

# %%
#| export
def distillation_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))
    + (1 - alpha) * CE(student, targets), averaged over the batch."""
    if not isinstance(student_logits, Tensor):
        raise TypeError(f"distillation_loss: student logits must be a Tensor, "
                        f"got {type(student_logits).__name__}")
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits
    teacher = np.asarray(teacher)
    if student_logits.ndim != 2 or teacher.shape != student_logits.shape:
        raise ValueError(f"distillation_loss: student {student_logits.shape} and teacher "
                         f"{teacher.shape} logits must both be (N, C)")
    if isinstance(T, bool) or not isinstance(T, numbers.Real) or not T > 0:
        raise ValueError(f"distillation_loss: the temperature T must be positive, got {T!r}")
    _check_fraction("alpha", alpha)
    dtype = student_logits.dtype
    log_p_teacher = LogSoftmax()(Tensor(teacher / T, dtype=dtype)).data    # a constant
    p_teacher = Tensor(np.exp(log_p_teacher), dtype=dtype)
    log_p_student = LogSoftmax()(student_logits / T)
    kl_rows = (p_teacher * (Tensor(log_p_teacher, dtype=dtype) - log_p_student)).sum(axis=1)
    soft = kl_rows.mean() * (alpha * T * T)
    if alpha == 1:
        return soft
    return soft + CrossEntropyLoss()(student_logits, targets) * (1 - alpha)

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
from tinytorch.core.activations import ReLU

model = Sequential(Linear(16, 32, seed=0), ReLU(), Linear(32, 4, seed=1))
masks = prune_global(model, 0.75)
for name, row in sparsity_report(model).items():
    print(f"{name:>6}: {row.zeros:5d} / {row.params:5d} zeros ({row.fraction:.0%})")

smaller = prune_structured(Sequential(Linear(16, 32, seed=0), ReLU(), Linear(32, 4, seed=1)), 0.5)
print(smaller)                                         # Linear(16, 16), ReLU, Linear(16, 4)

low_rank = factorize_linear(Linear(64, 64, seed=0), rank=8)
print(low_rank, "weights:", 64 * 8 + 8 * 64, "instead of", 64 * 64)

s = Tensor(np.random.default_rng(0).standard_normal((4, 10)), requires_grad=True)
t = np.random.default_rng(1).standard_normal((4, 10))
print(distillation_loss(s, t, np.array([0, 1, 2, 3]), T=4.0, alpha=0.7))
