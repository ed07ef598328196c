"""Core behaviour of module 03: Linear, its weight initialisation, Dropout, Sequential
and the Module base class (parameters, train/eval)."""
import numpy as np
import pytest

from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


def linear_with(weight, bias=None):
    """A Linear layer whose parameters are set to the given values."""
    weight = np.asarray(weight, dtype=np.float32)
    layer = Linear(*weight.shape, bias=bias is not None, seed=0)
    layer.weight.data[...] = weight
    if bias is not None:
        layer.bias.data[...] = bias
    return layer


# ---- Linear: the forward pass ---------------------------------------------------------

def test_linear_forward_hand_computed():
    layer = linear_with([[1, 0], [0, 1], [1, 1]], bias=[0.5, -1.0])
    y = layer(Tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]]))
    # row 0: [1 + 3 + 0.5, 2 + 3 - 1]; row 1: [0 + 2 + 0.5, -1 + 2 - 1]
    np.testing.assert_array_equal(y.data, [[4.5, 4.0], [2.5, 0.0]])


def test_linear_forward_matches_numpy(rng):
    layer = Linear(5, 3, seed=1)
    layer.bias.data[...] = rng.normal(size=3)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    expected = x @ layer.weight.data + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_matches_torch(torch, rng, bias):
    layer = Linear(6, 4, bias=bias, seed=2)
    if bias:
        layer.bias.data[...] = rng.normal(size=4)
    x = rng.normal(size=(9, 6)).astype(np.float32)
    b = torch.from_numpy(layer.bias.data) if bias else None
    # PyTorch stores the weight as (out, in): pass our (in, out) weight transposed.
    expected = torch.nn.functional.linear(torch.from_numpy(x),
                                          torch.from_numpy(layer.weight.data.T), b)
    y = layer(Tensor(x))
    assert y.shape == tuple(expected.shape) == (9, 4)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_linear_without_bias_is_a_plain_matmul(rng):
    layer = Linear(4, 2, bias=False, seed=3)
    assert layer.bias is None
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data, rtol=1e-6)


def test_linear_parameters_layout():
    layer = Linear(3, 5, seed=0)
    assert (layer.in_features, layer.out_features) == (3, 5)
    assert layer.weight.shape == (3, 5)          # (in, out): y = x @ W reads left to right
    assert layer.bias.shape == (5,)
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    np.testing.assert_array_equal(layer.bias.data, np.zeros(5))   # biases start at zero


# ---- Linear: weight initialisation ---------------------------------------------------------

@pytest.mark.parametrize("init", ["xavier", "kaiming", "kaiming_uniform"])
def test_seeded_init_is_reproducible(init):
    first = Linear(8, 4, init=init, seed=42).weight.data
    np.testing.assert_array_equal(first, Linear(8, 4, init=init, seed=42).weight.data)
    np.testing.assert_array_equal(first, Linear(8, 4, init=init,
                                                seed=np.random.default_rng(42)).weight.data)
    assert not np.array_equal(first, Linear(8, 4, init=init, seed=43).weight.data)


def test_unseeded_layers_and_layers_sharing_a_generator_differ():
    assert not np.array_equal(Linear(8, 4).weight.data, Linear(8, 4).weight.data)
    rng = np.random.default_rng(0)
    first, second = Linear(4, 4, seed=rng), Linear(4, 4, seed=rng)
    assert not np.array_equal(first.weight.data, second.weight.data)


def test_xavier_uniform_bound_and_spread():
    fan_in, fan_out = 600, 1400                  # 840,000 weights
    weight = Linear(fan_in, fan_out, init="xavier", seed=0).weight.data.astype(np.float64)
    bound = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(weight).max() <= bound
    assert np.abs(weight).max() > 0.999 * bound  # the whole interval is used
    # U(-a, a) has variance a^2 / 3 = 2 / (fan_in + fan_out); allow 1% on the std
    # (its sampling error here is about 0.05%).
    np.testing.assert_allclose(weight.std(), np.sqrt(2 / (fan_in + fan_out)), rtol=0.01)
    assert abs(weight.mean()) < 5 * weight.std() / np.sqrt(weight.size)
    # Uniform: each tenth of [-a, a] holds 10% of the weights (+-0.5%, ~15 sigma).
    counts, _ = np.histogram(weight, bins=10, range=(-bound, bound))
    np.testing.assert_allclose(counts / weight.size, 0.1, atol=0.005)


def test_kaiming_normal_std_and_normality():
    fan_in, fan_out = 500, 2000                  # 1,000,000 weights
    weight = Linear(fan_in, fan_out, init="kaiming", seed=0).weight.data.astype(np.float64)
    std = np.sqrt(2 / fan_in)
    np.testing.assert_allclose(weight.std(), std, rtol=0.01)     # sampling error ~0.07%
    assert abs(weight.mean()) < 5 * std / np.sqrt(weight.size)
    # Normal, not just the right variance: 68.27% within one std, 0.27% beyond three
    # (a uniform with this std would put 57.7% within one std and none beyond three).
    within_one = np.mean(np.abs(weight) < std)
    beyond_three = np.mean(np.abs(weight) > 3 * std)
    assert abs(within_one - 0.6827) < 0.003
    assert abs(beyond_three - 0.0027) < 0.0005


def test_kaiming_std_depends_on_fan_in_only():
    narrow = Linear(50, 400, init="kaiming", seed=0).weight.data.std()
    wide = Linear(800, 25, init="kaiming", seed=0).weight.data.std()
    np.testing.assert_allclose(narrow / wide, np.sqrt(800 / 50), rtol=0.03)


def test_kaiming_uniform_bound():
    fan_in = 300
    weight = Linear(fan_in, 2000, init="kaiming_uniform", seed=0).weight.data
    bound = np.sqrt(6 / fan_in)
    assert bound * 0.999 < np.abs(weight).max() <= bound
    np.testing.assert_allclose(weight.std(), np.sqrt(2 / fan_in), rtol=0.01)


def test_default_init_is_xavier():
    weight = Linear(100, 300, seed=0).weight.data
    assert np.abs(weight).max() <= np.sqrt(6 / 400)
    assert np.abs(weight).max() > 0.99 * np.sqrt(6 / 400)


# ---- Dropout ----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_drops_about_p_and_keeps_the_mean(p):
    x = Tensor(np.ones(1_000_000))
    out = Dropout(p, seed=0)(x)
    dropped = np.mean(out.data == 0)
    assert abs(dropped - p) < 0.003              # the std of this fraction is <= 0.0005
    # Inverted dropout keeps the mean: E[out] = x = 1 (std of this mean <= 0.003 at p=0.9).
    assert abs(out.data.mean() - 1.0) < 0.02


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_dropout_scales_survivors_by_inverse_keep_probability(rng, p):
    x = rng.uniform(1, 2, size=(200, 50)).astype(np.float32)   # never 0, so 0 means dropped
    out = Dropout(p, seed=1)(Tensor(x)).data
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-6)
    assert out.dtype == np.float32


def test_dropout_with_p_zero_is_the_identity_while_training():
    x = Tensor(np.arange(6.0))
    assert Dropout(0.0, seed=0)(x) is x


def test_dropout_masks_are_seeded_and_fresh_each_call():
    x = Tensor(np.ones(1000))
    first, second = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    call_1 = first(x).data
    np.testing.assert_array_equal(call_1, second(x).data)
    assert not np.array_equal(call_1, first(x).data)   # a new mask every forward pass


# ---- Sequential -----------------------------------------------------------------------------

def test_sequential_applies_layers_in_order():
    add_one, double = (lambda x: x + 1), (lambda x: x * 2)
    x = Tensor([1.0, 2.0])
    np.testing.assert_array_equal(Sequential(add_one, double)(x).data, [4.0, 6.0])
    np.testing.assert_array_equal(Sequential(double, add_one)(x).data, [3.0, 5.0])


def test_sequential_indexing_len_and_iteration():
    layers = [Linear(2, 3, seed=0), Dropout(0.1), Linear(3, 1, seed=1)]
    model = Sequential(*layers)
    assert len(model) == 3
    assert model[0] is layers[0] and model[2] is layers[2] and model[-1] is layers[2]
    assert list(model) == layers


def test_sequential_accepts_a_list():
    layers = [Linear(2, 3, seed=0), Linear(3, 1, seed=1)]
    assert list(Sequential(layers)) == layers


def test_empty_sequential_is_the_identity():
    x = Tensor([1.0, 2.0])
    assert Sequential()(x) is x and len(Sequential()) == 0


def test_sequential_repr_lists_the_layers():
    text = repr(Sequential(Linear(2, 3, seed=0), Dropout(0.5)))
    assert text == ("Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)"
                    "\n  (1): Dropout(p=0.5)\n)")


# ---- Module: parameters, children, train/eval ---------------------------------------------

class TwoBranches(Module):
    """Parameters in an attribute, a list, a dict and a child module."""

    def __init__(self):
        self.scale = Tensor([1.0], requires_grad=True)
        self.branches = [Linear(2, 2, seed=0), Linear(2, 2, seed=1)]
        self.heads = {"out": Linear(2, 1, seed=2)}
        self.constant = Tensor([3.0])                  # no gradient: not a parameter

    def forward(self, x):
        return self.heads["out"](self.branches[0](x) + self.branches[1](x)) * self.scale


def test_parameters_are_found_recursively_in_attribute_order():
    model = TwoBranches()
    expected = [model.scale,
                model.branches[0].weight, model.branches[0].bias,
                model.branches[1].weight, model.branches[1].bias,
                model.heads["out"].weight, model.heads["out"].bias]
    found = model.parameters()
    assert len(found) == len(expected)
    assert all(a is b for a, b in zip(found, expected))


def test_shared_parameters_are_listed_once():
    shared = Linear(3, 3, seed=0)
    model = Sequential(shared, Linear(3, 3, seed=1), shared)
    assert len(model.parameters()) == 4
    assert len({id(p) for p in model.parameters()}) == 4


def test_children_are_the_direct_submodules():
    model = TwoBranches()
    assert model.children() == [model.branches[0], model.branches[1], model.heads["out"]]
    assert Linear(2, 2, seed=0).children() == []


def test_train_and_eval_reach_every_nested_module():
    inner = Sequential(Linear(2, 2, seed=0), Dropout(0.5))
    model = Sequential(inner, Dropout(0.2), Linear(2, 1, seed=1))
    modules = [model, inner, inner[0], inner[1], model[1], model[2]]
    assert model.eval() is model
    assert not any(m.training for m in modules)
    assert model.train() is model
    assert all(m.training for m in modules)
    model.train(False)
    assert not any(m.training for m in modules)


def test_eval_of_one_module_leaves_others_in_training():
    evaluated, other = Dropout(0.5).eval(), Dropout(0.5)
    assert not evaluated.training and other.training and Module.training


def test_module_is_called_through_forward():
    class Doubler(Module):
        def forward(self, x, times=2):
            return x * times

    x = Tensor([1.0, 2.0])
    np.testing.assert_array_equal(Doubler()(x).data, [2.0, 4.0])
    np.testing.assert_array_equal(Doubler()(x, times=3).data, [3.0, 6.0])


# ---- shapes ---------------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("leading", [(), (1,), (7,), (2, 3), (2, 2, 3)])
def test_linear_maps_the_last_dimension(rng, leading):
    layer = Linear(5, 4, seed=0)
    layer.bias.data[...] = rng.normal(size=4)
    x = rng.normal(size=(*leading, 5)).astype(np.float32)
    y = layer(Tensor(x))
    assert y.shape == (*leading, 4)
    np.testing.assert_allclose(y.data, x @ layer.weight.data + layer.bias.data,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.shape
def test_single_sample_equals_its_row_in_a_batch(rng):
    layer = Linear(5, 3, seed=0)
    batch = rng.normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(batch[2])).data, layer(Tensor(batch)).data[2],
                               rtol=1e-6)


@pytest.mark.shape
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_dropout_keeps_the_shape(shape):
    assert Dropout(0.5, seed=0)(Tensor(np.ones(shape))).shape == shape


@pytest.mark.shape
@pytest.mark.parametrize("batch", [1, 64])
def test_sequential_chains_shapes(batch):
    model = Sequential(Linear(4, 8, seed=0), Dropout(0.5, seed=0), Linear(8, 3, seed=1))
    assert model(Tensor(np.ones((batch, 4)))).shape == (batch, 3)


# ---- one interface for every layer ----------------------------------------------------------

LAYERS = {
    "Linear": lambda: Linear(3, 3, seed=0),
    "Dropout": lambda: Dropout(0.5, seed=0),
    "Sequential": lambda: Sequential(Linear(3, 3, seed=0), Dropout(0.5, seed=0)),
}


@pytest.mark.api_consistency
@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_follows_the_module_interface(name):
    layer = LAYERS[name]()
    assert isinstance(layer, Module)
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    params = layer.parameters()
    assert isinstance(params, list)
    assert all(isinstance(p, Tensor) and p.requires_grad for p in params)
    assert repr(layer).startswith(f"{name}(")


@pytest.mark.api_consistency
@pytest.mark.parametrize("name", LAYERS)
def test_calling_a_layer_is_calling_forward(name):
    layer = LAYERS[name]().eval()                     # eval: Dropout is deterministic
    x = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(layer(x).data, layer.forward(x).data)


@pytest.mark.api_consistency
def test_layers_take_and_return_tensors():
    x = Tensor(np.ones((2, 3)))
    outputs = [make()(x) for make in LAYERS.values()]
    assert all(isinstance(out, Tensor) and out.shape[0] == 2 for out in outputs)
