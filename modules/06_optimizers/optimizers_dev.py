# %% [markdown]
# # Module 06: Optimizers
#
# After `loss.backward()`, every parameter holds `.grad`: the direction in which
# the loss grows fastest. An optimizer turns those gradients into a change of the
# parameters. The simplest rule is gradient descent, `p = p - lr * grad`; the ones
# people use keep a little memory per parameter to move faster and more steadily:
#
# | optimizer | memory per parameter | idea |
# |---|---|---|
# | `SGD` | none | step against the gradient |
# | `SGD(momentum=0.9)` | a velocity | keep rolling in the direction of past steps |
# | `Adam` | mean and mean square of the gradient | steps of about `lr`, at any gradient scale |
# | `AdamW` | the same | Adam, with weight decay applied to the weights directly |
#
# Every optimizer here follows PyTorch's `torch.optim` formulas exactly, so a
# model trained with `tinytorch` and one trained with `torch` take the same steps.
#
# Three rules hold for all of them:
#
# 1. **Updates happen in place** (`param -= lr * grad`, `param.mul_(...)`): the model
#    keeps holding the same Tensor objects, their dtype (float32) does not change,
#    and each update bumps the parameter's version (module 01). A graph computed
#    before the step and differentiated after it then fails loudly in `backward()`
#    instead of giving gradients of values that no longer exist (as in PyTorch).
# 2. **Updates are not part of the graph.** `step()` runs under `no_grad()`: the
#    next `backward()` must see the new values as fresh leaves, not as the result
#    of an operation on the old ones.
# 3. **A parameter whose `.grad` is `None` is left alone** (it took no part in the
#    loss, e.g. a frozen layer).

# %%
#| default_exp core.optimizers

# %%
#| export
"""Optimizers: the Optimizer base (zero_grad, step, per-parameter state, state_dict),
SGD (momentum, Nesterov, weight decay, dampening), Adam and AdamW, following
torch.optim's formulas. Updates are in place on `param.data`, never recorded."""
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Checking what the optimizer is given
#
# Two mistakes are common and silent if not caught: an empty parameter list
# (`SGD(model.parameters())` on a model whose layers were never stored as
# attributes) and hyper-parameters of the wrong sign (a negative learning rate
# climbs the loss). We reject both with a `ValueError` that names the optimizer
# and the value.
#
# The parameters must be leaf Tensors (made by you, like a layer's weight), not
# results of an operation: those are recomputed every forward pass, so updating
# them would change nothing.

# %%
#| export
def _parameter_list(params, optimizer):
    """`params` (any iterable of Tensors, e.g. model.parameters()) as a checked list."""
    if isinstance(params, Tensor):
        raise TypeError(f"{optimizer}: params must be an iterable of Tensors, got a single "
                        f"Tensor (pass [tensor])")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{optimizer}: params must be an iterable of Tensors, "
                        f"got {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{optimizer}: got an empty parameter list")
    seen = set()
    for i, param in enumerate(params):
        if not isinstance(param, Tensor):
            raise TypeError(f"{optimizer}: parameter {i} is a {type(param).__name__}, not a Tensor")
        if param.dtype.kind != "f":
            raise TypeError(f"{optimizer}: parameter {i} has dtype {param.dtype}; "
                            f"only floating-point tensors can be optimized")
        if not param.is_leaf:
            raise ValueError(f"{optimizer}: parameter {i} is the result of an operation "
                             f"({param._op!r}), not a leaf tensor; "
                             "optimize the tensors you created")
        if id(param) in seen:
            raise ValueError(f"{optimizer}: parameter {i} appears more than once")
        seen.add(id(param))
    return params


def _number(optimizer, name, value, low=0.0, high=math.inf, high_inclusive=False):
    """`value` as a float, checked to be a finite number in [low, high) (or [low, high])."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{optimizer}: {name} must be a number, got {value!r}")
    value = float(value)
    in_range = low <= value <= high if high_inclusive else low <= value < high
    if not (math.isfinite(value) and in_range):
        bound = "]" if high_inclusive else ")"
        raise ValueError(f"{optimizer}: {name} must be a finite number in [{low}, {high}{bound}, "
                         f"got {value!r}")
    return value

# %% [markdown]
# ## The base class
#
# What every optimizer shares:
#
# - `params`: the list of tensors to update; `state`: a dictionary from each
#   parameter to its own memory (a momentum buffer, Adam's moments). Tensors hash by
#   identity, so `optimizer.state[model.weight]` finds that weight's memory.
# - `zero_grad()` sets every `.grad` to `None`. Gradients *accumulate* across
#   `backward()` calls, so each training step starts by clearing them.
# - `step()` hands each parameter that has a gradient to `update(param, grad)`,
#   the one method a new optimizer writes.
# - `state_dict()` / `load_state_dict()` for checkpoints: the hyper-parameters and
#   a copy of the state, with parameters named by their position in `params`
#   (tensors themselves cannot be saved to a file). Loading checks everything
#   before changing anything, so a bad checkpoint leaves the optimizer as it was.
#
# Each optimizer declares its `hyperparameter_names` (saved in checkpoints, and
# changed by learning-rate schedules through attributes like `optimizer.lr`) and
# its `state_kinds`: for each state entry, `"array"` (shaped like the parameter)
# or `"count"` (a non-negative integer).

# %%
#| export
class Optimizer:
    """Base class: holds the parameters and their state; subclasses define update()."""

    hyperparameter_names = ()
    state_kinds = {}

    def __init__(self, params):
        self.params = _parameter_list(params, type(self).__name__)
        self.state = {}

    def set_hyperparameters(self, **values):
        """Check and set this optimizer's hyper-parameters (subclasses define them)."""
        raise NotImplementedError(f"{type(self).__name__} must define set_hyperparameters()")

    def update(self, param, grad):
        """Change `param` in place (`param -= ...`), given its gradient as a numpy array."""
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    def hyperparameters(self):
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def zero_grad(self):
        """Forget every parameter's gradient (set it to None)."""
        for param in self.params:
            param.grad = None

    def step(self):
        """Update every parameter that has a gradient."""
        with no_grad():
            for param in self.params:
                if param.grad is not None:
                    self.update(param, param.grad.data)

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"

    # ---- checkpoints ----------------------------------------------------------------

    def state_dict(self):
        """{"hyperparameters": {...}, "state": {parameter index: {name: value}}}, copied."""
        state = {i: {name: np.copy(value) if isinstance(value, np.ndarray) else value
                     for name, value in self.state[param].items()}
                 for i, param in enumerate(self.params) if param in self.state}
        return {"hyperparameters": self.hyperparameters(), "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state saved by state_dict(); ValueError if they do
        not fit this optimizer and its parameters (nothing is changed then)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"hyperparameters", "state"}:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys "
                             f"'hyperparameters' and 'state'")
        saved = dict(state_dict["hyperparameters"])
        missing = set(self.hyperparameter_names) - set(saved)
        unknown = set(saved) - set(self.hyperparameter_names)
        if missing or unknown:
            raise ValueError(f"{name}.load_state_dict: hyper-parameters do not match: "
                             f"missing {sorted(missing)}, unknown {sorted(unknown)}")
        state = {}
        for index, entry in state_dict["state"].items():
            param = self._saved_parameter(index)
            if set(entry) != set(self.state_kinds):
                raise ValueError(f"{name}.load_state_dict: the state of parameter {index} has "
                                 f"entries {sorted(entry)}, expected {sorted(self.state_kinds)}")
            state[param] = {key: self._checked_state(index, key, value, param)
                            for key, value in entry.items()}
        self.set_hyperparameters(**saved)   # checks every value before setting any
        self.state = state

    def _saved_parameter(self, index):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < len(self.params):
            raise ValueError(f"{type(self).__name__}.load_state_dict: state for parameter "
                             f"{index!r}, but this optimizer has {len(self.params)} parameters")
        return self.params[index]

    def _checked_state(self, index, key, value, param):
        where = f"{type(self).__name__}.load_state_dict: state {key!r} of parameter {index}"
        if self.state_kinds[key] == "count":
            if np.ndim(value) != 0 or int(value) != value or value < 0:
                raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
            return int(value)
        value = np.asarray(value)
        if value.shape != param.shape:
            raise ValueError(f"{where} has shape {value.shape}, "
                             f"the parameter has shape {param.shape}")
        return value.astype(param.dtype)   # a copy: the optimizer owns its state

# %% [markdown]
# ## SGD, with momentum
#
# For a gradient `g` of parameter `p` (PyTorch's `torch.optim.SGD`, step by step):
#
# 1. weight decay (an L2 penalty `wd/2 * p^2` in the loss): `g = g + wd * p`
# 2. momentum: a velocity `b` that remembers past gradients,
#    `b = g` on the first step, then `b = momentum * b + (1 - dampening) * g`
# 3. the direction `d`: `d = b`, or with Nesterov momentum `d = g + momentum * b`
#    (look ahead along the velocity before stepping)
# 4. `p = p - lr * d`
#
# With `momentum = 0` this is plain gradient descent and keeps no state.
# On a long valley, momentum accumulates the consistent downhill component while
# the zig-zag across the valley cancels out. Nesterov momentum needs `momentum > 0`
# and no dampening (as in PyTorch).

# %%
#| export
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay."""

    hyperparameter_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    state_kinds = {"momentum_buffer": "array"}

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
        super().__init__(params)
        self.set_hyperparameters(lr=lr, momentum=momentum, nesterov=nesterov,
                                 weight_decay=weight_decay, dampening=dampening)

    def set_hyperparameters(self, lr, momentum, nesterov, weight_decay, dampening):
        values = dict(lr=_number("SGD", "lr", lr),
                      momentum=_number("SGD", "momentum", momentum),
                      dampening=_number("SGD", "dampening", dampening, high=1, high_inclusive=True),
                      weight_decay=_number("SGD", "weight_decay", weight_decay))
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and (values["momentum"] == 0 or values["dampening"] != 0):
            raise ValueError("SGD: nesterov=True requires momentum > 0 and dampening = 0")
        vars(self).update(values, nesterov=bool(nesterov))

    def update(self, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        if self.momentum:
            state = self.state.get(param)
            if state is None:
                buffer = grad.copy()
                self.state[param] = {"momentum_buffer": buffer}
            else:
                buffer = state["momentum_buffer"]
                buffer *= self.momentum
                buffer += (1 - self.dampening) * grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param -= self.lr * grad

# %% [markdown]
# ## Adam
#
# Adam keeps two running averages per parameter: the mean of the gradient `m`
# (momentum) and the mean of its square `v` (how large it usually is):
#
# ```
# t = t + 1
# g = g + wd * p                               (L2 weight decay, as torch.optim.Adam)
# m = beta1 * m + (1 - beta1) * g
# v = beta2 * v + (1 - beta2) * g^2
# m_hat = m / (1 - beta1^t)                    (bias correction: m and v start at 0)
# v_hat = v / (1 - beta2^t)
# p = p - lr * m_hat / (sqrt(v_hat) + eps)
# ```
#
# Dividing by `sqrt(v_hat)` makes the step about `lr` in every coordinate, whether
# its gradients are 1e-6 or 1e3: one learning rate works for layers of very
# different scales. Without the bias correction the first steps would be far too
# small (`m` after one step is only `(1 - beta1) g = 0.1 g`). `eps` keeps the
# division finite when a gradient is exactly zero. We compute the denominator as
# `sqrt(v) / sqrt(1 - beta2^t) + eps`, PyTorch's order of operations.

# %%
#| export
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015); weight_decay adds an L2 term to the gradient."""

    hyperparameter_names = ("lr", "betas", "eps", "weight_decay")
    state_kinds = {"step": "count", "exp_avg": "array", "exp_avg_sq": "array"}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.set_hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def set_hyperparameters(self, lr, betas, eps, weight_decay):
        name = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        values = dict(lr=_number(name, "lr", lr),
                      betas=(_number(name, "beta1", betas[0], high=1),
                             _number(name, "beta2", betas[1], high=1)),
                      eps=_number(name, "eps", eps),
                      weight_decay=_number(name, "weight_decay", weight_decay))
        vars(self).update(values)

    def _moments(self, param, grad):
        """Advance this parameter's step count and running moments; return them."""
        state = self.state.get(param)
        if state is None:
            state = self.state[param] = {"step": 0, "exp_avg": np.zeros_like(param.data),
                                         "exp_avg_sq": np.zeros_like(param.data)}
        beta1, beta2 = self.betas
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        return state["step"], m, v

    def _adam_step(self, param, grad):
        t, m, v = self._moments(param, grad)
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** t)
        denominator = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        param -= step_size * (m / denominator)

    def update(self, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        self._adam_step(param, grad)

# %% [markdown]
# ## AdamW: decoupled weight decay
#
# In Adam, an L2 term added to the gradient gets divided by `sqrt(v_hat)` like the
# rest of it, so weights with large gradients are barely decayed. AdamW
# (Loshchilov & Hutter, 2019) shrinks the weights directly instead, before the
# Adam step, by the same fraction for every weight:
#
# `p = p * (1 - lr * weight_decay)`, then the Adam step with the raw gradient.
#
# Its default `weight_decay` is `1e-2`, as in PyTorch.

# %%
#| export
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, param, grad):
        if self.weight_decay:
            param *= 1 - self.lr * self.weight_decay
        self._adam_step(param, grad)

# %% [markdown]
# ## Trying it out
#
# Minimise `f(p) = sum((p - target)^2)`; its gradient is `2 (p - target)`.

# %%
target = np.array([3.0, -1.0], dtype=np.float32)
for optimizer_class, settings in ((SGD, dict(lr=0.1)), (SGD, dict(lr=0.05, momentum=0.9)),
                                  (Adam, dict(lr=0.1)), (AdamW, dict(lr=0.1))):
    p = Tensor([0.0, 0.0], requires_grad=True)
    optimizer = optimizer_class([p], **settings)
    for _ in range(200):
        optimizer.zero_grad()
        ((p - Tensor(target)) ** 2).sum().backward()
        optimizer.step()
    print(f"{optimizer!r:70} -> {p.data}")
    assert np.allclose(p.data, target, atol=0.05) and p.dtype == np.float32
