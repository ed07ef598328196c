"""Edge cases and errors of module 03: zero and empty inputs, bad sizes, bad
probabilities, bad init names, wrong input shapes."""
import numpy as np
import pytest

from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


def test_zero_input_gives_the_bias():
    layer = Linear(4, 3, seed=0)
    layer.bias.data[...] = [1.0, -2.0, 0.5]
    np.testing.assert_array_equal(layer(Tensor(np.zeros((2, 4)))).data, [[1.0, -2.0, 0.5]] * 2)


def test_zero_input_without_bias_gives_zeros():
    np.testing.assert_array_equal(Linear(4, 3, bias=False, seed=0)(Tensor(np.zeros((2, 4)))).data,
                                  np.zeros((2, 3)))


@pytest.mark.shape
def test_empty_batch_gives_an_empty_output():
    y = Linear(4, 3, seed=0)(Tensor(np.zeros((0, 4))))
    assert y.shape == (0, 3)


def test_one_by_one_layer_is_scalar_affine():
    layer = Linear(1, 1, seed=0)
    layer.weight.data[...] = 3.0
    layer.bias.data[...] = -1.0
    np.testing.assert_array_equal(layer(Tensor([[0.0], [2.0]])).data, [[-1.0], [5.0]])


def test_wrong_in_features_names_the_layer_and_the_shape():
    with pytest.raises(ValueError, match=r"Linear\(3, 2\).*last dimension is 3.*\(4, 5\)"):
        Linear(3, 2, seed=0)(Tensor(np.ones((4, 5))))


def test_scalar_input_is_rejected():
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        Linear(3, 2, seed=0)(Tensor(1.0))


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="Linear expects a Tensor, got ndarray"):
        Linear(3, 2, seed=0)(np.ones((1, 3)))


def test_unknown_init_lists_the_choices():
    with pytest.raises(ValueError, match="unknown init 'he'.*xavier, kaiming, kaiming_uniform"):
        Linear(3, 2, init="he")


@pytest.mark.parametrize("in_features, out_features",
                         [(0, 2), (3, -1), (2.5, 2), ("3", 2), (3, None)])
def test_invalid_sizes_are_rejected(in_features, out_features):
    with pytest.raises(ValueError, match="must be a positive integer"):
        Linear(in_features, out_features)


def test_numpy_integer_sizes_are_accepted():
    layer = Linear(np.int64(3), np.int32(2), seed=0)
    assert layer.weight.shape == (3, 2) and isinstance(layer.in_features, int)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_invalid_dropout_probabilities_are_rejected(p):
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\)"):
        Dropout(p)


def test_dropout_accepts_numpy_float32_probability():
    assert Dropout(np.float32(0.5)).p == 0.5


def test_dropout_refuses_integer_tensors_instead_of_truncating_the_scale():
    with pytest.raises(TypeError, match="Dropout needs a floating-point input, got int64"):
        Dropout(0.3, seed=0)(Tensor(np.full(1000, 10)))
    assert Dropout(0.3, seed=0).eval()(Tensor(np.full(3, 10))).data.tolist() == [10, 10, 10]


def test_dropout_of_an_empty_tensor_is_empty():
    assert Dropout(0.5, seed=0)(Tensor(np.zeros((0, 4)))).shape == (0, 4)


def test_sequential_rejects_non_callables():
    with pytest.raises(TypeError, match="every layer must be callable, got int"):
        Sequential(Linear(2, 2, seed=0), 3)


def test_base_module_forward_names_the_subclass():
    class Unfinished(Module):
        pass

    with pytest.raises(NotImplementedError, match="Unfinished must define forward"):
        Unfinished()(Tensor([1.0]))


def test_subclass_without_super_init_still_trains_and_lists_parameters():
    class Bare(Module):
        def __init__(self):                            # no super().__init__()
            self.w = Tensor([1.0], requires_grad=True)

    bare = Bare()
    assert bare.training and bare.parameters() == [bare.w]


def test_module_without_parameters_has_an_empty_list():
    assert Dropout(0.5).parameters() == [] and Sequential().parameters() == []


def test_linear_input_dtypes_against_pytorch(torch):
    layer = Linear(2, 3, seed=0)
    t_layer = torch.nn.Linear(2, 3)
    with pytest.raises(RuntimeError):                       # PyTorch: integers are refused
        t_layer(torch.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="Linear expects a floating-point input, got int64"):
        layer(Tensor([[1, 2]]))
    with pytest.raises(RuntimeError):                       # PyTorch: float64 is refused too
        t_layer(torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    # The documented difference (module 03's Linear section): mixed floats promote.
    assert layer(Tensor([[1.0, 2.0]], dtype=np.float64)).dtype == np.float64
    assert layer(Tensor([[1.0, 2.0]])).dtype == np.float32
