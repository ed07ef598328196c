"""Module 01's promotion rule, op by op, with PyTorch as the oracle: the result dtype of
every operation on integer, bool, float32 and float64 tensors (and Python numbers) is
PyTorch's, and an operation PyTorch refuses (the mean of integers) is refused here too.
The one documented difference, `Tensor(float64 array)` -> float32, is tested last."""
import numpy as np
import pytest

from tinytorch.core.tensor import DEFAULT_FLOAT, Tensor, as_float, result_dtype

DTYPES = ["bool", "int32", "int64", "float32", "float64"]
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "maximum": lambda a, b: a.maximum(b)}
UNARY = {"exp": lambda t: t.exp(), "log": lambda t: t.log(), "sqrt": lambda t: t.sqrt(),
         "abs": lambda t: t.abs(), "neg": lambda t: -t, "sum": lambda t: t.sum(),
         "max": lambda t: t.max()}
NUMBERS = [2, 0.5, True]


def torch_dtype_name(torch_tensor):
    return str(torch_tensor.dtype).removeprefix("torch.")


def values(dtype):
    return np.array([1, 2, 3]).astype(dtype)


def torch_op(torch, name):
    """The PyTorch function for one of BINARY's or UNARY's names."""
    return {"maximum": torch.maximum, "neg": torch.neg}.get(name) or \
        (lambda *args: getattr(args[0], name)(*args[1:]))


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype_a", DTYPES)
@pytest.mark.parametrize("dtype_b", DTYPES)
def test_binary_ops_between_tensors_give_pytorchs_dtype(torch, name, dtype_a, dtype_b):
    a, b = values(dtype_a), values(dtype_b)
    if name == "sub" and "bool" in (dtype_a, dtype_b):
        pytest.skip("PyTorch refuses `-` with any bool tensor; numpy only bool - bool")
    expected = torch_op(torch, name)(torch.tensor(a), torch.tensor(b))
    got = BINARY[name](Tensor(a, dtype=dtype_a), Tensor(b, dtype=dtype_b))
    assert str(got.dtype) == torch_dtype_name(expected)
    np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("number", NUMBERS, ids=repr)
@pytest.mark.parametrize("name", ["add", "mul", "div"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_and_python_number_give_pytorchs_dtype(torch, name, number, dtype):
    expected = BINARY[name](torch.tensor(values(dtype)), number)
    got = BINARY[name](Tensor(values(dtype), dtype=dtype), number)
    assert str(got.dtype) == torch_dtype_name(expected)
    np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_unary_ops_give_pytorchs_dtype(torch, name, dtype):
    expected = torch_op(torch, name)(torch.tensor(values(dtype)))
    got = UNARY[name](Tensor(values(dtype), dtype=dtype))
    assert str(got.dtype) == torch_dtype_name(expected)
    np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_mean_of_integers_is_refused_as_in_pytorch(torch, dtype):
    with pytest.raises(RuntimeError):
        torch.tensor(values(dtype)).mean()
    with pytest.raises(TypeError, match=f"mean needs a floating-point tensor, got {dtype}"):
        Tensor(values(dtype), dtype=dtype).mean()


def test_integer_matmul_stays_integer_as_in_pytorch(torch):
    a = np.arange(6).reshape(2, 3)
    expected = torch.tensor(a) @ torch.tensor(a.T.copy())
    got = Tensor(a) @ Tensor(a.T)
    assert str(got.dtype) == torch_dtype_name(expected) == "int64"
    np.testing.assert_array_equal(got.data, expected.numpy())


@pytest.mark.parametrize("dtype_full", DTYPES)
@pytest.mark.parametrize("dtype_scalar", DTYPES)
def test_a_zero_dim_tensor_counts_like_a_number_as_in_pytorch(torch, dtype_full, dtype_scalar):
    full, scalar = values(dtype_full), np.array(2).astype(dtype_scalar)
    expected = torch.tensor(full) * torch.tensor(scalar)
    got = Tensor(full, dtype=dtype_full) * Tensor(scalar, dtype=dtype_scalar)
    assert str(got.dtype) == torch_dtype_name(expected)


@pytest.mark.parametrize("dtype_a, dtype_b", [("int64", "float32"), ("float32", "int64")])
def test_matmul_of_integers_with_floats_is_refused_as_in_pytorch(torch, dtype_a, dtype_b):
    a = np.arange(4).reshape(2, 2)
    with pytest.raises(RuntimeError):
        torch.tensor(a.astype(dtype_a)) @ torch.tensor(a.astype(dtype_b))
    with pytest.raises(TypeError, match="matmul: both operands must be floating point or both"):
        Tensor(a, dtype=dtype_a) @ Tensor(a, dtype=dtype_b)


def test_documented_difference_matmul_promotes_mixed_floats():
    # PyTorch refuses float32 @ float64; module 01 documents that we promote (gradcheck).
    a = np.eye(2)
    assert (Tensor(a) @ Tensor(a, dtype=np.float64)).dtype == np.float64


@pytest.mark.parametrize("bounds", [(0, 2), (0.5, 2.5), (None, 1.5)])
def test_clip_of_integers_matches_pytorch(torch, bounds):
    expected = torch.tensor(values("int64")).clamp(*bounds)
    got = Tensor(values("int64")).clip(*bounds)
    assert str(got.dtype) == torch_dtype_name(expected)
    np.testing.assert_array_equal(got.data, expected.numpy())


def test_the_rule_written_as_functions():
    i, f32, f64 = Tensor([1]), Tensor([1.0]), Tensor([1.0], dtype=np.float64)
    assert result_dtype(i, f32) == np.float32 and result_dtype(f64, i) == np.float64
    assert result_dtype(f32, f64) == np.float64 and result_dtype(i, Tensor([True])) == np.int64
    assert as_float(np.array([1, 2])).dtype == DEFAULT_FLOAT == np.float32
    kept = np.array([1.0], dtype=np.float64)
    assert as_float(kept) is kept                       # floats are returned as they are


def test_documented_difference_float64_arrays_become_float32():
    # PyTorch's torch.tensor keeps float64; module 01 documents that Tensor() does not,
    # and that dtype= keeps it.
    assert Tensor(np.ones(2)).dtype == np.float32
    assert Tensor(np.ones(2), dtype=np.float64).dtype == np.float64
