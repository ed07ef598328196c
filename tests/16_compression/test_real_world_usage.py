"""Module 16 on real data: the digits models of conftest.py (trained once per session,
seeded) pruned, shrunk, factorized and distilled; every accuracy is measured on the 359
held-out images, every size counted from the models' tensors (module 14)."""
import copy

import numpy as np
import pytest

from tinytorch.compression import (
    distillation_loss,
    factorize_linear,
    prune_global,
    prune_per_layer,
    prune_structured,
    sparsity_report,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import count_parameters, parameter_bytes

SPARSITIES = [0.0, 0.5, 0.8, 0.9, 0.95]


def test_accuracy_versus_global_sparsity_with_and_without_fine_tuning(digits, digits_mlp,
                                                                      train, accuracy):
    x, y = digits.test_flat, digits.test_labels
    dense = accuracy(digits_mlp, x, y)
    pruned, tuned = {}, {}
    for sparsity in SPARSITIES:
        model = copy.deepcopy(digits_mlp)
        masks = prune_global(model, sparsity)
        assert sparsity_report(model)["total"].zeros == round(sparsity * (64 * 32 + 32 * 10))
        pruned[sparsity] = accuracy(model, x, y)
        train(model, digits.train_flat, digits.train_labels, epochs=2, lr=0.02, seed=2,
              masks=masks)                                    # masks re-applied every step
        assert sparsity_report(model)["total"].zeros >= round(sparsity * 2368)
        tuned[sparsity] = accuracy(model, x, y)
    per_layer = copy.deepcopy(digits_mlp)
    prune_per_layer(per_layer, 0.9)
    per_layer_90 = accuracy(per_layer, x, y)
    print("\nsparsity | pruned | + 2 epochs fine-tuning (digits MLP 64-32-10, dense "
          f"{dense:.4f})")
    for sparsity in SPARSITIES:
        print(f"  {sparsity:4.0%}   | {pruned[sparsity]:.4f} | {tuned[sparsity]:.4f}")
    print(f"  per-layer pruning at 90%, no fine-tuning: {per_layer_90:.4f}")
    assert dense >= 0.96
    assert dense - pruned[0.5] < 0.02
    assert pruned[0.95] < tuned[0.8]
    assert dense - tuned[0.8] < 0.02
    assert pruned[0.5] > pruned[0.8] > pruned[0.9] > pruned[0.95]
    assert all(tuned[s] > pruned[s] for s in (0.8, 0.9, 0.95))
    assert pruned[0.9] > per_layer_90                 # global ranking spares the small layer


def test_pruning_the_digits_cnn(digits, digits_cnn, train, accuracy):
    model = copy.deepcopy(digits_cnn)
    dense = accuracy(model, digits.test_images, digits.test_labels)
    masks = prune_global(model, 0.8)
    pruned = accuracy(model, digits.test_images, digits.test_labels)
    train(model, digits.train_images, digits.train_labels, epochs=2, lr=0.02, seed=2, masks=masks)
    tuned = accuracy(model, digits.test_images, digits.test_labels)
    report = sparsity_report(model)
    print(f"\ndigits CNN at 80% global sparsity: {dense:.4f} -> {pruned:.4f} -> fine-tuned "
          f"{tuned:.4f}; conv {report['0'].fraction:.3f}, linear {report['4'].fraction:.3f} zeros")
    assert report["total"] == (round(0.8 * 1352), 1352)
    assert report["0"].fraction < report["4"].fraction  # the 72 conv weights are spared
    assert dense - tuned < 0.02


@pytest.mark.memory_performance
def test_structured_pruning_halves_the_mlp_and_fine_tunes_back(digits, digits_mlp, train,
                                                               accuracy):
    x, y = digits.test_flat, digits.test_labels
    small = prune_structured(digits_mlp, 0.5)
    assert count_parameters(digits_mlp).total == 64 * 32 + 32 + 32 * 10 + 10       # 2,410
    assert count_parameters(small).total == 64 * 16 + 16 + 16 * 10 + 10            # 1,210
    assert parameter_bytes(small) == 4 * 1210
    before = accuracy(small, x, y)
    train(small, digits.train_flat, digits.train_labels, epochs=3, lr=0.02, seed=2)
    after = accuracy(small, x, y)
    dense = accuracy(digits_mlp, x, y)
    print(f"\nstructured 50% (32 -> 16 hidden units, 2410 -> 1210 parameters): {dense:.4f} -> "
          f"{before:.4f} -> fine-tuned {after:.4f}")
    assert before >= 0.9 and dense - after < 0.02


@pytest.mark.memory_performance
def test_low_rank_first_layer_on_the_digits(digits, digits_mlp, train, accuracy):
    x, y = digits.test_flat, digits.test_labels
    dense = accuracy(digits_mlp, x, y)
    results = {}
    for rank in (2, 4, 8, 16):
        model = Sequential(factorize_linear(digits_mlp[0], rank), digits_mlp[1],
                           copy.deepcopy(digits_mlp[2]))
        assert count_parameters(model).total == rank * (64 + 32) + 32 + 32 * 10 + 10
        before = accuracy(model, x, y)
        train(model, digits.train_flat, digits.train_labels, epochs=3, lr=0.02, seed=2)
        results[rank] = (count_parameters(model).total, before, accuracy(model, x, y))
    print(f"\nlow-rank first layer (dense: 2410 parameters, {dense:.4f}):")
    for rank, (params, before, after) in results.items():
        print(f"  rank {rank:2d}: {params} parameters, {before:.4f} -> fine-tuned {after:.4f}")
    befores = [results[r][1] for r in (2, 4, 8, 16)]
    assert befores == sorted(befores)                   # more rank, less discarded energy
    assert results[8][0] < 0.5 * 2410 and dense - results[8][2] < 0.02


def test_distilling_the_digits_into_a_small_student(digits, train, accuracy):
    x, y = digits.train_flat, digits.train_labels
    teacher = Sequential(Linear(64, 128, seed=0), ReLU(), Linear(128, 10, seed=1))
    train(teacher, x, y, epochs=20, lr=0.1)
    with no_grad():
        teacher_logits = teacher(Tensor(x)).data

    def soft_loss(logits, idx):
        return distillation_loss(logits, teacher_logits[idx], y[idx], T=4.0, alpha=0.7)

    plain, distilled = [], []
    for seed in (0, 1, 2):
        student = Sequential(Linear(64, 8, seed=seed + 10), ReLU(), Linear(8, 10, seed=seed + 20))
        twin = copy.deepcopy(student)                   # same start for both recipes
        train(student, x, y, epochs=20, lr=0.05)
        train(twin, x, y, epochs=20, lr=0.05, loss_fn=soft_loss)
        plain.append(accuracy(student, digits.test_flat, digits.test_labels))
        distilled.append(accuracy(twin, digits.test_flat, digits.test_labels))
    teacher_acc = accuracy(teacher, digits.test_flat, digits.test_labels)
    sizes = count_parameters(teacher).total, count_parameters(student).total
    print(f"\nteacher 64-128-10 ({sizes[0]} parameters): {teacher_acc:.4f}; student 64-8-10 "
          f"({sizes[1]} parameters), seeds 0-2: cross-entropy only {np.round(plain, 4)}, "
          f"distilled (T=4, alpha=0.7) {np.round(distilled, 4)}")
    assert sizes == (64 * 128 + 128 + 128 * 10 + 10, 64 * 8 + 8 + 8 * 10 + 10)   # 9610, 610
    assert teacher_acc >= 0.96
    assert np.mean(distilled) >= 0.95
    assert np.mean(distilled) > np.mean(plain)
