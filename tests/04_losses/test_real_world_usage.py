"""What losses are for: scoring models on labelled data. A fixed classifier on
hand-labelled points, a logistic regression on study hours, and a least-squares line,
each checked against numpy, and each loss ranking a better model below a worse one."""
import math

import numpy as np
import pytest

from tinytorch.core.layers import Linear
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

# Seven points labelled by hand: class 0 lies to the right, 1 to the left, 2 up high.
POINTS = np.array([[2.0, 0.0], [3.0, 1.0], [-2.0, 0.0], [-1.0, -1.0],
                   [0.0, 3.0], [1.0, 4.0], [1.5, 1.0]], dtype=np.float32)
LABELS = np.array([0, 0, 1, 1, 2, 2, 2])           # the last point is a hard case


def classifier(scale=1.0):
    """Logits (x, -x, y) * scale: 'right', 'left', 'up'."""
    layer = Linear(2, 3, seed=0)
    layer.weight.data[...] = np.array([[1, -1, 0], [0, 0, 1]]) * scale
    return layer


def numpy_cross_entropy(logits, labels):
    logits = logits.astype(np.float64)
    log_z = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    return np.mean(log_z - logits[np.arange(len(labels)), labels])


def test_fixed_classifier_loss_and_accuracy():
    logits = classifier()(Tensor(POINTS))
    loss = CrossEntropyLoss()(logits, LABELS).item()
    expected = numpy_cross_entropy(POINTS @ classifier().weight.data, LABELS)
    assert loss == pytest.approx(expected, rel=1e-6)
    # By hand, point by point: -log softmax = log(sum_j exp(logit_j - logit_label)).
    e = math.exp
    by_hand = [math.log(1 + e(-4) + e(-2)), math.log(1 + e(-6) + e(-2)),   # (2, 0), (3, 1)
               math.log(1 + e(-4) + e(-2)), math.log(1 + 2 * e(-2)),       # (-2, 0), (-1, -1)
               math.log(1 + 2 * e(-3)), math.log(1 + e(-3) + e(-5)),       # (0, 3), (1, 4)
               math.log(e(0.5) + e(-2.5) + 1)]                             # (1.5, 1): wrong
    assert loss == pytest.approx(sum(by_hand) / 7, rel=1e-6)
    predicted = logits.data.argmax(axis=1)
    np.testing.assert_array_equal(predicted, [0, 0, 1, 1, 2, 2, 0])   # (1.5, 1) looks 'right'
    # A classifier that knows nothing (all logits 0) pays log 3 on every point.
    uniform = CrossEntropyLoss()(classifier(0.0)(Tensor(POINTS)), LABELS)
    assert uniform.item() == pytest.approx(math.log(3))


def test_logistic_regression_on_study_hours():
    hours = np.array([[0.5], [1.0], [1.5], [2.0], [3.0], [3.5], [4.0], [5.0]], dtype=np.float32)
    passed = np.array([[0], [0], [0], [1], [0], [1], [1], [1]], dtype=np.float32)
    model = Linear(1, 1, seed=0)
    model.weight.data[...] = 2.0
    model.bias.data[...] = -5.0                        # 50% at 2.5 hours
    z = (hours * 2.0 - 5.0).astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    expected = -np.mean(passed * np.log(p) + (1 - passed) * np.log(1 - p))
    loss = BinaryCrossEntropyLoss()(model(Tensor(hours)), Tensor(passed)).item()
    assert loss == pytest.approx(expected, rel=1e-5)
    assert loss < math.log(2)                         # better than a coin flip (weights 0)


@pytest.mark.parametrize("nudge", [(0.1, 0.0), (0.0, 0.1), (-0.05, 0.05)])
def test_least_squares_line_has_the_lowest_mse(nudge):
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, size=(40, 1))
    y = 3 * x - 1 + rng.normal(scale=0.3, size=(40, 1))
    design = np.hstack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y[:, 0], rcond=None)
    residual_mse = np.mean((design @ [slope, intercept] - y[:, 0]) ** 2)

    def mse_of(w, b):
        line = Linear(1, 1, seed=0)
        line.weight.data[...], line.bias.data[...] = w, b
        return MSELoss()(line(Tensor(x, dtype=np.float64)), Tensor(y, dtype=np.float64)).item()

    best = mse_of(slope, intercept)
    assert best == pytest.approx(residual_mse, rel=1e-6)   # float32 weights, float64 data
    assert mse_of(slope + nudge[0], intercept + nudge[1]) > best
