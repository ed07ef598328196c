"""Shared by module 19's tests: a fake clock whose time the test scripts, and callables
that advance it by scripted durations and log every call, so the harness's statistics,
call counts and call order can be checked exactly, without sleeping."""
import pytest

# Durations are whole multiples of 2**-10 s (about a millisecond): every sum,
# difference and halving of them is exact in floating point.
UNIT = 2.0 ** -10


class FakeClock:
    """Time stands still until someone calls advance(); every read is counted."""

    def __init__(self, start=1000.0):
        self.now = start
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Scripted:
    """A callable that, on each call, appends its name to `log` and advances `clock`
    by the next of `durations` (in UNITs); it returns the index of the call."""

    def __init__(self, clock, durations, name="fn", log=None):
        self.clock, self.name = clock, name
        self.durations = iter(durations)
        self.log = [] if log is None else log
        self.calls = 0
        self.args = []

    def __call__(self, *args):
        self.args.append(args)
        self.log.append(self.name)
        self.clock.advance(next(self.durations) * UNIT)
        self.calls += 1
        return self.calls - 1


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def scripted(clock):
    """scripted(durations, name="fn", log=None) -> a Scripted callable on the test's clock."""
    def make(durations, name="fn", log=None):
        return Scripted(clock, durations, name, log)
    return make


@pytest.fixture
def unit():
    return UNIT


# ---- real data for the real-world comparisons ---------------------------------------------
# tinytorch is imported inside the fixtures: pytest loads a conftest before the
# orchestrator's plugin exports the modules, and a top-level import would see a stale export.

@pytest.fixture(scope="session")
def digits():
    """The shipped 8x8 digits in [0, 1] as flat rows (N, 64), split 80/20 with seed 0:
    1,438 training and 359 held-out images."""
    from types import SimpleNamespace

    import numpy as np

    from tinytorch.data.dataloader import load_digits

    images, labels = load_digits()
    flat = (images / 16).astype(np.float32).reshape(len(labels), 64)
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:len(labels) // 5], order[len(labels) // 5:]
    return SimpleNamespace(train_x=flat[train], train_y=labels[train], test_x=flat[test],
                           test_y=labels[test])


@pytest.fixture(scope="session")
def digits_mlp(digits):
    """MLP 64-32-10 trained by mini-batch SGD with momentum 0.9 (lr 0.1, batch 32,
    20 epochs, shuffle seed 1; module 06 is not in this module's closure)."""
    import numpy as np

    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.tensor import Tensor

    model = Sequential(Linear(64, 32, seed=0), ReLU(), Linear(32, 10, seed=1))
    loss_fn, params = CrossEntropyLoss(), model.parameters()
    velocity = [np.zeros_like(p.data) for p in params]
    shuffle = np.random.default_rng(1)
    for _ in range(20):
        order = shuffle.permutation(len(digits.train_y))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            loss = loss_fn(model(Tensor(digits.train_x[idx])), digits.train_y[idx])
            model.zero_grad()
            loss.backward()
            for p, v in zip(params, velocity):
                v *= 0.9
                v -= 0.1 * p.grad.data
                p.data += v
    return model
