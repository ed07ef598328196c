# %% [markdown]
# # Module 02: Activations
#
# A stack of linear layers is still one linear map: `(x @ W1) @ W2 == x @ (W1 @ W2)`.
# Activations are the elementwise bends between layers that let a network
# represent anything more interesting than a straight line.
#
# | activation | formula | used for |
# |---|---|---|
# | `ReLU` | `max(x, 0)` | hidden layers of most networks |
# | `Sigmoid` | `1 / (1 + exp(-x))` | probabilities of yes/no outputs, gates |
# | `Tanh` | `(e^x - e^-x) / (e^x + e^-x)` | zero-centred hidden units, RNNs |
# | `GELU` | `x * Phi(x)` (smooth ReLU) | transformers |
# | `Softmax` | `exp(x_i) / sum_j exp(x_j)` | a probability distribution over classes |
# | `LogSoftmax` | `x_i - log sum_j exp(x_j)` | log-probabilities for losses |
#
# The recurring theme is **numerical stability**: `exp(1000)` is `inf` in any float
# format, so each formula is rearranged so that no intermediate value can overflow.
#
# Gradients: `ReLU`, `Sigmoid` and `Tanh` record their own operation (`"relu"`,
# `"sigmoid"`, `"tanh"`), whose backward rules live in module 05. `GELU`,
# `Softmax` and `LogSoftmax` are built from Tensor operations, so they get their
# gradients for free from those operations' rules.
#
# Dtypes follow module 01's rule: float inputs keep their dtype, and integer inputs
# give float32 (`as_float`), as PyTorch does for `sigmoid` and `tanh`; `ReLU` of
# integers stays integer. (PyTorch refuses integers in `GELU` and `Softmax`; here
# they are computed in float32 like the rest.)

# %%
#| default_exp core.activations

# %%
#| export
"""Activations: ReLU, Sigmoid, Tanh, GELU (tanh approximation), Softmax and LogSoftmax,
each computed so that no intermediate value overflows."""
import math

import numpy as np

from tinytorch.core.tensor import Tensor, as_float

# %% [markdown]
# ## A common shape
#
# Every activation is an object you call: `relu(x)` runs `relu.forward(x)`. They
# hold no parameters. (They are not `Module`s: that class arrives in module 03,
# which builds on this one. `Sequential` happily chains both.)

# %%
#| export
class Activation:
    """Base class: `act(x)` checks that `x` is a Tensor and returns `act.forward(x)`."""

    def __call__(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__} expects a Tensor, got {type(x).__name__}")
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def __repr__(self):
        return f"{type(self).__name__}()"

# %% [markdown]
# ## ReLU
#
# `max(x, 0)`: pass positive values, zero out the rest. Cheap, and its gradient is
# exactly 1 wherever the unit is active, so deep stacks do not shrink their
# gradients the way sigmoid stacks do.

# %%
#| export
class ReLU(Activation):
    """max(x, 0), elementwise."""

    def forward(self, x):
        return Tensor._make(np.maximum(x.data, 0), "relu", (x,))

# %% [markdown]
# ## Sigmoid, computed without overflow
#
# The textbook `1 / (1 + exp(-x))` overflows for `x = -1000` (`exp(1000) = inf`;
# the answer 0 comes out right, but with an overflow warning), and the equivalent
# `exp(x) / (1 + exp(x))` overflows for `x = +1000`. Use each where it is safe. With
# `e = exp(-|x|)`, which is always in (0, 1]:
#
# - `x >= 0`: `1 / (1 + exp(-x)) = 1 / (1 + e)`
# - `x < 0`:  `exp(x) / (1 + exp(x)) = e / (1 + e)`
#
# `stable_sigmoid` works on numpy arrays; module 05 reuses it for the gradient of
# the binary cross-entropy loss.

# %%
#| export
def stable_sigmoid(z):
    """1 / (1 + exp(-z)) for a numpy array, with no overflow for any finite z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


class Sigmoid(Activation):
    """1 / (1 + exp(-x)), elementwise, stable for large |x|."""

    def forward(self, x):
        return Tensor._make(stable_sigmoid(as_float(x.data)), "sigmoid", (x,))

# %% [markdown]
# ## Tanh
#
# A rescaled sigmoid (`tanh(x) = 2 sigmoid(2x) - 1`) with outputs in (-1, 1),
# centred on zero. numpy's `tanh` is already stable for large |x|.

# %%
#| export
class Tanh(Activation):
    """tanh(x), elementwise."""

    def forward(self, x):
        return Tensor._make(np.tanh(as_float(x.data)), "tanh", (x,))

# %% [markdown]
# ## GELU: the tanh approximation
#
# GELU weighs each input by the probability that a standard normal variable is
# below it: `GELU(x) = x * Phi(x)`, where `Phi` is the normal CDF,
# `Phi(x) = (1 + erf(x / sqrt(2))) / 2`. Like ReLU it passes large positive values
# and blocks large negative ones, but it is smooth near zero.
#
# We use the **tanh approximation** of Hendrycks & Gimpel (2016), used by BERT and
# GPT-2 and available in PyTorch as `GELU(approximate="tanh")`:
#
# `GELU(x) ~= 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`
#
# It differs from the exact erf form by less than 5e-4 everywhere. Built from
# Tensor operations and `Tanh`, it needs no backward rule of its own.

# %%
#| export
class GELU(Activation):
    """x * Phi(x), with the tanh approximation of the normal CDF Phi."""

    SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

    def forward(self, x):
        # Beyond |x| = 10 the tanh is saturated (inner > 54), so the cube may use a
        # clipped x: the result is unchanged and the cube cannot overflow float32.
        # c * c * c rather than c ** 3: numpy's general pow is ~300x slower here.
        c = x.clip(-10, 10)
        inner = self.SQRT_2_OVER_PI * (x + 0.044715 * c * c * c)
        return 0.5 * x * (1 + Tanh()(inner))

# %% [markdown]
# ## Softmax and LogSoftmax: subtract the max first
#
# Softmax turns scores into probabilities along one axis (`dim`, the last by
# default): `exp(x_i) / sum_j exp(x_j)`. With scores like 1000, `exp` overflows.
# But adding the same constant `c` to every score changes nothing:
#
# `exp(x_i - c) / sum_j exp(x_j - c) = exp(x_i) / sum_j exp(x_j)`
#
# Choose `c = max_j x_j`: then every exponent is `<= 0`, every `exp` is in (0, 1],
# and the largest is exactly 1, so the sum is at least 1 and never 0.
#
# LogSoftmax is the log of that, `log softmax(x)_i = (x_i - c) - log sum_j exp(x_j - c)`
# (the "log-sum-exp trick"). Computing it directly, rather than `log(softmax(x))`,
# avoids `log(0) = -inf` when a probability underflows to 0.
#
# Because the shift does not change the result, it does not need a gradient
# either: we `detach()` it, and the gradients flow through the other operations.
#
# One consequence to know when comparing with PyTorch: its fused softmax keeps its
# output for backward, so changing that output in place (under `no_grad()`) before
# `backward()` is an error there. Ours is built from operations that keep their
# inputs (the exponentials and their sum), not the output, so the same change is
# harmless here and the gradient is still exact (module 05's in-place tests).

# %%
#| export
def _shifted_by_max(x, dim):
    """x minus its max along `dim`: every entry <= 0, the largest exactly 0."""
    # Scores spanning more than float32's range give -inf here, which is the right
    # answer (exp(-inf) = 0): that overflow is expected, not an error.
    with np.errstate(over="ignore"):
        return x - x.max(axis=dim, keepdims=True).detach()


class Softmax(Activation):
    """exp(x) / sum(exp(x)) along `dim`; each slice along `dim` sums to 1."""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        if x.size == 0:               # nothing to normalise (max of an empty axis is undefined)
            return x * 1.0
        exps = _shifted_by_max(x, self.dim).exp()
        return exps / exps.sum(axis=self.dim, keepdims=True)

    def __repr__(self):
        return f"Softmax(dim={self.dim})"


class LogSoftmax(Activation):
    """log(softmax(x)) along `dim`, via the log-sum-exp trick."""

    def __init__(self, dim=-1):
        self.dim = dim

    def forward(self, x):
        if x.size == 0:
            return x * 1.0
        shifted = _shifted_by_max(x, self.dim)
        return shifted - shifted.exp().sum(axis=self.dim, keepdims=True).log()

    def __repr__(self):
        return f"LogSoftmax(dim={self.dim})"

# %% [markdown]
# ## Trying it out

# %%
x = Tensor([[-2.0, 0.0, 3.0], [1000.0, -1000.0, 0.0]])
assert np.array_equal(ReLU()(x).data, [[0, 0, 3], [1000, 0, 0]])

probs = Sigmoid()(Tensor([-1e4, 0.0, 1e4]))                  # no overflow warning
assert np.array_equal(probs.data, [0.0, 0.5, 1.0])

assert abs(GELU()(Tensor(1.0)).item() - 0.8412) < 1e-3       # exact GELU(1) = 0.8413

p = Softmax()(x)
assert np.allclose(p.sum(axis=-1).data, 1.0)                 # rows are distributions
assert np.allclose(np.exp(LogSoftmax()(x).data), p.data)
assert np.isfinite(LogSoftmax()(x).data).all()              # log-probabilities, even for -1000
print(p)
