"""Integration with modules 01-06: a Trainer run equals torch's training loop (SGD momentum,
StepLR, clipping over minibatches), equals a hand-written loop, and accepts any iterable of
(x, y) batches, as module 08's DataLoader will be."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import ArrayBatches, CosineAnnealingLR, StepLR, Trainer


def data(rng, n=20):
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, size=n)


@pytest.mark.parametrize("optimizer_name, kwargs, schedule", [
    ("SGD", dict(lr=0.2, momentum=0.9), ("StepLR", dict(step_size=2, gamma=0.5))),
    ("Adam", dict(lr=0.02), ("CosineAnnealingLR", dict(T_max=4, eta_min=0.001))),
    ("AdamW", dict(lr=0.02, weight_decay=0.1), ("StepLR", dict(step_size=1, gamma=0.7))),
])
def test_trainer_matches_a_torch_training_loop(torch, rng, optimizer_name, kwargs, schedule):
    x, labels = data(rng)
    model = Sequential(Linear(4, 8, seed=0), Tanh(), Linear(8, 3, seed=1))
    optimizer = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[optimizer_name](model.parameters(),
                                                                           **kwargs)
    scheduler_class = {"StepLR": StepLR, "CosineAnnealingLR": CosineAnnealingLR}[schedule[0]]
    trainer = Trainer(model, CrossEntropyLoss(), optimizer,
                      scheduler=scheduler_class(optimizer, **schedule[1]), max_grad_norm=0.5)
    history = trainer.fit(ArrayBatches(x, labels, batch_size=8), epochs=4)

    params = [torch.tensor(p.data, requires_grad=True) for p in
              Sequential(Linear(4, 8, seed=0), Tanh(), Linear(8, 3, seed=1)).parameters()]
    w1, b1, w2, b2 = params
    torch_optimizer = getattr(torch.optim, optimizer_name)(params, **kwargs)
    torch_scheduler = getattr(torch.optim.lr_scheduler, schedule[0])(torch_optimizer, **schedule[1])
    torch_losses = []
    for _ in range(4):
        total = 0.0
        for start in range(0, 20, 8):
            bx = torch.from_numpy(x[start:start + 8])
            by = torch.from_numpy(labels[start:start + 8])
            torch_optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(torch.tanh(bx @ w1 + b1) @ w2 + b2, by)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 0.5)
            torch_optimizer.step()
            total += loss.item() * len(by)
        torch_scheduler.step()
        torch_losses.append(total / 20)
    for ours, theirs in zip(model.parameters(), params):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(history["train_loss"], torch_losses, rtol=1e-5)


def test_trainer_equals_a_hand_written_loop(rng):
    x, labels = data(rng)

    def setup():
        model = Sequential(Linear(4, 8, seed=0), ReLU(), Linear(8, 3, seed=1))
        return model, Adam(model.parameters(), lr=0.01)

    model, optimizer = setup()
    trainer = Trainer(model, CrossEntropyLoss(), optimizer)
    trainer.fit(ArrayBatches(x, labels, batch_size=6), epochs=3)
    by_hand, hand_optimizer = setup()
    for _ in range(3):
        for start in range(0, 20, 6):
            hand_optimizer.zero_grad()
            batch_x, batch_y = Tensor(x[start:start + 6]), labels[start:start + 6]
            CrossEntropyLoss()(by_hand(batch_x), batch_y).backward()
            hand_optimizer.step()
    for ours, reference in zip(model.parameters(), by_hand.parameters()):
        np.testing.assert_array_equal(ours.data, reference.data)


def test_any_iterable_of_pairs_works_as_data(rng):
    x, labels = data(rng, n=12)

    class Loader:                 # the shape of module 08's DataLoader: re-iterable batches
        def __iter__(self):
            for start in range(0, 12, 4):
                yield Tensor(x[start:start + 4]), Tensor(labels[start:start + 4])

    as_lists = [[x[i:i + 4].tolist(), labels[i:i + 4].tolist()] for i in range(0, 12, 4)]
    as_arrays = [(x[i:i + 4], labels[i:i + 4]) for i in range(0, 12, 4)]
    results = []
    for source in (Loader(), as_lists, as_arrays, ArrayBatches(x, labels, batch_size=4)):
        model = Sequential(Linear(4, 3, seed=0))
        history = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1)).fit(source, 2)
        results.append(history["train_loss"])
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], rtol=1e-6)


def test_binary_classification_with_bce_logits_reports_accuracy(rng):
    x = rng.standard_normal((40, 2)).astype(np.float32)
    y = (x[:, :1] + x[:, 1:] > 0).astype(np.float32)              # (40, 1) labels
    model = Sequential(Linear(2, 1, seed=0))
    trainer = Trainer(model, BinaryCrossEntropyLoss(), Adam(model.parameters(), lr=0.1))
    assert trainer.classification
    history = trainer.fit(ArrayBatches(x, y, batch_size=10), epochs=30, val_data=[(x, y)])
    logits = x @ model[0].weight.data + model[0].bias.data
    assert history["val_accuracy"][-1] == np.mean((logits > 0) == (y > 0.5)) >= 0.95


def test_a_full_stack_model_with_dropout_trains_and_validates(rng):
    x, labels = data(rng, n=60)
    labels = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    model = Sequential(Linear(4, 32, seed=0), ReLU(), Dropout(0.2, seed=0), Linear(32, 3, seed=1))
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, scheduler=StepLR(optimizer, 10, 0.5),
                      max_grad_norm=5.0)
    history = trainer.fit(ArrayBatches(x, labels, batch_size=16, shuffle=True, seed=0), epochs=30,
                          val_data=[(x, labels)])
    assert history["val_loss"][-1] < history["val_loss"][0] / 3
    assert history["val_accuracy"][-1] >= 0.9
