"""What the layers are for: building neural networks. An MLP on fixed data matches
a numpy re-implementation with the same weights, a hand-wired network computes XOR,
and inverted dropout's training-time average equals the evaluation output."""
import numpy as np

from tinytorch.core.activations import ReLU, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.tensor import Tensor


def test_mlp_classifier_matches_numpy_reimplementation():
    rng = np.random.default_rng(2024)
    model = Sequential(Linear(4, 16, init="kaiming", seed=0), ReLU(),
                       Linear(16, 8, seed=1), Tanh(),
                       Linear(8, 3, seed=2), Softmax())
    for layer in (model[0], model[2], model[4]):
        layer.bias.data[...] = rng.normal(scale=0.1, size=layer.out_features)
    x = rng.normal(size=(12, 4)).astype(np.float32)

    w1, b1 = model[0].weight.data, model[0].bias.data
    w2, b2 = model[2].weight.data, model[2].bias.data
    w3, b3 = model[4].weight.data, model[4].bias.data
    h = np.tanh(np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    logits = (h @ w3 + b3).astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)

    out = model(Tensor(x)).data
    assert out.shape == (12, 3)
    np.testing.assert_allclose(out, probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out.argmax(axis=1), probs.argmax(axis=1))


def test_hand_wired_network_computes_xor():
    hidden = Linear(2, 2, seed=0)
    hidden.weight.data[...] = [[1, 1], [1, 1]]
    hidden.bias.data[...] = [0, -1]                   # units: a + b, and a + b - 1
    output = Linear(2, 1, seed=0)
    output.weight.data[...] = [[1], [-2]]             # (a + b) - 2 relu(a + b - 1)
    xor = Sequential(hidden, ReLU(), output)
    inputs = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(xor(inputs).data, [[0], [1], [1], [0]])


def test_dropout_average_in_training_equals_eval_output():
    """Inverted dropout: averaged over many masks, training output = eval output."""
    rng = np.random.default_rng(5)
    model = Sequential(Linear(3, 64, seed=0), ReLU(), Dropout(0.5, seed=1), Linear(64, 1, seed=2))
    x = rng.normal(size=(1, 3)).astype(np.float32)
    many = Tensor(np.repeat(x, 100_000, axis=0))       # 100,000 masks in one pass
    train_mean = model(many).data.mean()
    eval_out = model.eval()(Tensor(x)).data.item()
    train_std = model.train()(many).data.std()
    # The mean of 100,000 draws is within 5 standard errors of its expectation.
    assert abs(train_mean - eval_out) < 5 * train_std / np.sqrt(100_000)
    assert train_std > 0.01                           # the masks really differ
