# %% [markdown]
# # Module 01: Tensor
#
# Every number a neural network touches (inputs, weights, activations, losses,
# gradients) lives in a tensor: an n-dimensional array plus a little bookkeeping.
# Our `Tensor` wraps a numpy array (`.data`) and adds three things numpy lacks:
#
# 1. **A deep-learning default dtype.** Floating data becomes float32 unless you ask
#    for another dtype: half the memory of float64 and what GPUs use. Integer data
#    stays integer (class labels and indices are integers). When integers meet
#    floats, the result takes the float's dtype, and integer math that cannot stay
#    integer (`/`, `exp`, a float number) gives float32 too: the rule is written out
#    below, next to `result_dtype`.
# 2. **Clear errors.** A shape mismatch names both shapes; a string or `None` where
#    a number belongs is a `TypeError` that says what was expected.
# 3. **A record of how each result was made.** When an input has
#    `requires_grad=True`, every operation remembers its name and its inputs. This
#    module never computes a gradient: module 05 (autograd) reads that record and
#    walks it backwards. Keeping the two apart means you can learn (and test) the
#    forward computations first, then add differentiation without changing them.
# 4. **A version counter.** Every in-place change (`x -= 0.1 * g`, `x[0] = 5`) bumps
#    `x._version` (and that of every view of the same memory, like `x.T` or `x[0]`),
#    and every recorded operation notes the versions of its inputs,
#    so module 05 can refuse to compute a gradient from values that changed after
#    the forward pass, instead of silently returning a wrong one. Writing into
#    `x.data` directly bypasses the counter, as PyTorch's `.data` does: an escape
#    hatch for code that knows no graph is waiting (initialisation, pruning).

# %%
#| default_exp core.tensor

# %%
#| export
"""Tensor: a numpy array with a float32 default, clear errors, and a record of the
operations that made it. Gradients are computed by tinytorch.core.autograd (module 05)."""
import numpy as np

# %% [markdown]
# ## The autograd hook
#
# Module 05 must plug gradients into `Tensor` without patching its methods. This
# small object is the socket. It answers two questions:
#
# - `is_grad_enabled()`: should operations record a graph right now? Until module 05
#   is installed there is no `no_grad()` to switch recording off, so the answer is
#   always yes. Recording only stores references, so it is cheap, and it means a
#   graph built before `import tinytorch.core.autograd` can still be differentiated.
# - `backward(tensor, grad)`: the engine that walks the graph. Until module 05 is
#   installed, `Tensor.backward()` says so instead of failing obscurely.

# %%
#| export
class AutogradHook:
    """Where module 05 installs its engine; module 01 itself never differentiates."""

    def __init__(self):
        self.backward = None                  # backward(tensor, grad), set by module 05
        self.is_grad_enabled = lambda: True   # nothing can turn recording off before 05

    def install(self, backward, is_grad_enabled):
        """Plug in an engine. Installing the same engine again changes nothing."""
        self.backward = backward
        self.is_grad_enabled = is_grad_enabled

    @property
    def installed(self):
        return self.backward is not None


autograd_hook = AutogradHook()

# %% [markdown]
# ## Turning user data into an array
#
# `Tensor([1, 2])`, `Tensor(3.5)`, `Tensor(np.ones((2, 2)))` and
# `Tensor(other_tensor)` must all work; `Tensor("abc")` or `Tensor(None)` must
# not. numpy accepts almost anything (a string becomes an array of strings, `None`
# an array of objects), so we check the resulting dtype *kind*: only
# bool (`b`), signed/unsigned integers (`i`, `u`) and floats (`f`) are numbers we
# can compute with.
#
# The tensor gets its own copy of the data, so changing the array you passed in
# later does not silently change the tensor.

# %%
#| export
NUMERIC_KINDS = "biuf"   # numpy dtype kinds: bool, int, unsigned int, float


def _to_array(data, dtype=None):
    """A fresh numpy array for `data`, float32 by default for floating data."""
    keep_dtype = isinstance(data, Tensor)   # Tensor(t) copies t, dtype and all
    if keep_dtype:
        data = data.data
    try:
        array = np.array(data)
    except ValueError as error:              # e.g. a ragged list like [[1, 2], [3]]
        raise ValueError(f"cannot make a Tensor from this {type(data).__name__}: {error}") from None
    if array.dtype.kind not in NUMERIC_KINDS:   # checked before any cast: "1.5" is not a number
        raise TypeError(f"Tensor data must be numbers (bool, int or float), got "
                        f"{type(data).__name__} with numpy dtype {array.dtype}")
    if dtype is not None:
        return _cast(array, dtype)
    if array.dtype.kind == "f" and not keep_dtype:
        return array.astype(np.float32, copy=False)   # np.array above already copied
    return array


def _cast(array, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind not in NUMERIC_KINDS:
        raise TypeError(f"Tensor dtype must be bool, int or float, got {dtype}")
    return array.astype(dtype, copy=False)

# %% [markdown]
# ## Which dtype a result gets
#
# numpy promotes `int64 + float32` to float64 and `int / int` to float64; PyTorch,
# whose behaviour students compare against, keeps float32 as its one default. We
# follow PyTorch:
#
# | operands | result |
# |---|---|
# | two tensors of one kind (bool, int or float) | the wider one (`float32 + float64` is float64) |
# | an integer or bool tensor and a float tensor | the float tensor's dtype |
# | a tensor and a 0-d tensor (a loss) | as a number: its dtype counts only if its kind is higher |
# | a float tensor and a number, list or array | the tensor's dtype (`t * 0.5` stays float32) |
# | an integer tensor and a Python float | float32 |
# | `/`, `exp`, `log`, `sqrt` (and activations like `sigmoid`) of integers | float32 |
# | `mean` of integers | an error, as in PyTorch (say which float you want) |
# | matmul of an integer and a float tensor | an error, as in PyTorch |
#
# Two deliberate differences: `Tensor(array)` turns a float64 numpy array into
# float32 (PyTorch keeps float64), so data loaded with numpy lands in the default
# dtype; pass `dtype=np.float64` to keep it. And matmul of float32 with float64
# gives float64 (PyTorch refuses), and so do the layers built on it (`Linear`,
# `Conv2d`, `LayerNorm` with float32 parameters and a float64 input): module 05's
# `gradcheck` runs parameters in float64 next to float32 inputs. The learned layers
# (module 03 on) and the losses (module 04) refuse integer inputs, as PyTorch's do.

# %%
#| export
DEFAULT_FLOAT = np.dtype(np.float32)


def as_float(array):
    """`array` as floating point: bool and integers become DEFAULT_FLOAT, floats stay."""
    return array if array.dtype.kind == "f" else array.astype(DEFAULT_FLOAT)


KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}    # bool < integers < floats


def result_dtype(a, b):
    """The dtype of a binary operation between tensors a and b (PyTorch's rule)."""
    if (a.ndim == 0) != (b.ndim == 0):          # a 0-d tensor counts like a number: only
        full, scalar = (a, b) if b.ndim == 0 else (b, a)     # if its kind ranks higher
        if KIND_RANK[scalar.dtype.kind] <= KIND_RANK[full.dtype.kind]:
            return full.dtype
        return scalar.dtype
    a_float, b_float = a.dtype.kind == "f", b.dtype.kind == "f"
    if a_float != b_float:                      # int with float: the float wins as it is
        return (a if a_float else b).dtype
    return np.result_type(a.dtype, b.dtype)

# %% [markdown]
# ## One check for sizes and counts
#
# Every later module takes sizes from its user: features, channels, heads, batch
# sizes, steps. They are all checked the same way, by this one helper: a real
# integer (numpy integers too, but not `True`, which Python counts as 1) no smaller
# than `minimum`, or a `ValueError` that names who asked and for what.

# %%
#| export
def check_int(owner, name, value, minimum=1):
    """int(value) if it is an integer >= minimum, else a ValueError naming owner and name."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise ValueError(f"{owner}: {name} must be {wanted}, got {value!r}")
    return int(value)

# %% [markdown]
# ## Checking shapes before numpy does
#
# numpy's own messages are correct but not always helpful ("mismatch in its core
# dimension 0, with gufunc signature (n?,k),(k,m?)->(n?,m?)"). These two checks
# raise a `ValueError` that names the operation and both shapes.
#
# Broadcasting compares shapes from the right: two sizes are compatible when they
# are equal or one of them is 1, and missing leading dimensions count as 1. So
# `(32, 10) + (10,)` works (the bias is added to each of the 32 rows) while
# `(32, 10) + (32,)` does not.

# %%
#| export
def _check_broadcast(op, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                         f"(sizes must match or be 1, compared from the right)") from None


def _check_matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, "
                         f"got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]                                # (..., n, k) or (k,)
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]  # (..., k, m) or (k,)
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: "
                         f"the first has {inner_a} columns, the second {inner_b} rows")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dimensions of shapes {a.shape} and {b.shape} "
                         f"cannot be broadcast together") from None


def _normalize_axis(axis):
    """numpy wants an int, a tuple or None; accept a list too."""
    return tuple(axis) if isinstance(axis, list) else axis


# Non-Tensor values an operation accepts next to a Tensor: numbers and arrays of numbers.
DATA_TYPES = (bool, int, float, list, tuple, np.ndarray, np.generic)


def _index_array(index):
    """Tensors used as indices become their arrays, also inside a tuple index."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_index_array(i) for i in index)
    return index

# %% [markdown]
# ## The Tensor class
#
# Read it in this order:
#
# - **`__init__`** stores the array and the gradient fields. `grad` stays `None`
#   until a backward pass (module 05) fills it with a Tensor of the same shape.
# - **`_make`** is the one door every operation's result goes through. If some
#   input requires a gradient and recording is enabled, it remembers the
#   operation's name (`_op`), its inputs (`_parents`) and anything else a backward
#   rule will need (`_saved`, e.g. the axis of a sum), and the version of each
#   input at that moment (`_versions`). That is the whole graph.
# - **`_operand`** turns the other side of `t + 2`, `t * array` or `2 - t` into a
#   Tensor. Next to a float tensor, numbers, lists and arrays take its dtype, so
#   float32 stays float32 (`t * 0.5`, `t + np.ones(3)`); next to an integer tensor,
#   a Python float gives float32 and an integer keeps the tensor's dtype. Two
#   Tensors follow `result_dtype`. Anything that is not numeric data is a `TypeError`.
# - Then the operations, each one line on top of numpy: arithmetic, matrix
#   multiplication, reductions, shape changes, indexing, comparisons and
#   elementwise math.
#
# `__array_ufunc__ = None` tells numpy to step aside: `np_array + tensor` then calls
# our `__radd__` and returns a Tensor, instead of numpy looping over a Tensor as
# if it were an opaque object.

# %%
#| export
class Tensor:
    """An n-dimensional array of numbers that can record how it was computed."""

    __array_ufunc__ = None   # ndarray (op) Tensor -> our reflected method, not numpy's

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None      # a Tensor like this one after backward(), else None
        self._counter = [0]   # its version: bumped by every in-place change (shared by views)
        self._op = None       # how this tensor was made: an op name, like "mul"
        self._parents = ()    # the tensors it was made from
        self._versions = ()   # their _version when it was made
        self._saved = {}      # what that op's backward rule needs besides its parents

    @staticmethod
    def _make(data, op, parents, **saved):
        """Wrap an op's result; record the op if a gradient may flow through it."""
        out = Tensor.__new__(Tensor)   # skip __init__: `data` is already a fresh array
        out.data, out.grad, out._counter = np.asarray(data), None, [0]
        out.requires_grad = (any(p.requires_grad for p in parents)
                             and autograd_hook.is_grad_enabled())
        if out.requires_grad:
            out._op, out._parents, out._saved = op, tuple(parents), saved
            out._versions = tuple(p._version for p in parents)
        else:
            out._op, out._parents, out._versions, out._saved = None, (), (), {}
        return out

    def _operand(self, other, op):
        """The other side of a binary operation, as a Tensor."""
        if isinstance(other, Tensor):
            return other
        if not isinstance(other, DATA_TYPES):
            raise TypeError(f"unsupported operand for {op}: Tensor and {type(other).__name__} "
                            f"(expected a Tensor, a number, or an array of numbers)")
        if self.dtype.kind == "f":                   # float32 * 2 or * an array stays float32
            return Tensor(other, dtype=self.dtype)
        if isinstance(other, float):                 # int tensor + 0.5: the default float
            return Tensor(other, dtype=DEFAULT_FLOAT)
        if isinstance(other, (bool, int)):           # int tensor + 2 keeps the tensor's dtype
            return Tensor(other, dtype=np.result_type(self.data, other))
        return Tensor(other)

    # ---- what it is -------------------------------------------------------------

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def _version(self):
        """How many in-place changes this tensor's memory has seen (PyTorch's `_version`)."""
        return self._counter[0]

    def _view_of(self, base):
        """A reshape, transpose or slice shares its base's memory, so it shares its version
        counter too: changing either in place changes both."""
        if np.may_share_memory(self.data, base.data):
            self._counter = base._counter
        return self

    @property
    def is_leaf(self):
        """True unless this tensor was computed by a recorded operation."""
        return not self._parents

    def numpy(self):
        return self.data

    def item(self):
        if self.size != 1:
            raise ValueError("item() needs a tensor with exactly one element, "
                             f"got shape {self.shape}")
        return self.data.item()

    def __array__(self, dtype=None, copy=None):
        # numpy asks for copy=True in np.array(t): honour it, or the caller's array
        # would alias the tensor's data
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy else array

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self):
        return bool(self.data)   # numpy refuses for more than one element, and so do we

    __hash__ = object.__hash__   # == is elementwise, so hash by identity (tensors as dict keys)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extras = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        if self.requires_grad:
            extras += ", requires_grad=True" if self.is_leaf else f", op={self._op!r}"
        return f"Tensor({body}{extras})"

    # ---- gradients (the engine lives in module 05) ----------------------------------

    def backward(self, grad=None):
        """Fill `.grad` of every leaf this tensor was computed from (module 05)."""
        if not autograd_hook.installed:
            raise RuntimeError("Tensor.backward() needs the autograd engine: "
                               "`import tinytorch.core.autograd` (module 05) first")
        autograd_hook.backward(self, grad)

    def detach(self):
        """The same data, cut off from the graph: no gradient flows through it."""
        return Tensor._make(self.data, "detach", ())._view_of(self)

    # ---- arithmetic (numpy broadcasting) --------------------------------------------

    def _binary(self, other, op, compute, floating=False):
        """compute(a, b) on both arrays, cast first to the result's dtype (`result_dtype`;
        `floating` ops like division turn integers into the default float)."""
        other = self._operand(other, op)
        _check_broadcast(op, self, other)
        dtype = result_dtype(self, other)
        if floating and dtype.kind != "f":
            dtype = DEFAULT_FLOAT
        a, b = self.data.astype(dtype, copy=False), other.data.astype(dtype, copy=False)
        return Tensor._make(compute(a, b), op, (self, other))

    def __add__(self, other):
        return self._binary(other, "add", np.add)

    def __sub__(self, other):
        return self._binary(other, "sub", np.subtract)

    def __mul__(self, other):
        return self._binary(other, "mul", np.multiply)

    def __truediv__(self, other):
        return self._binary(other, "div", np.true_divide, floating=True)

    def __pow__(self, exponent):
        return self._binary(exponent, "pow", np.power)

    def maximum(self, other):
        """Elementwise larger of the two (numpy's `maximum`)."""
        return self._binary(other, "maximum", np.maximum)

    # `2 - t` arrives here as t.__rsub__(2): make 2 a Tensor and do it the right way round.
    def __radd__(self, other):
        return self._operand(other, "add") + self

    def __rsub__(self, other):
        return self._operand(other, "sub") - self

    def __rmul__(self, other):
        return self._operand(other, "mul") * self

    def __rtruediv__(self, other):
        return self._operand(other, "div") / self

    def __rpow__(self, base):
        return self._operand(base, "pow") ** self

    def __neg__(self):
        return Tensor._make(-self.data, "neg", (self,))

    # ---- matrix multiplication ------------------------------------------------------

    def matmul(self, other):
        """Matrix product with numpy's rules: batched over leading dims, 1-D as vectors."""
        other = self._operand(other, "matmul")
        _check_matmul(self, other)
        if (self.dtype.kind == "f") != (other.dtype.kind == "f"):   # as PyTorch: say which
            raise TypeError(f"matmul: both operands must be floating point or both integer, "
                            f"got {self.dtype} and {other.dtype}")
        dtype = result_dtype(self, other)
        a, b = self.data.astype(dtype, copy=False), other.data.astype(dtype, copy=False)
        return Tensor._make(np.matmul(a, b), "matmul", (self, other))

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return self._operand(other, "matmul").matmul(self)

    # ---- reductions -------------------------------------------------------------------

    def _reduce(self, op, reduce, axis, keepdims):
        axis = _normalize_axis(axis)
        data = reduce(self.data, axis=axis, keepdims=keepdims)
        return Tensor._make(data, op, (self,), axis=axis, keepdims=keepdims)

    def sum(self, axis=None, keepdims=False):
        return self._reduce("sum", np.sum, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        if self.dtype.kind != "f":   # as PyTorch: the mean of integers has no obvious dtype
            raise TypeError(f"mean needs a floating-point tensor, got {self.dtype}; "
                            f"convert first, e.g. Tensor(t, dtype=np.float32)")
        return self._reduce("mean", np.mean, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return self._reduce("max", np.max, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return self._reduce("min", np.min, axis, keepdims)

    # ---- shape ------------------------------------------------------------------------

    def reshape(self, *shape):
        """`t.reshape(2, 3)` or `t.reshape((2, 3))`; one size may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Tensor._make(self.data.reshape(shape), "reshape", (self,))._view_of(self)

    def transpose(self, *axes):
        """Permute axes.

        - `t.transpose()` reverses all axes (for a matrix: rows <-> columns);
        - `t.transpose(dim0, dim1)`: two integers swap two axes, as in PyTorch
          (`k.transpose(-2, -1)` transposes the last two dims of a batch);
        - `t.transpose((2, 0, 1))` or `t.transpose(2, 0, 1)`: a full permutation, as in numpy.
        """
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            order = tuple(axes[0])
        elif len(axes) == 2:
            order = self._swapped(*axes)
        else:
            order = axes or tuple(reversed(range(self.ndim)))
        data = self.data.transpose(order)            # numpy checks the permutation
        order = tuple(axis % self.ndim for axis in order)
        return Tensor._make(data, "transpose", (self,), axes=order)._view_of(self)

    def _swapped(self, dim0, dim1):
        if not (-self.ndim <= dim0 < self.ndim and -self.ndim <= dim1 < self.ndim):
            raise ValueError(f"transpose: dims ({dim0}, {dim1}) are out of range "
                             f"for a tensor of shape {self.shape}")
        order = list(range(self.ndim))
        order[dim0], order[dim1] = order[dim1], order[dim0]
        return tuple(order)

    @property
    def T(self):
        return self.transpose()

    def __getitem__(self, index):
        """numpy indexing: ints, slices, None, Ellipsis, integer arrays, boolean masks."""
        index = _index_array(index)
        return Tensor._make(self.data[index], "getitem", (self,), index=index)._view_of(self)

    # ---- comparisons: boolean tensors, never part of a graph -------------------------

    def _compare(self, other, op, compare):
        other = self._operand(other, op)
        _check_broadcast(op, self, other)
        return Tensor._make(compare(self.data, other.data), op, ())

    def __eq__(self, other):
        if not isinstance(other, (Tensor, *DATA_TYPES)):
            return NotImplemented   # `t == None` is False, as for any unrelated object
        return self._compare(other, "eq", np.equal)

    def __ne__(self, other):
        if not isinstance(other, (Tensor, *DATA_TYPES)):
            return NotImplemented
        return self._compare(other, "ne", np.not_equal)

    def __lt__(self, other):
        return self._compare(other, "lt", np.less)

    def __le__(self, other):
        return self._compare(other, "le", np.less_equal)

    def __gt__(self, other):
        return self._compare(other, "gt", np.greater)

    def __ge__(self, other):
        return self._compare(other, "ge", np.greater_equal)

    # ---- elementwise math ---------------------------------------------------------------

    def exp(self):
        return Tensor._make(np.exp(as_float(self.data)), "exp", (self,))

    def log(self):
        return Tensor._make(np.log(as_float(self.data)), "log", (self,))

    def sqrt(self):
        return Tensor._make(np.sqrt(as_float(self.data)), "sqrt", (self,))

    def abs(self):
        return Tensor._make(np.abs(self.data), "abs", (self,))

    def clip(self, min=None, max=None):
        """Limit values to [min, max]; either bound may be None (no limit)."""
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        float_bound = any(isinstance(b, float) for b in (min, max))
        data = as_float(self.data) if float_bound else self.data     # int.clip(0.5): float32
        return Tensor._make(np.clip(data, min, max), "clip", (self,), min=min, max=max)

    # ---- in-place changes: each one bumps _version ---------------------------------------

    def _check_inplace(self, op, other):
        """Refuse an in-place change a recorded graph would not see (PyTorch refuses too)."""
        if not autograd_hook.is_grad_enabled() or not (self.requires_grad or other.requires_grad):
            return
        if self.requires_grad and self.is_leaf:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad cannot be changed in "
                               f"place while a graph is recorded; do it under `with no_grad():` "
                               f"(as optimizers do)")
        raise RuntimeError(f"{op}: in-place changes are not recorded in the graph; write "
                           f"`t = t + other` (or `t += other`), or use `with no_grad():`")

    def _inplace(self, op, compute, other, rebind=False):
        """self = compute(self, other), writing into self.data; returns self.

        Under a recorded graph the operator forms (`y += x`, `rebind=True`) compute a new
        tensor instead, and Python rebinds `y` to it; the old `y` counts as overwritten
        (its version is bumped), so a backward rule that saved it refuses, as in PyTorch.
        (Another name for the old `y` still shows the old values; in PyTorch it would not.)
        """
        other = self._operand(other, op)
        recorded = autograd_hook.is_grad_enabled() and (self.requires_grad or other.requires_grad)
        if rebind and recorded and not (self.requires_grad and self.is_leaf):
            self._counter[0] += 1
            return self._binary(other, op, compute, floating=op == "div")
        self._check_inplace(op + "_", other)
        _check_broadcast(op, self, other)
        if np.broadcast_shapes(self.shape, other.shape) != self.shape:
            raise ValueError(f"{op}_: the result would have shape "
                             f"{np.broadcast_shapes(self.shape, other.shape)}, but an in-place "
                             f"result must keep this tensor's shape {self.shape}")
        dtype = result_dtype(self, other)
        if op == "div" and dtype.kind != "f":
            dtype = DEFAULT_FLOAT
        if not np.can_cast(dtype, self.dtype, "same_kind"):
            raise TypeError(f"{op}_: the result would be {dtype}, which cannot be stored in "
                            f"this {self.dtype} tensor in place")
        compute(self.data, other.data, out=self.data, casting="same_kind")
        self._counter[0] += 1
        return self

    def add_(self, other):
        return self._inplace("add", np.add, other)

    def sub_(self, other):
        return self._inplace("sub", np.subtract, other)

    def mul_(self, other):
        return self._inplace("mul", np.multiply, other)

    def div_(self, other):
        return self._inplace("div", np.true_divide, other)

    def __iadd__(self, other):
        return self._inplace("add", np.add, other, rebind=True)

    def __isub__(self, other):
        return self._inplace("sub", np.subtract, other, rebind=True)

    def __imul__(self, other):
        return self._inplace("mul", np.multiply, other, rebind=True)

    def __itruediv__(self, other):
        return self._inplace("div", np.true_divide, other, rebind=True)

    def __setitem__(self, index, value):
        """t[index] = value, in place, with numpy's indexing and casting."""
        value = self._operand(value, "setitem")
        self._check_inplace("setitem", value)
        self.data[_index_array(index)] = value.data
        self._counter[0] += 1

    def zero_(self):
        self[...] = 0
        return self

    def copy_(self, source):
        """Overwrite every entry with `source` (broadcast to this shape), in place."""
        self[...] = source
        return self

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert x.shape == (2, 3) and x.dtype == np.float32 and x.ndim == 2 and x.size == 6
assert Tensor([1, 2]).dtype.kind == "i"                      # indices stay integers
assert Tensor([1.0], dtype=np.float64).dtype == np.float64

# Broadcasting: a (3,) row is added to each of the 2 rows.
bias = Tensor([10.0, 20.0, 30.0])
assert np.array_equal((x + bias).data, [[11, 22, 33], [14, 25, 36]])
assert (x * 2).dtype == np.float32                           # Python numbers keep float32
assert np.array_equal((1 - x).data, 1 - x.data)              # reflected operations

# Matrix multiplication and reductions.
w = Tensor(np.ones((3, 4)))
assert (x @ w).shape == (2, 4)
assert x.sum().item() == 21.0
assert np.array_equal(x.max(axis=1).data, [3.0, 6.0])
assert x.mean(axis=(0, 1), keepdims=True).shape == (1, 1)

# Shapes and indexing.
assert x.T.shape == (3, 2) and x.reshape(3, 2).shape == (3, 2)
assert np.array_equal(x[x > 3].data, [4.0, 5.0, 6.0])        # boolean mask
assert np.array_equal(x[[0, 1], [2, 0]].data, [3.0, 4.0])    # fancy indexing
print(x)

# %% [markdown]
# Mistakes say what went wrong:

# %%
for bad in (lambda: x + Tensor([1.0, 2.0]), lambda: x @ x):
    try:
        bad()
    except ValueError as error:
        print("ValueError:", error)
try:
    x + "1"
except TypeError as error:
    print("TypeError:", error)

# %% [markdown]
# ## The recorded graph
#
# With `requires_grad=True`, each result remembers how it was made. That record is
# all module 05 needs; nothing here computes a derivative.

# %%
a = Tensor([2.0, 3.0], requires_grad=True)
b = Tensor([4.0, 5.0])
c = (a * b).sum()
assert c.requires_grad and c._op == "sum" and c._parents[0]._op == "mul"
assert not (b * 2).requires_grad          # no input needs a gradient: nothing recorded
assert a.grad is None                      # filled only by a backward pass (module 05)
print(c)

# %% [markdown]
# In-place changes keep the tensor and bump its version; `c` noted `a`'s version 0.

# %%
b += 1                                     # b needs no gradient: changed in place
assert b._version == 1 and np.array_equal(b.data, [5.0, 6.0])
assert c._parents[0]._versions == (0, 0)   # the mul saw a and b at version 0
assert (Tensor([1, 2]) / 2).dtype == np.float32 and (Tensor([1, 2]) + 0.5).dtype == np.float32
