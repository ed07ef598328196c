"""Small but real computations written with Tensor operations only, checked against
numpy's answers."""
import numpy as np

from tinytorch.core.tensor import Tensor


def make_regression(rng, n=200):
    """y = X @ [2, -1, 0.5] + 0.3 + small noise."""
    x = rng.standard_normal((n, 3))
    y = x @ np.array([2.0, -1.0, 0.5]) + 0.3 + 0.01 * rng.standard_normal(n)
    return x, y.reshape(n, 1)


def test_linear_regression_by_gradient_descent_matches_least_squares(rng):
    x_np, y_np = make_regression(rng)
    x, y = Tensor(x_np, dtype=np.float64), Tensor(y_np, dtype=np.float64)
    w, b = Tensor(np.zeros((3, 1)), dtype=np.float64), Tensor(0.0, dtype=np.float64)
    n = x.shape[0]
    for _ in range(300):
        error = x @ w + b - y                       # (n, 1)
        w = w - 0.1 * (2 / n) * (x.T @ error)       # gradient of the mean squared error
        b = b - 0.1 * (2 / n) * error.sum()
    design = np.hstack([x_np, np.ones((n, 1))])
    solution = np.linalg.lstsq(design, y_np, rcond=None)[0].ravel()
    np.testing.assert_allclose(w.data.ravel(), solution[:3], atol=1e-6)
    assert abs(b.item() - solution[3]) < 1e-6
    np.testing.assert_allclose(solution, [2.0, -1.0, 0.5, 0.3], atol=0.01)


def test_two_layer_mlp_forward_matches_numpy(rng):
    x_np = rng.standard_normal((8, 4)).astype(np.float32)
    w1_np = rng.standard_normal((4, 16)).astype(np.float32) * 0.5
    b1_np = rng.standard_normal(16).astype(np.float32) * 0.1
    w2_np = rng.standard_normal((16, 3)).astype(np.float32) * 0.5
    b2_np = np.zeros(3, dtype=np.float32)

    hidden = (Tensor(x_np) @ Tensor(w1_np) + Tensor(b1_np)).maximum(0.0)   # ReLU
    logits = hidden @ Tensor(w2_np) + Tensor(b2_np)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = shifted.exp() / shifted.exp().sum(axis=1, keepdims=True)

    hidden_np = np.maximum(x_np @ w1_np + b1_np, 0)
    logits_np = hidden_np @ w2_np + b2_np
    exps = np.exp(logits_np - logits_np.max(axis=1, keepdims=True))
    assert probs.shape == (8, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.data, exps / exps.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1).data, np.ones(8), rtol=1e-6)


def test_nearest_centroid_classifier_with_broadcasting(rng):
    centroids = Tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    labels = np.repeat([0, 1, 2], 20)
    points = Tensor(centroids.data[labels] + 0.5 * rng.standard_normal((60, 2)))

    # (60, 1, 2) - (1, 3, 2) -> (60, 3, 2): every point against every centroid
    distances = ((points.reshape(60, 1, 2) - centroids.reshape(1, 3, 2)) ** 2).sum(axis=2)
    nearest = distances == distances.min(axis=1, keepdims=True)
    predicted = np.argmax(nearest.data, axis=1)

    np.testing.assert_array_equal(predicted, labels)
    expected = ((points.data[:, None, :] - centroids.data[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(distances.data, expected, rtol=1e-6)


def test_batch_normalisation_statistics(rng):
    batch = Tensor(rng.normal(3.0, 2.0, (256, 5)))
    mean = batch.mean(axis=0, keepdims=True)
    variance = ((batch - mean) ** 2).mean(axis=0, keepdims=True)
    normalised = (batch - mean) / (variance + 1e-5).sqrt()
    np.testing.assert_allclose(normalised.mean(axis=0).data, np.zeros(5), atol=1e-5)
    np.testing.assert_allclose(normalised.data.std(axis=0), np.ones(5), rtol=1e-4)
