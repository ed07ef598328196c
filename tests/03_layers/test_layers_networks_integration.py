"""Whole networks built from layers: custom Modules holding layers in lists, nested
Sequentials, residual connections and weight tying, checked against numpy."""
import numpy as np

from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


class MLP(Module):
    """Hidden layers kept in a plain list, like nanoGPT's blocks."""

    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [Linear(a, b, init="kaiming", seed=rng) for a, b in zip(sizes, sizes[1:])]
        self.activation = ReLU()

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class Residual(Module):
    """x + f(x): the skip connection of residual networks."""

    def __init__(self, width, seed):
        self.inner = Sequential(Linear(width, width, seed=seed), Tanh())

    def forward(self, x):
        return x + self.inner(x)


def numpy_mlp(x, layers):
    for layer in layers[:-1]:
        x = np.maximum(x @ layer.weight.data + layer.bias.data, 0)
    return x @ layers[-1].weight.data + layers[-1].bias.data


def test_mlp_in_a_list_matches_numpy(rng):
    model = MLP([3, 16, 16, 2])
    for layer in model.layers:
        layer.bias.data[...] = rng.normal(size=layer.out_features)
    x = rng.normal(size=(10, 3)).astype(np.float32)
    np.testing.assert_allclose(model(Tensor(x)).data, numpy_mlp(x, model.layers),
                               rtol=1e-5, atol=1e-6)
    assert len(model.parameters()) == 6


def test_residual_stack_matches_numpy(rng):
    model = Sequential(Residual(4, seed=0), Residual(4, seed=1), Linear(4, 1, seed=2))
    x = rng.normal(size=(5, 4)).astype(np.float32)
    expected = x
    for block in (model[0], model[1]):
        layer = block.inner[0]
        expected = expected + np.tanh(expected @ layer.weight.data + layer.bias.data)
    expected = expected @ model[2].weight.data + model[2].bias.data
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert len(model.parameters()) == 6


def test_nested_sequential_flattens_to_the_same_function(rng):
    a, b, c = Linear(3, 4, seed=0), Linear(4, 4, seed=1), Linear(4, 2, seed=2)
    nested = Sequential(a, Sequential(ReLU(), b, Sequential(Tanh())), c)
    flat = Sequential(a, ReLU(), b, Tanh(), c)
    x = Tensor(rng.normal(size=(6, 3)))
    np.testing.assert_array_equal(nested(x).data, flat(x).data)
    assert [id(p) for p in nested.parameters()] == [id(p) for p in flat.parameters()]


def test_tied_weights_are_one_parameter(rng):
    """An autoencoder whose decoder reuses the encoder's weight, transposed."""
    class TiedAutoencoder(Module):
        def __init__(self):
            self.encoder = Linear(6, 2, bias=False, seed=0)

        def forward(self, x):
            return (self.encoder(x)) @ self.encoder.weight.T

    model = TiedAutoencoder()
    x = rng.normal(size=(4, 6)).astype(np.float32)
    w = model.encoder.weight.data
    np.testing.assert_allclose(model(Tensor(x)).data, x @ w @ w.T, rtol=1e-5, atol=1e-6)
    assert len(model.parameters()) == 1


def test_dropout_inside_a_custom_model_follows_eval(rng):
    class Net(Module):
        def __init__(self):
            self.body = Sequential(Linear(4, 32, seed=0), ReLU(), Dropout(0.5, seed=0))
            self.head = Linear(32, 1, seed=1)

        def forward(self, x):
            return self.head(self.body(x))

    model = Net()
    x = Tensor(rng.normal(size=(8, 4)))
    train_a, train_b = model(x).data, model(x).data
    assert not np.array_equal(train_a, train_b)       # a new mask each pass
    model.eval()
    hidden = np.maximum(x.data @ model.body[0].weight.data + model.body[0].bias.data, 0)
    expected = hidden @ model.head.weight.data + model.head.bias.data
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-5, atol=1e-6)
