# %% [markdown]
# # Module 03: Layers
#
# A layer is a function with parameters: `Linear` computes `x @ W + b` and owns
# `W` and `b`. Networks are layers inside layers, so we need one base class that
# answers, for any network, three questions:
#
# - **What are its parameters?** An optimizer must update every weight, however
#   deeply nested. `parameters()` finds them by walking the attributes.
# - **Is it training or evaluating?** Some layers (`Dropout`) behave differently.
#   `train()` and `eval()` set a `training` flag on the module and every module
#   inside it.
# - **How do I clear old gradients?** Gradients accumulate, so each training step
#   starts with `zero_grad()`.
#
# That is PyTorch's `nn.Module` in miniature.

# %%
#| default_exp core.layers

# %%
#| export
"""Layers: the Module base class (parameters, train/eval, zero_grad), Linear, Dropout
and Sequential."""
import numbers

import numpy as np

from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Module
#
# A parameter is any Tensor with `requires_grad=True` stored on a module: as an
# attribute (`self.weight`), inside a list, tuple or dict (`self.blocks = [...]`),
# or inside a child module. `parameters()` walks those in attribute order and
# returns each tensor once, even if it is shared by two layers.
#
# `training` is a class attribute, so a subclass that forgets to call
# `super().__init__()` still starts in training mode.

# %%
#| export
def _contents(value):
    """The tensors and modules directly inside an attribute value."""
    if isinstance(value, (Tensor, Module)):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _contents(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _contents(item)


class Module:
    """Base class for layers and models: `module(x)` calls `module.forward(x)`."""

    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def children(self):
        """The modules directly inside this one."""
        return [v for value in vars(self).values() for v in _contents(value)
                if isinstance(v, Module)]

    def parameters(self):
        """Every tensor with requires_grad=True in this module and its children, once each."""
        found, seen = [], set()
        for value in vars(self).values():
            for item in _contents(value):
                tensors = item.parameters() if isinstance(item, Module) else [item]
                for tensor in tensors:
                    if tensor.requires_grad and id(tensor) not in seen:
                        seen.add(id(tensor))
                        found.append(tensor)
        return found

    def train(self, mode=True):
        """Set training mode here and in every child module; returns self."""
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode (e.g. Dropout does nothing); returns self."""
        return self.train(False)

    def zero_grad(self):
        """Forget the gradients of the last backward pass."""
        for parameter in self.parameters():
            parameter.grad = None

# %% [markdown]
# ## Initialising weights
#
# If the weights are too large, activations grow layer after layer until they
# explode; too small, and they fade to nothing. The two classic rules choose the
# spread from the layer's fan-in (`in_features`) and fan-out (`out_features`) so
# that the variance of the signal stays roughly constant from layer to layer:
#
# - **Xavier (Glorot) uniform**, for tanh/sigmoid networks:
#   `W ~ U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`, so `Var(W) = 2 / (fan_in + fan_out)`.
# - **Kaiming (He) normal**, for ReLU networks (ReLU zeroes half the signal, so
#   the variance is doubled): `W ~ N(0, std^2)` with `std = sqrt(2 / fan_in)`.
# - **Kaiming uniform**, the same variance from a uniform distribution:
#   `W ~ U(-b, b)` with `b = sqrt(6 / fan_in)`.
#
# Biases start at zero. All randomness comes from a numpy `Generator`: pass
# `seed=0` (or your own `np.random.default_rng(...)`) for the same weights on every run.

# %%
#| export
INITS = ("xavier", "kaiming", "kaiming_uniform")


def make_rng(seed=None):
    """A numpy Generator from a seed (int or None), or the Generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def init_weight(fan_in, fan_out, init, rng):
    """A (fan_in, fan_out) float32 weight matrix drawn by one of INITS."""
    shape = (fan_in, fan_out)
    if init == "xavier":
        bound = np.sqrt(6 / (fan_in + fan_out))
        weight = rng.uniform(-bound, bound, size=shape)
    elif init == "kaiming":
        weight = rng.normal(0.0, np.sqrt(2 / fan_in), size=shape)
    elif init == "kaiming_uniform":
        bound = np.sqrt(6 / fan_in)
        weight = rng.uniform(-bound, bound, size=shape)
    else:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    return weight.astype(np.float32)

# %% [markdown]
# ## Linear
#
# `y = x @ W + b`. The weight is stored as `(in_features, out_features)` so the
# forward pass reads left to right: a batch `x` of shape `(N, in_features)` times
# `W` gives `(N, out_features)`, and the bias `(out_features,)` broadcasts over the
# `N` rows. (PyTorch stores the transpose and computes `x @ W.T`; same maths.)
# Extra leading dimensions, like `(B, T, in_features)`, work the same way.
#
# The input must be floating point: an integer input is a `TypeError`, as in
# PyTorch (pixels or counts need an explicit conversion). A float input of another
# width follows module 01's rule, so a float64 input gives a float64 output; PyTorch
# raises there instead, but `gradcheck` (module 05) relies on mixing float64
# parameters with float32 inputs.

# %%
#| export
class Linear(Module):
    """y = x @ weight + bias, with weight (in_features, out_features)."""

    def __init__(self, in_features, out_features, bias=True, init="xavier", seed=None):
        self.in_features = check_int("Linear", "in_features", in_features)
        self.out_features = check_int("Linear", "out_features", out_features)
        weight = init_weight(self.in_features, self.out_features, init, make_rng(seed))
        self.weight = Tensor(weight, requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_features, np.float32), requires_grad=True) \
            if bias else None

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"Linear expects a Tensor, got {type(x).__name__}")
        if x.dtype.kind != "f":      # as PyTorch: no silent int -> float guess inside a layer
            raise TypeError(f"Linear expects a floating-point input, got {x.dtype}; convert "
                            f"it first, e.g. Tensor(x, dtype=np.float32)")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects inputs "
                             f"whose last dimension is {self.in_features}, got shape {x.shape}")
        y = x @ self.weight
        return y if self.bias is None else y + self.bias

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None})")

# %% [markdown]
# ## Dropout
#
# During training, zero each value with probability `p`, so the network cannot
# rely on any single unit. **Inverted** dropout scales the survivors by
# `1 / (1 - p)` during training, so the expected value of each output equals its
# input, and at evaluation time dropout is simply the identity (no rescaling to
# remember).
#
# The mask is a constant: multiplying by it is an ordinary `mul`, so the gradient
# is zero exactly where values were dropped, with no rule of its own.

# %%
#| export
class Dropout(Module):
    """Zero each value with probability p while training, scaling the rest by 1/(1-p)."""

    def __init__(self, p=0.5, seed=None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = make_rng(seed)

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if x.dtype.kind != "f":
            # 1/(1-p) cannot be represented in an integer tensor: refuse, don't truncate
            raise TypeError(f"Dropout needs a floating-point input, got {x.dtype}")
        keep = self.rng.random(x.shape) >= self.p
        return x * Tensor(keep / (1 - self.p), dtype=x.dtype)

    def __repr__(self):
        return f"Dropout(p={self.p})"

# %% [markdown]
# ## Sequential
#
# Layers applied one after another: `Sequential(Linear(2, 8), ReLU(), Linear(8, 1))`.
# The layers are kept in a list, so `parameters()` and `train()`/`eval()` reach
# them without any extra code. Any callable works as a layer, which is how the
# activations of module 02 (not `Module`s) fit in.

# %%
#| export
class Sequential(Module):
    """Apply each layer to the output of the previous one."""

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for layer in layers:
            if not callable(layer):
                raise TypeError("Sequential: every layer must be callable, "
                                f"got {type(layer).__name__}")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

# %% [markdown]
# ## Trying it out

# %%
from tinytorch.core.activations import ReLU

model = Sequential(Linear(2, 8, seed=0), ReLU(), Dropout(0.5, seed=0), Linear(8, 1, seed=1))
assert len(model.parameters()) == 4                            # two weights, two biases
assert model(Tensor(np.ones((5, 2)))).shape == (5, 1)
assert Linear(2, 3, seed=7).weight.data.tolist() == Linear(2, 3, seed=7).weight.data.tolist()

model.eval()
assert not model[2].training                                   # eval() reached the Dropout
x = Tensor(np.ones((4, 8)))
assert model[2](x) is x                                        # identity when evaluating
print(model)
