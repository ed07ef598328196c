# %% [markdown]
# # Module 05: Autograd
#
# Training needs the gradient of the loss with respect to every parameter. Since
# module 01, every operation on a tensor that requires a gradient has recorded
# its name (`_op`), its inputs (`_parents`) and anything else needed
# (`_saved`). Those records form a graph from the parameters to the loss. This
# module walks it backwards, applying the chain rule one operation at a time:
# **reverse-mode automatic differentiation**, the algorithm behind every deep
# learning framework. It is micrograd's engine, for tensors.
#
# Three pieces:
#
# 1. **Backward rules.** For each operation, a small function: given the output
#    `out` (with its parents) and the gradient of the loss with respect to `out`,
#    return the gradient with respect to each parent.
# 2. **The engine.** `backward(tensor)`: order the graph so that every tensor comes
#    after everything it was computed from, then walk that order in reverse,
#    handing each tensor's gradient to its parents.
# 3. **Grad mode.** `no_grad()` switches recording off (for evaluation, or for the
#    optimizer's own updates).
#
# Importing this module installs the engine into the hook module 01 exposes
# (`autograd_hook`); nothing in the forward computations changes.

# %%
#| default_exp core.autograd

# %%
#| export
"""Autograd: reverse-mode differentiation of the graphs Tensor records.

One backward rule per operation (BACKWARD_RULES), an engine (`backward`: topological
order, then one reverse pass), grad mode (`no_grad`, `enable_grad`) and `gradcheck`.
Importing this module installs the engine into Tensor's `autograd_hook`."""
from contextlib import contextmanager

import numpy as np

from tinytorch.core.activations import stable_sigmoid
from tinytorch.core.tensor import Tensor, autograd_hook

# %% [markdown]
# ## Grad mode: the one switch for recording
#
# `Tensor._make` (module 01) records an operation when some input requires a
# gradient **and** `is_grad_enabled()` says yes. This flag is the only state that
# decides it. `no_grad()` and `enable_grad()` set it for the length of a `with`
# block and put the old value back afterwards, even if the block raises, so they
# nest. (They also work as decorators: `@no_grad()`.)

# %%
#| export
_grad_enabled = True


def is_grad_enabled():
    """Whether operations currently record a graph for backward()."""
    return _grad_enabled


@contextmanager
def _grad_mode(enabled):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, enabled
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """`with no_grad():` computes without recording a graph."""
    return _grad_mode(False)


def enable_grad():
    """`with enable_grad():` records again, e.g. inside a no_grad() block."""
    return _grad_mode(True)

# %% [markdown]
# ## Undoing broadcasting
#
# In `y = x + b` with `x` of shape `(32, 10)` and `b` of shape `(10,)`, numpy
# broadcasts `b` to `(32, 10)`: each bias value is used 32 times. A value used
# several times receives the sum of the gradients of its uses, so the gradient for
# `b` is the `(32, 10)` gradient summed over the broadcast axis.
#
# In general, broadcasting (1) prepends axes and (2) stretches axes of size 1.
# `unbroadcast` undoes both by summing. The engine applies it to every gradient a
# rule returns, so the rules can be written as if no broadcasting had happened.

# %%
#| export
def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, the shape of an input numpy broadcast to grad's shape."""
    while grad.ndim > len(shape):                 # (1) axes broadcasting prepended
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):           # (2) axes stretched from size 1
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad

# %% [markdown]
# ## Backward rules
#
# `BACKWARD_RULES` maps an operation's name to its rule. `@rule("mul")` registers
# the function below it. A rule receives the output tensor `out` (its `_parents`
# are the inputs, `_saved` what the forward pass kept) and `grad`, the gradient of
# the loss with respect to `out`, as a numpy array shaped like `out`. It returns
# one gradient per parent, or `None` for a parent that needs none.
#
# Each rule is the derivative of its forward computation times `grad` (the chain
# rule). Read them next to module 01: `out = a * b` gives `da = grad * b`,
# `db = grad * a`.
#
# **What a rule reads.** The rule for `a * b` reads `b` (for `da`) and `a` (for
# `db`) at backward time. If one of them was changed in place after the forward
# pass (an optimizer step, `x[0] = 5` under `no_grad()`), the gradient would be
# silently wrong. So each rule also says which tensors it reads, `saves=`: a
# function of `out` giving the parents it reads (by position) and `OUT` if it reads
# the output. The engine compares their versions (module 01 bumps `_version` on
# every in-place change) with the ones `out` noted when it was made, and raises
# naming the op if they differ. Like PyTorch, a rule reads only what it needs:
# `a + b` reads nothing, so changing `a` afterwards is harmless, and `a * b` reads
# `a` only if `b` needs a gradient.

# %%
#| export
BACKWARD_RULES = {}
SAVES = {}        # op -> saves(out): the parent positions (and OUT) its rule reads
OUT = "out"


def nothing(out):
    return ()


def inputs(out):
    return range(len(out._parents))


def output(out):
    return (OUT,)


def crossed(out):
    """a * b or a @ b: da reads b, db reads a."""
    a, b = out._parents
    return [i for i, other in ((0, b), (1, a)) if other.requires_grad]


def rule(*ops, saves=inputs):
    """Register the decorated function as the backward rule of the named ops, reading
    the tensors `saves(out)` names."""
    def register(backward_rule):
        for op in ops:
            BACKWARD_RULES[op] = backward_rule
            SAVES[op] = saves
        return backward_rule
    return register

# %% [markdown]
# ### Arithmetic
#
# `pow` covers `x ** 2`, `2 ** x` and `x ** y`. The exponent's gradient,
# `out * log(base)`, is only computed when the exponent needs it, since the log of
# a negative base would be NaN (and `x ** 2` of a negative `x` is fine).
#
# `maximum` sends the gradient to whichever input was larger; where they tie,
# each gets half (as PyTorch does).

# %%
#| export
@rule("add", saves=nothing)
def _add(out, grad):
    return grad, grad


@rule("sub", saves=nothing)
def _sub(out, grad):
    return grad, -grad


@rule("mul", saves=crossed)
def _mul(out, grad):
    a, b = out._parents
    return grad * b.data, grad * a.data


def _div_saves(out):
    a, b = out._parents
    return (0, 1) if b.requires_grad else (1,)


@rule("div", saves=_div_saves)
def _div(out, grad):
    a, b = out._parents
    grad_a = grad / b.data
    grad_b = -grad_a * a.data / b.data if b.requires_grad else None   # d(a/b)/db = -a/b^2
    return grad_a, grad_b


def _pow_saves(out):
    # PyTorch also keeps the output of `x ** tensor` when the exponent needs no
    # gradient; this rule does not read it then, so changing it is harmless here.
    base, exponent = out._parents
    return (0, 1, OUT) if exponent.requires_grad else (0, 1)


@rule("pow", saves=_pow_saves)
def _pow(out, grad):
    base, exponent = out._parents
    a, n = base.data, exponent.data
    grad_base = grad_exponent = None
    # d/da a^n = n a^(n-1) and d/dn a^n = a^n log a. At a = 0 both meet 0 * inf;
    # their limits are 0 (x^0 is constant; 0^n log 0 -> 0), as PyTorch has them.
    with np.errstate(divide="ignore", invalid="ignore"):
        if base.requires_grad:
            grad_base = grad * np.where(n == 0, 0, n * a ** (n - 1))
        if exponent.requires_grad:
            grad_exponent = grad * out.data * np.where(a == 0, 0, np.log(a))
    return grad_base, grad_exponent


@rule("neg", saves=nothing)
def _neg(out, grad):
    return (-grad,)


@rule("maximum")
def _maximum(out, grad):
    a, b = out._parents
    share_a = (a.data > b.data) + 0.5 * (a.data == b.data)
    return grad * share_a, grad * (1 - share_a)

# %% [markdown]
# ### Matrix multiplication
#
# For matrices, `out = A @ B` gives `dA = grad @ B.T` and `dB = A.T @ grad` (check
# the shapes: `(n, m) @ (m, k) = (n, k)` like `A`). The rest is numpy's
# conventions: leading batch dimensions (`.T` becomes swapping the last two axes,
# and a broadcast batch is summed back) and 1-D operands, which matmul treats as a
# row vector on the left or a column vector on the right. We make those vectors
# explicit matrices, apply the matrix formula, and shape the results back.

# %%
#| export
@rule("matmul", saves=crossed)
def _matmul(out, grad):
    a, b = out._parents
    A = a.data[None, :] if a.ndim == 1 else a.data        # (..., n, k)
    B = b.data[:, None] if b.ndim == 1 else b.data        # (..., k, m)
    if b.ndim == 1:
        grad = np.expand_dims(grad, -1)                    # put back the m = 1 axis
    if a.ndim == 1:
        grad = np.expand_dims(grad, -2)                    # put back the n = 1 axis
    grad_A = grad @ np.swapaxes(B, -1, -2)
    grad_B = np.swapaxes(A, -1, -2) @ grad
    return (unbroadcast(grad_A, A.shape).reshape(a.shape),
            unbroadcast(grad_B, B.shape).reshape(b.shape))

# %% [markdown]
# ### Reductions
#
# A reduction removes axes (unless `keepdims`). Its gradient puts them back and
# spreads the output's gradient over the entries that were reduced:
#
# - `sum`: each entry contributed with weight 1, so each gets the gradient.
# - `mean`: each contributed `1 / count`.
# - `max`/`min`: only the entry that was chosen matters; if several tie, they
#   share the gradient equally.

# %%
#| export
def _expand_reduced(grad, x, axis, keepdims):
    """Give a reduction's output (or gradient) its reduced axes back, broadcast to x's shape."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    return np.broadcast_to(grad, x.shape)


@rule("sum", saves=nothing)
def _sum(out, grad):
    (x,) = out._parents
    return (_expand_reduced(grad, x, **out._saved),)


@rule("mean", saves=nothing)
def _mean(out, grad):
    (x,) = out._parents
    count = x.size / out.size                              # entries averaged into each output
    return (_expand_reduced(grad, x, **out._saved) / count,)


@rule("max", "min", saves=lambda out: (0, OUT))
def _max_min(out, grad):
    (x,) = out._parents
    axis, keepdims = out._saved["axis"], out._saved["keepdims"]
    chosen = x.data == _expand_reduced(out.data, x, axis, keepdims)
    share = chosen / chosen.sum(axis=axis, keepdims=True)  # ties split the gradient
    return (_expand_reduced(grad, x, axis, keepdims) * share,)

# %% [markdown]
# ### Shapes and indexing
#
# Reshape and transpose only move entries around, so their gradients move them
# back. Indexing copies some entries out; its gradient is zero everywhere except at
# those entries. `np.add.at` (rather than `full[index] += grad`) matters for
# integer-array indices that repeat an entry, like an embedding lookup of the same
# word twice: each use adds its gradient.

# %%
#| export
@rule("reshape", saves=nothing)
def _reshape(out, grad):
    (x,) = out._parents
    return (grad.reshape(x.shape),)


@rule("transpose", saves=nothing)
def _transpose(out, grad):
    return (grad.transpose(np.argsort(out._saved["axes"])),)   # the inverse permutation


@rule("getitem", saves=nothing)
def _getitem(out, grad):
    (x,) = out._parents
    full = np.zeros(x.shape, dtype=grad.dtype)
    np.add.at(full, out._saved["index"], grad)
    return (full,)

# %% [markdown]
# ### Elementwise functions
#
# Each is `grad` times the derivative, often best written with the output:
# `d exp(x) = exp(x)`, `d sqrt(x) = 1 / (2 sqrt(x))`. `clip` passes the gradient
# where the value was not changed by clipping (bounds included, as in PyTorch).
# `abs` uses `sign(x)`, which is 0 at 0.

# %%
#| export
@rule("exp", saves=output)
def _exp(out, grad):
    return (grad * out.data,)


@rule("log")
def _log(out, grad):
    (x,) = out._parents
    return (grad / x.data,)


@rule("sqrt", saves=output)
def _sqrt(out, grad):
    return (grad / (2 * out.data),)


@rule("abs")
def _abs(out, grad):
    (x,) = out._parents
    return (grad * np.sign(x.data),)


@rule("clip")
def _clip(out, grad):
    (x,) = out._parents
    low, high = out._saved["min"], out._saved["max"]
    inside = np.ones(x.shape, dtype=bool)
    if low is not None:
        inside &= x.data >= low
    if high is not None:
        inside &= x.data <= high
    return (grad * inside,)

# %% [markdown]
# ### Activations and losses with their own operation
#
# - `relu`: 1 where the input was positive, 0 elsewhere (0 at exactly 0, as in PyTorch).
# - `sigmoid`: `s (1 - s)` with `s` the output.
# - `tanh`: `1 - t^2` with `t` the output.
# - `bce_with_logits` (loss `max(x,0) - x y + log(1 + exp(-|x|))`): with respect to
#   the logit `x` it is `sigmoid(x) - y`, computed with the stable sigmoid so it is
#   exactly 0 or +-1 for huge logits; with respect to the target `y` it is `-x`.

# %%
#| export
@rule("relu", saves=output)
def _relu(out, grad):
    return (grad * (out.data > 0),)          # out > 0 exactly where the input was


@rule("sigmoid", saves=output)
def _sigmoid(out, grad):
    s = out.data
    return (grad * s * (1 - s),)


@rule("tanh", saves=output)
def _tanh(out, grad):
    return (grad * (1 - out.data ** 2),)


@rule("bce_with_logits")
def _bce_with_logits(out, grad):
    logits, target = out._parents
    return grad * (stable_sigmoid(logits.data) - target.data), grad * -logits.data

# %% [markdown]
# ## The engine
#
# `backward(root)` computes the gradient of `root` with respect to every tensor
# it depends on.
#
# **Order.** A tensor's gradient is complete only when every tensor computed from
# it has passed its share back. A depth-first search that appends a tensor after
# all of its parents yields a *topological order*: each tensor after its inputs.
# Walking it in reverse visits each tensor after everything that used it. (We
# search with an explicit stack rather than recursion, so a graph thousands of
# operations deep, such as a long training unroll, does not hit Python's recursion
# limit.)
#
# **Accumulation.** Gradients add up: a tensor used twice (`x * x`, or a weight
# shared by two layers) receives both contributions (`+=`). During the pass they
# are kept in a dictionary, not on the tensors; at the end, each **leaf** (a tensor
# you created, such as a parameter, rather than the result of an operation) adds
# its gradient to `.grad`. So repeated `backward()` calls accumulate into
# parameters, as in PyTorch, until `zero_grad()`; intermediate results keep
# `.grad = None`.
#
# `.grad` is a Tensor with the same shape and dtype as its tensor.
#
# **Versions.** Just before a rule runs, `_check_versions` compares the versions
# of the tensors that rule reads (its `saves`) with the ones noted in the forward
# pass, and raises, naming the op, if an in-place change came in between.

# %%
#| export
def topological_order(root):
    """Every tensor `root` depends on through recorded ops, each after its parents."""
    order, visited = [], {id(root)}
    stack = [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent.requires_grad and id(parent) not in visited:
                visited.add(id(parent))
                stack.append((parent, iter(parent._parents)))
                break                          # finish this parent before the next one
        else:                                  # all parents done: node goes after them
            stack.pop()
            order.append(node)
    return order


def backward(root, grad=None):
    """Add d(root)/d(leaf) to `.grad` of every leaf tensor that `root` depends on."""
    grads = {id(root): _initial_grad(root, grad)}
    for node in reversed(topological_order(root)):
        node_grad = grads.pop(id(node), None)
        if node_grad is None:                  # nothing flowed back to this tensor
            continue
        if node.is_leaf:                       # made by the user (a parameter): keep it
            _accumulate(node, node_grad)
            continue
        if node._op not in BACKWARD_RULES:
            raise RuntimeError(f"no backward rule for op {node._op!r}: register one with @rule")
        _check_versions(node)
        parent_grads = BACKWARD_RULES[node._op](node, node_grad)
        for parent, parent_grad in zip(node._parents, parent_grads):
            if parent_grad is None or not parent.requires_grad:
                continue
            parent_grad = unbroadcast(np.asarray(parent_grad, dtype=parent.dtype), parent.shape)
            if id(parent) in grads:            # used more than once: add up the uses
                grads[id(parent)] = grads[id(parent)] + parent_grad
            else:
                grads[id(parent)] = parent_grad


def _check_versions(node):
    """Raise if a tensor node's rule reads was changed in place after the forward pass."""
    for saved in SAVES.get(node._op, inputs)(node):   # a rule set by hand reads its inputs
        tensor, then = (node, 0) if saved == OUT else (node._parents[saved], node._versions[saved])
        if tensor._version != then:
            what = "its output" if saved == OUT else f"its input {saved}"
            raise RuntimeError(
                f"backward of {node._op!r}: one of the variables needed for gradient "
                f"computation has been modified by an inplace operation: {what}, of shape "
                f"{tensor.shape}, is at version {tensor._version}; expected version {then}. "
                f"Run the forward pass again after changing it")


def _initial_grad(root, grad):
    """d(root)/d(root): ones for a scalar, else the gradient the caller passes in."""
    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad (no input had "
                           "requires_grad=True, or it was computed under no_grad())")
    if grad is None:
        if root.size != 1:
            raise RuntimeError(f"backward() without a gradient needs a one-element tensor "
                               f"(like a loss), got shape {root.shape}; pass grad=")
        return np.ones(root.shape, dtype=root.dtype)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
    if grad.shape != root.shape:
        raise ValueError(f"backward(): grad shape {grad.shape} does not match "
                         f"the tensor's shape {root.shape}")
    return grad


def _accumulate(leaf, grad):
    """leaf.grad += grad, creating .grad (same shape and dtype as leaf) the first time."""
    if leaf.grad is None:
        leaf.grad = Tensor(grad, dtype=leaf.dtype)
    else:
        leaf.grad.data += grad

# %% [markdown]
# ## Installing the engine
#
# Importing this module runs `install()`, which hands `backward` and
# `is_grad_enabled` to module 01's hook. From then on `Tensor.backward()` works.
# Installing again just sets the same two functions.

# %%
#| export
def install():
    """Plug this module's engine into Tensor (idempotent)."""
    autograd_hook.install(backward=backward, is_grad_enabled=is_grad_enabled)


install()

# %% [markdown]
# ## Checking gradients numerically
#
# How do we know a rule is right? Compare it with the definition of a derivative.
# The **central difference** `(f(x + eps) - f(x - eps)) / (2 eps)` approximates
# `df/dx` with error proportional to `eps^2`. It needs two evaluations of `f` per
# input entry (far too slow for training, perfect for testing).
#
# `gradcheck(fn, inputs)` checks every entry of every input with
# `requires_grad=True`:
#
# - It works in **float64**: the inputs' data are temporarily replaced by float64
#   copies (and restored afterwards, along with their `.grad`), because float32's
#   7 digits cannot resolve a difference quotient with `eps = 1e-6`.
# - If `fn` returns a non-scalar, it checks the scalar `sum(fn(...) * w)` for fixed
#   random weights `w`: a wrong entry anywhere in the Jacobian changes it.
# - It raises `GradcheckError` (an `AssertionError`) naming the input and entry
#   where autograd and the finite difference disagree by more than
#   `atol + rtol * |numeric|`; otherwise it returns the largest absolute difference.
#
# `fn` is called as `fn(*inputs)`, so it may also ignore its arguments and close
# over tensors, such as a model's parameters:
# `gradcheck(lambda *ps: loss(model(x), y), model.parameters())`.
# Avoid points where the function has a kink (ReLU at exactly 0): there the two
# one-sided slopes differ and no single derivative exists to agree with.

# %%
#| export
class GradcheckError(AssertionError):
    """Autograd and finite differences disagree."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare autograd with central finite differences in float64; return the max error."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    originals = [(t.data, t.grad) for t in checked]
    try:
        for t in checked:
            t.data, t.grad = t.data.astype(np.float64), None
        weights = _output_weights(fn(*inputs), seed)
        analytic = _autograd_grads(fn, inputs, checked, weights)
        numeric = [_finite_difference(fn, inputs, t, weights, eps) for t in checked]
    finally:
        for t, (data, grad) in zip(checked, originals):
            t.data, t.grad = data, grad
    return _compare(analytic, numeric, atol, rtol)


def _output_weights(out, seed):
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return np.random.default_rng(seed).standard_normal(out.shape)


def _projected(fn, inputs, weights):
    """The scalar sum(fn(*inputs) * weights), without recording a graph."""
    with no_grad():
        return float(np.sum(fn(*inputs).data * weights))


def _autograd_grads(fn, inputs, checked, weights):
    out = fn(*inputs)
    if out.requires_grad:
        out.backward(weights)                  # = backward of sum(out * weights)
    return [np.zeros(t.shape) if t.grad is None else t.grad.data for t in checked]


def _finite_difference(fn, inputs, t, weights, eps):
    grad = np.zeros(t.shape)
    for index in np.ndindex(t.shape):
        original = t.data[index]
        t.data[index] = original + eps
        above = _projected(fn, inputs, weights)
        t.data[index] = original - eps
        below = _projected(fn, inputs, weights)
        t.data[index] = original
        grad[index] = (above - below) / (2 * eps)
    return grad


def _compare(analytic, numeric, atol, rtol):
    max_error = 0.0
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        if a.size == 0:
            continue
        error = np.abs(a - n)
        max_error = max(max_error, float(error.max()))
        bad = error > atol + rtol * np.abs(n)
        if bad.any():
            where = tuple(int(k) for k in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck: input {i} at index {where}: autograd {a[where]:.6g}, "
                f"finite difference {n[where]:.6g} (max abs difference for this input "
                f"{error.max():.3g}, tolerance atol={atol} + rtol={rtol} * |numeric|)")
    return max_error

# %% [markdown]
# ## Trying it out
#
# micrograd's first example, with tensors.

# %%
a = Tensor([2.0, -3.0], requires_grad=True)
b = Tensor([10.0, 1.0], requires_grad=True)
loss = (a * b + a).sum()
loss.backward()
assert np.array_equal(a.grad.data, [11.0, 2.0])         # d/da = b + 1 (a used twice)
assert np.array_equal(b.grad.data, [2.0, -3.0])         # d/db = a

with no_grad():
    assert not (a * b).requires_grad                     # nothing recorded

from tinytorch.core.activations import Softmax
from tinytorch.core.losses import CrossEntropyLoss

x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
print("softmax max error:", gradcheck(lambda t: Softmax()(t), [x]))
print("cross-entropy max error:", gradcheck(lambda t: CrossEntropyLoss()(t, [0, 3, 1]), [x]))
