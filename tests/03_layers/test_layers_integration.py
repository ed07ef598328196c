"""Layers together with the Tensor (01) and the activations (02) they are built on,
checked against PyTorch's own layers carrying the same weights."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.tensor import Tensor


def torch_linear(torch, layer):
    """A torch.nn.Linear holding the same weight (transposed: torch stores (out, in))."""
    copy = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        copy.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))
        if layer.bias is not None:
            copy.bias.copy_(torch.from_numpy(layer.bias.data))
    return copy


@pytest.mark.parametrize("ours, theirs", [
    (ReLU, lambda nn: nn.ReLU()),
    (Sigmoid, lambda nn: nn.Sigmoid()),
    (Tanh, lambda nn: nn.Tanh()),
    (GELU, lambda nn: nn.GELU(approximate="tanh")),
    (Softmax, lambda nn: nn.Softmax(dim=-1)),
])
def test_linear_activation_linear_matches_torch(torch, rng, ours, theirs):
    first, second = Linear(5, 8, seed=0), Linear(8, 3, seed=1)
    first.bias.data[...] = rng.normal(size=8)
    model = Sequential(first, ours(), second)
    reference = torch.nn.Sequential(torch_linear(torch, first), theirs(torch.nn),
                                    torch_linear(torch, second))
    x = rng.normal(size=(6, 5)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_eval_mode_network_with_dropout_matches_torch(torch, rng):
    first, second = Linear(4, 6, seed=0), Linear(6, 2, seed=1)
    model = Sequential(first, ReLU(), Dropout(0.5, seed=0), second).eval()
    reference = torch.nn.Sequential(torch_linear(torch, first), torch.nn.ReLU(),
                                    torch.nn.Dropout(0.5), torch_linear(torch, second)).eval()
    x = rng.normal(size=(10, 4)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_parameter_count_matches_torch(torch):
    model = Sequential(Linear(784, 128, seed=0), ReLU(), Linear(128, 10, bias=False, seed=1))
    reference = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10, bias=False))
    ours = sum(p.size for p in model.parameters())
    assert ours == sum(p.numel() for p in reference.parameters()) == 784 * 128 + 128 + 128 * 10


def test_linear_output_is_an_ordinary_tensor(rng):
    layer = Linear(3, 4, seed=0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    y = layer(Tensor(x))
    expected = x @ layer.weight.data
    assert isinstance(y, Tensor) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=0).data, expected.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y[1:3].data, expected[1:3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y.T.data, expected.T, rtol=1e-6, atol=1e-6)


def test_linear_accepts_float64_tensors_and_keeps_their_precision(rng):
    layer = Linear(4, 2, seed=0)
    x = rng.normal(size=(3, 4))
    y = layer(Tensor(x, dtype=np.float64))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, x @ layer.weight.data.astype(np.float64), rtol=1e-12)


def test_softmax_after_linear_gives_distributions(rng):
    model = Sequential(Linear(4, 5, seed=0), Softmax())
    probs = model(Tensor(rng.normal(size=(8, 4)))).data
    assert probs.shape == (8, 5)
    assert (probs > 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_activations_in_sequential_are_skipped_by_train_and_eval():
    relu = ReLU()
    model = Sequential(Linear(2, 2, seed=0), relu).eval()
    assert not model[0].training
    assert not hasattr(relu, "training")              # activations are not Modules
    assert model.parameters() == model[0].parameters()
