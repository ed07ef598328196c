"""Module 16 with the modules it builds on: CNN layers (09) pruned and fine-tuned through
their gradients (05), DataLoader batches (08), and module 14's counts of parameters and
FLOPs on pruned, shrunk and factorized models."""
import numpy as np
import pytest

from tinytorch.compression import (
    distillation_loss,
    factorize_linear,
    prunable_layers,
    prune_global,
    prune_structured,
    sparsity_report,
)
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import DataLoader, TensorDataset
from tinytorch.profiling import count_parameters, leaf_layers, model_flops, parameter_bytes


def cnn():
    return Sequential(Conv2d(1, 8, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                      Conv2d(8, 6, 3, padding=1, seed=1), ReLU(), Flatten(),
                      Linear(6 * 4 * 4, 5, seed=2))


def test_a_pruned_cnn_fine_tunes_from_a_dataloader_and_stays_sparse(rng):
    model = cnn()
    masks = prune_global(model, 0.7)
    assert list(masks) == ["0", "3", "6"]
    zero = {name: masks[name] == 0 for name in masks}
    images = rng.uniform(0, 1, (48, 1, 8, 8)).astype(np.float32)
    loader = DataLoader(TensorDataset(images, rng.integers(0, 5, 48)), batch_size=16,
                        shuffle=True, seed=0)
    loss_fn, losses = CrossEntropyLoss(), []
    for _ in range(3):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data -= 0.05 * p.grad.data
            masks.apply()
            losses.append(loss.item())
    assert losses[-1] < losses[0]                                    # it learns
    for name, layer in prunable_layers(model):
        assert (layer.weight.data[zero[name]] == 0).all()
    assert sparsity_report(model)["total"].zeros == round(0.7 * (72 + 432 + 480))


@pytest.mark.memory_performance
def test_structured_pruning_shrinks_parameters_and_flops_by_the_exact_amounts():
    model = cnn()
    small = prune_structured(model, 0.5)                             # 8 -> 4, 6 -> 3 filters
    assert [layer.weight.shape for _, layer in prunable_layers(small)] == [
        (4, 1, 3, 3), (3, 4, 3, 3), (48, 5)]
    assert count_parameters(model).total == (72 + 8) + (432 + 6) + (480 + 5)
    assert count_parameters(small).total == (36 + 4) + (108 + 3) + (240 + 5)
    assert parameter_bytes(small) == 4 * 396
    # FLOPs of module 14: each filter removed saves its whole output map
    assert model_flops(small, (2, 1, 8, 8)) < 0.5 * model_flops(model, (2, 1, 8, 8))


@pytest.mark.memory_performance
def test_a_factorized_layer_costs_fewer_flops(rng):
    layer = Linear(64, 64, seed=0)
    factored = factorize_linear(layer, 8)
    assert [name for name, _ in leaf_layers(Sequential(factored, ReLU()))] == ["0.0", "0.1", "1"]
    dense_flops, low_rank_flops = model_flops(layer, (10, 64)), model_flops(factored, (10, 64))
    assert dense_flops == 2 * 10 * 64 * 64 + 10 * 64
    assert low_rank_flops == 2 * 10 * 64 * 8 + 2 * 10 * 8 * 64 + 10 * 64
    assert count_parameters(factored).total == 8 * 128 + 64


def test_a_factorized_model_trains_end_to_end(rng):
    model = Sequential(factorize_linear(Linear(6, 6, seed=0), 2), ReLU(), Linear(6, 3, seed=1))
    x = rng.standard_normal((32, 6))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)                # learnable through rank 2
    x = Tensor(x)
    loss_fn, first = CrossEntropyLoss(), None
    for _ in range(30):
        loss = loss_fn(model(x), y)
        first = first if first is not None else loss.item()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.2 * p.grad.data
    assert len(model.parameters()) == 5                              # A, B, b and the last layer
    assert loss.item() < 0.8 * first


def test_distillation_pulls_a_student_towards_its_teacher(rng):
    teacher = Sequential(Linear(8, 16, seed=0), ReLU(), Linear(16, 4, seed=1))
    student = Sequential(Linear(8, 4, seed=2))
    x = rng.standard_normal((64, 8)).astype(np.float32)
    loader = DataLoader(TensorDataset(x), batch_size=16, shuffle=True, seed=0)

    def disagreement():
        return (student(Tensor(x)).data.argmax(1) != teacher(Tensor(x)).data.argmax(1)).mean()

    start = disagreement()
    for _ in range(40):
        for (batch,) in loader:
            loss = distillation_loss(student(batch), teacher(batch).detach(), None, T=2.0,
                                     alpha=1.0)
            student.zero_grad()
            loss.backward()
            for p in student.parameters():
                p.data -= 0.1 * p.grad.data
    assert all(p.grad is None for p in teacher.parameters())         # the teacher is not trained
    assert disagreement() < start / 2


def test_pruning_after_structured_pruning_and_iteratively(rng):
    small = prune_structured(cnn(), 0.25)
    first = prune_global(small, 0.5)
    zero_after_first = {name: first[name] == 0 for name in first}
    second = prune_global(small, 0.8)                                # prune further
    for name, _ in prunable_layers(small):
        assert (second[name][zero_after_first[name]] == 0).all()     # old zeros stay pruned
    total = sum(layer.weight.size for _, layer in prunable_layers(small))
    assert sparsity_report(small)["total"].zeros == round(0.8 * total)
