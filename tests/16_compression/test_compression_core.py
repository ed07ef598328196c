"""Module 16 core: magnitude masks, global and per-layer pruning with persistent masks,
sparsity reports, structured pruning into smaller layers, low-rank factorization (checked
against numpy's SVD) and the distillation loss (hand computation, finite differences,
PyTorch)."""
import copy
import inspect

import numpy as np
import pytest

from tinytorch.compression import (
    PruningMasks,
    distillation_loss,
    factorize_linear,
    keep_inputs,
    keep_outputs,
    magnitude_mask,
    output_norms,
    prune_global,
    prune_per_layer,
    prune_structured,
    sparsity_report,
    strongest_outputs,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import count_parameters

API = ["PRUNABLE", "prunable_layers", "magnitude_mask", "PruningMasks", "prune_per_layer",
       "prune_global", "Sparsity", "sparsity_report", "output_norms", "strongest_outputs",
       "keep_outputs", "keep_inputs", "prune_structured", "factorize_linear",
       "distillation_loss"]


def mlp(rng, sizes=(6, 8, 5, 3), scales=None):
    """A Sequential of Linear + ReLU with standard-normal weights (times a per-layer scale)."""
    scales = scales or [1.0] * (len(sizes) - 1)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layer = Linear(n_in, n_out, seed=i)
        layer.weight.data[...] = rng.standard_normal((n_in, n_out)) * scales[i]
        layer.bias.data[...] = rng.standard_normal(n_out)
        layers += [layer, ReLU()]
    return Sequential(*layers[:-1])


def weights(model):
    return [layer.weight.data for layer in model if isinstance(layer, (Linear, Conv2d))]


# ---- unstructured pruning ------------------------------------------------------------------

def test_magnitude_mask_by_hand():
    w = np.array([0.1, -3.0, 0.5, 2.0, -0.05])
    assert magnitude_mask(w, 0.4).tolist() == [0, 1, 1, 1, 0]      # |0.1| and |-0.05| go
    assert magnitude_mask(w, 0.0).tolist() == [1] * 5
    assert magnitude_mask(w, 1.0).tolist() == [0] * 5
    assert magnitude_mask(w.reshape(1, 5), 0.6).shape == (1, 5)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_per_layer_pruning_reaches_the_exact_sparsity_in_every_layer(rng, sparsity):
    model = mlp(rng)
    original = [w.copy() for w in weights(model)]
    masks = prune_per_layer(model, sparsity)
    report = sparsity_report(model)
    for name, w, before in zip(["0", "2", "4"], weights(model), original):
        assert report[name].zeros == round(sparsity * w.size) and report[name].params == w.size
        kept, pruned = np.abs(before[w != 0]), np.abs(before[w == 0])
        assert kept.min() >= pruned.max()                           # the largest survive
        assert np.array_equal(w[w != 0], before[w != 0])            # survivors unchanged
        assert np.array_equal(masks[name] == 0, w == 0)


def test_global_pruning_ranks_all_layers_together(rng):
    model = mlp(rng, scales=[0.1, 1.0, 1.0])                        # layer 0 has small weights
    original = np.concatenate([w.ravel() for w in weights(model)])
    masks = prune_global(model, 0.5)
    after = np.concatenate([w.ravel() for w in weights(model)])
    assert (after == 0).sum() == round(0.5 * original.size) == masks.sparsity() * original.size
    assert np.abs(original[after != 0]).min() >= np.abs(original[after == 0]).max()
    report = sparsity_report(model)
    # the small first layer loses almost everything, the others little
    assert report["0"].fraction > 0.9 and report["2"].fraction < 0.25
    assert report["total"] == (round(0.5 * original.size), original.size)


def test_masks_keep_pruned_weights_at_zero_across_an_sgd_step(rng):
    model = mlp(rng)
    masks = prune_global(model, 0.6)
    pruned = [w == 0 for w in weights(model)]
    x, y = Tensor(rng.standard_normal((16, 6))), rng.integers(0, 3, 16)
    loss = CrossEntropyLoss()(model(x), y)
    loss.backward()
    for p in model.parameters():
        p.data -= 0.1 * p.grad.data
    # the step gives pruned weights a gradient: without the masks they come back
    assert any((w[zero] != 0).any() for w, zero in zip(weights(model), pruned))
    updated = [w.copy() for w in weights(model)]
    masks.apply()
    for w, zero, before in zip(weights(model), pruned, updated):
        assert (w[zero] == 0).all()
        assert np.array_equal(w[~zero], before[~zero])              # the rest keeps its update


def test_sparsity_report_counts_zeros_by_hand():
    model = Sequential(Linear(2, 3, seed=0), ReLU(), Linear(3, 2, seed=1))
    model[0].weight.data[...] = [[0, 1, 2], [0, 0, 3]]
    model[2].weight.data[...] = [[1, 0], [1, 1], [1, 1]]
    report = sparsity_report(model)
    assert list(report) == ["0", "2", "total"]
    assert report["0"] == (3, 6) and report["2"] == (1, 6) and report["total"] == (4, 12)
    assert report["0"].fraction == 0.5 and report["total"].fraction == pytest.approx(1 / 3)


# ---- structured pruning -------------------------------------------------------------------

def matching_columns(small, big):
    """For each column of `small`, the index of the equal column of `big`."""
    return [int(np.flatnonzero((big == small[:, [j]]).all(axis=0))[0])
            for j in range(small.shape[1])]


def test_output_norms_and_strongest_outputs_by_hand():
    layer = Linear(2, 3, seed=0)
    layer.weight.data[...] = [[3, 0, 1], [4, 1, 1]]
    assert output_norms(layer).tolist() == pytest.approx([5.0, 1.0, np.sqrt(2)])
    assert strongest_outputs(layer, 2).tolist() == [0, 2]
    conv = Conv2d(1, 2, 2, seed=0)
    conv.weight.data[...] = [[[[1, 1], [1, 1]]], [[[0, 0], [0, 3]]]]
    assert output_norms(conv).tolist() == [2.0, 3.0]


@pytest.mark.shape
def test_structured_pruning_gives_smaller_linear_layers(rng):
    model = mlp(rng)                                                 # 6 -> 8 -> 5 -> 3
    small = prune_structured(model, 0.5)
    shapes = [w.shape for w in weights(small)]
    assert shapes == [(6, 4), (4, 3), (3, 3)]                        # 8 - 4, 5 - round(2.5)
    assert [layer.out_features for layer in small if isinstance(layer, Linear)] == [4, 3, 3]
    assert weights(model)[0].shape == (6, 8)                        # the original is kept


def test_structured_pruning_keeps_the_strongest_neurons_and_equals_the_masked_original(rng):
    model = mlp(rng)
    small = prune_structured(model, 0.5)
    kept0 = matching_columns(small[0].weight.data, model[0].weight.data)
    assert kept0 == sorted(np.argsort(-output_norms(model[0]))[:4].tolist())
    # the masked original: removed neurons get zero incoming weights and bias (ReLU(0) = 0)
    masked = copy.deepcopy(model)
    kept2 = matching_columns(small[2].weight.data, model[2].weight.data[kept0])
    for layer, kept in ((masked[0], kept0), (masked[2], kept2)):
        removed = np.setdiff1d(np.arange(layer.out_features), kept)
        layer.weight.data[:, removed] = 0
        layer.bias.data[removed] = 0
    x = Tensor(rng.standard_normal((10, 6)))
    assert np.allclose(small(x).data, masked(x).data, rtol=1e-6, atol=1e-6)


@pytest.mark.shape
def test_structured_pruning_of_a_cnn_removes_filters_and_their_flattened_inputs(rng):
    model = Sequential(Conv2d(1, 6, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(6 * 2 * 2, 3, seed=1))
    model[0].bias.data[...] = rng.standard_normal(6)
    small = prune_structured(model, 0.5)
    assert small[0].weight.shape == (3, 1, 3, 3) and small[4].weight.shape == (12, 3)
    kept = sorted(np.argsort(-output_norms(model[0]))[:3].tolist())
    assert np.array_equal(small[0].weight.data, model[0].weight.data[kept])
    rows = [c * 4 + k for c in kept for k in range(4)]              # channel c -> 4 inputs
    assert np.array_equal(small[4].weight.data, model[4].weight.data[rows])
    # equal to the original with the removed filters zeroed (their outputs are then 0)
    x = Tensor(rng.uniform(0, 1, (5, 1, 4, 4)).astype(np.float32))
    removed = np.setdiff1d(np.arange(6), kept)
    model[0].weight.data[removed] = 0
    model[0].bias.data[removed] = 0
    assert np.allclose(small(x).data, model(x).data, rtol=1e-5, atol=1e-6)


def test_keep_inputs_and_outputs_copy_the_selected_weights(rng):
    layer = Linear(6, 4, seed=0)
    layer.bias.data[...] = [1, 2, 3, 4]
    out = keep_outputs(layer, [1, 3])
    assert np.array_equal(out.weight.data, layer.weight.data[:, [1, 3]])
    assert out.bias.data.tolist() == [2, 4] and out.weight.requires_grad
    grouped = keep_inputs(layer, [0, 2], group=2)                    # inputs 0, 1, 4, 5
    assert np.array_equal(grouped.weight.data, layer.weight.data[[0, 1, 4, 5]])
    out.weight.data[...] = 0
    assert (layer.weight.data != 0).any()                            # copies, not views


# ---- low-rank factorization -----------------------------------------------------------------

def test_full_rank_factorization_reproduces_the_layer(rng):
    layer = Linear(12, 7, seed=0)
    layer.bias.data[...] = rng.standard_normal(7)
    factored = factorize_linear(layer, 7)
    first, second = factored
    assert (first.in_features, first.out_features, first.bias) == (12, 7, None)
    assert (second.in_features, second.out_features) == (7, 7)
    x = Tensor(rng.standard_normal((9, 12)).astype(np.float32))
    assert np.allclose(factored(x).data, layer(x).data, rtol=1e-5, atol=1e-5)
    product = first.weight.data.astype(np.float64) @ second.weight.data
    assert np.allclose(product, layer.weight.data, atol=1e-5)


def test_factorization_error_is_the_discarded_singular_value_energy(rng):
    layer = Linear(20, 10, seed=0)
    s = np.linalg.svd(layer.weight.data.astype(np.float64), compute_uv=False)
    errors = []
    for rank in range(1, 11):
        first, second = factorize_linear(layer, rank)
        approx = first.weight.data.astype(np.float64) @ second.weight.data
        error = np.sum((layer.weight.data - approx) ** 2)
        assert error == pytest.approx(np.sum(s[rank:] ** 2), rel=1e-4, abs=1e-9)
        errors.append(error)
    assert all(a > b for a, b in zip(errors, errors[1:]))            # strictly decreasing


def test_factorization_matches_numpys_truncated_svd(rng):
    layer = Linear(8, 6, seed=3)
    u, s, vt = np.linalg.svd(layer.weight.data.astype(np.float64), full_matrices=False)
    first, second = factorize_linear(layer, 3)
    expected = (u[:, :3] * s[:3]) @ vt[:3]
    assert np.allclose(first.weight.data.astype(np.float64) @ second.weight.data, expected,
                       atol=1e-6)


@pytest.mark.memory_performance
def test_factorization_saves_parameters_below_in_out_over_in_plus_out():
    layer = Linear(64, 32, seed=0)                                   # 64 * 32 / 96 = 21.3
    dense = count_parameters(layer).total
    assert dense == 64 * 32 + 32
    assert count_parameters(factorize_linear(layer, 21)).total == 21 * 96 + 32 < dense
    assert count_parameters(factorize_linear(layer, 22)).total == 22 * 96 + 32 > dense
    assert count_parameters(factorize_linear(layer, 4)).total == 4 * 96 + 32   # 416, 5x fewer


# ---- distillation loss ----------------------------------------------------------------------

def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def hand_distillation(s, t, y, T, alpha):
    p_t, p_s = softmax(t / T), softmax(s / T)
    kl = np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1).mean()
    ce = -np.log(softmax(s)[np.arange(len(y)), y]).mean()
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (2.0, 0.3), (4.0, 0.9), (0.5, 0.7)])
def test_distillation_loss_by_hand(rng, T, alpha):
    s, t = rng.standard_normal((6, 5)), rng.standard_normal((6, 5)) * 3
    y = rng.integers(0, 5, 6)
    loss = distillation_loss(Tensor(s, dtype=np.float64), t, y, T=T, alpha=alpha)
    assert loss.shape == () and loss.dtype == np.float64
    assert loss.item() == pytest.approx(hand_distillation(s, t, y, T, alpha), rel=1e-10)


def test_distillation_loss_special_cases(rng):
    s = Tensor(rng.standard_normal((4, 3)))
    y = np.array([0, 2, 1, 1])
    ce = CrossEntropyLoss()(s, y).item()
    same = distillation_loss(s, s.data.copy(), y, T=3.0, alpha=0.4).item()
    assert same == pytest.approx(0.6 * ce)                           # KL of equal logits is 0
    hard_only = distillation_loss(s, rng.standard_normal((4, 3)), y, alpha=0.0).item()
    assert hard_only == pytest.approx(ce)
    t = rng.standard_normal((4, 3))
    soft_only = distillation_loss(s, t, None, T=2.0, alpha=1.0).item()
    assert soft_only == pytest.approx(hand_distillation(s.data, t, y, 2.0, 1.0), rel=1e-5)


def test_distillation_gradient_by_hand_and_by_finite_differences(rng):
    T, alpha = 3.0, 0.6
    s = Tensor(rng.standard_normal((5, 4)), dtype=np.float64, requires_grad=True)
    teacher = Tensor(rng.standard_normal((5, 4)), dtype=np.float64, requires_grad=True)
    y = rng.integers(0, 4, 5)
    distillation_loss(s, teacher, y, T=T, alpha=alpha).backward()
    # d/ds: alpha * T * (p_s - p_t) / N  +  (1 - alpha) * (softmax(s) - onehot) / N
    onehot = np.eye(4)[y]
    expected = (alpha * T * (softmax(s.data / T) - softmax(teacher.data / T))
                + (1 - alpha) * (softmax(s.data) - onehot)) / 5
    assert np.allclose(s.grad.data, expected, rtol=1e-10, atol=1e-12)
    assert teacher.grad is None                                      # the teacher is a constant
    s.grad = None
    assert gradcheck(lambda z: distillation_loss(z, teacher, y, T=T, alpha=alpha), [s]) < 1e-6


def test_distillation_loss_matches_pytorch(torch, rng):
    F = torch.nn.functional
    T, alpha = 4.0, 0.7
    s = rng.standard_normal((8, 10)).astype(np.float32)
    t = (rng.standard_normal((8, 10)) * 2).astype(np.float32)
    y = rng.integers(0, 10, 8)
    ours_s = Tensor(s, requires_grad=True)
    ours = distillation_loss(ours_s, Tensor(t), y, T=T, alpha=alpha)
    ours.backward()
    theirs_s = torch.tensor(s, requires_grad=True)
    kl = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(theirs_s / T, dim=1),
                                                   F.softmax(torch.tensor(t) / T, dim=1))
    theirs = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(theirs_s, torch.tensor(y))
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    assert ours_s.grad.shape == tuple(theirs_s.grad.shape)
    assert np.allclose(ours_s.grad.data, theirs_s.grad.numpy(), rtol=1e-4, atol=1e-6)


# ---- API -------------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.compression", API)
    assert found["PRUNABLE"] == (Linear, Conv2d)
    assert found["Sparsity"](1, 4).fraction == 0.25


@pytest.mark.api_consistency
def test_signatures():
    sig = inspect.signature(distillation_loss).parameters
    assert list(sig) == ["student_logits", "teacher_logits", "targets", "T", "alpha"]
    assert (sig["T"].default, sig["alpha"].default) == (4.0, 0.5)
    for prune in (prune_global, prune_per_layer):
        assert list(inspect.signature(prune).parameters) == ["model", "sparsity"]
    assert list(inspect.signature(prune_structured).parameters) == ["model", "fraction"]
    assert list(inspect.signature(factorize_linear).parameters) == ["layer", "rank"]


@pytest.mark.api_consistency
def test_pruning_returns_masks_and_compressed_layers_are_trainable_modules(rng):
    model = mlp(rng)
    masks = prune_global(model, 0.5)
    assert isinstance(masks, PruningMasks) and len(masks) == 3 and list(masks) == ["0", "2", "4"]
    for built in (prune_structured(mlp(rng), 0.5), factorize_linear(Linear(4, 3, seed=0), 2)):
        assert isinstance(built, Sequential)
        assert all(p.requires_grad and p.dtype == np.float32 for p in built.parameters())
