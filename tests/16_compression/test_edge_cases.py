"""Module 16 at the edges: nothing or everything pruned, already sparse weights, ties,
structures it cannot shrink, and arguments that make no sense, each with a clear error."""
import numpy as np
import pytest

from tinytorch.compression import (
    PruningMasks,
    Sparsity,
    distillation_loss,
    factorize_linear,
    magnitude_mask,
    prune_global,
    prune_per_layer,
    prune_structured,
    sparsity_report,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


def model(seed=0):
    return Sequential(Linear(5, 4, seed=seed), ReLU(), Linear(4, 3, seed=seed + 1))


def test_sparsity_zero_changes_nothing_and_one_zeroes_everything():
    m = model()
    before = [p.data.copy() for p in m.parameters()]
    prune_global(m, 0.0)
    assert all(np.array_equal(b, p.data) for b, p in zip(before, m.parameters()))
    prune_per_layer(m, 1.0)
    assert sparsity_report(m)["total"] == (32, 32)
    assert (m[2].bias.data == before[3]).all()                      # biases are not pruned


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "0.5", None])
def test_a_sparsity_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match="sparsity must be a number in"):
        prune_global(model(), bad)


def test_an_already_sparse_model_loses_only_zeros():
    m = model()
    m[0].weight.data[:, :3] = 0.0                                    # 15 of 20 weights are 0
    before = m[0].weight.data.copy()
    masks = prune_per_layer(m, 0.5)                                  # asks for 10 zeros
    assert np.array_equal(m[0].weight.data, before)                  # all 10 were zeros already
    assert (masks["0"] == 0).sum() == 10 and (before[masks["0"] == 0] == 0).all()
    assert sparsity_report(m)["0"] == (15, 20)                       # the report counts all zeros


def test_ties_are_broken_by_position_and_the_count_stays_exact():
    mask = magnitude_mask(np.full((2, 3), 0.5), 0.5)
    assert mask.tolist() == [[0, 0, 0], [1, 1, 1]]
    assert magnitude_mask(np.array([-1.0, 1.0, -1.0, 1.0]), 0.5).tolist() == [0, 0, 1, 1]


def test_nan_weights_cannot_be_ranked():
    with pytest.raises(ValueError, match="NaN"):
        magnitude_mask(np.array([1.0, np.nan]), 0.5)


def test_a_model_without_linear_or_conv_layers_cannot_be_pruned():
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        prune_global(Sequential(ReLU()), 0.5)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        sparsity_report(Sequential(ReLU()))


def test_a_lone_layer_is_a_one_layer_model():
    layer = Linear(4, 5, seed=0)
    masks = prune_global(layer, 0.25)
    assert list(masks) == ["0"] and sparsity_report(layer)["0"] == (5, 20)


def test_masks_must_match_their_weights():
    masks = PruningMasks()
    with pytest.raises(ValueError, match="does not match"):
        masks.add("w", Tensor(np.ones((2, 2)), requires_grad=True), np.ones(4))


def test_sparsity_of_nothing_is_zero():
    assert Sparsity(0, 0).fraction == 0.0


def test_structured_pruning_extremes():
    m = model()
    x = Tensor(np.random.default_rng(0).standard_normal((3, 5)))
    same = prune_structured(m, 0.0)
    assert np.allclose(same(x).data, m(x).data) and same[0] is not m[0]
    tiny = prune_structured(m, 1.0)                                  # at least one neuron stays
    assert tiny[0].weight.shape == (5, 1) and tiny[2].weight.shape == (1, 3)
    alone = prune_structured(Sequential(Linear(3, 2, seed=0)), 0.5)  # nothing to shrink
    alone[0].weight.data[...] = 0
    assert alone[0].weight.shape == (3, 2)


def test_structured_pruning_refuses_what_it_cannot_follow():
    class Shuffle(Module):                                           # mixes the channels
        def forward(self, x):
            return x[:, ::-1]

    with pytest.raises(TypeError, match="Shuffle"):
        prune_structured(Sequential(Linear(3, 4, seed=0), Shuffle(), Linear(4, 2, seed=1)), 0.5)
    with pytest.raises(TypeError, match="Sequential"):
        prune_structured(Linear(3, 4, seed=0), 0.5)
    with pytest.raises(ValueError, match="fraction"):
        prune_structured(model(), 2.0)


def test_layers_without_bias_are_pruned_and_factorized():
    m = Sequential(Linear(4, 6, bias=False, seed=0), ReLU(), Linear(6, 2, bias=False, seed=1))
    small = prune_structured(m, 0.5)
    assert small[0].bias is None and small[2].bias is None and small[0].weight.shape == (4, 3)
    first, second = factorize_linear(m[0], 2)
    assert first.bias is None and second.bias is None


@pytest.mark.parametrize("rank", [0, 5, 2.0, True])
def test_factorize_rank_must_be_an_integer_up_to_the_full_rank(rank):
    with pytest.raises(ValueError, match=r"rank must be an integer in \[1, 4\]"):
        factorize_linear(Linear(6, 4, seed=0), rank)


def test_factorize_needs_a_linear():
    with pytest.raises(TypeError, match="expects a Linear"):
        factorize_linear(ReLU(), 1)


def test_distillation_loss_rejects_bad_inputs():
    s, t, y = Tensor(np.zeros((2, 3))), np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(ValueError, match=r"must both be \(N, C\)"):
        distillation_loss(s, np.zeros((2, 4)), y)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, y, T=0.0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(TypeError, match="Tensor"):
        distillation_loss(np.zeros((2, 3)), t, y)
    with pytest.raises(TypeError, match="integer class indices"):
        distillation_loss(s, t, None, alpha=0.5)                     # labels needed unless alpha=1
