"""Integration: attention inside models built from modules 01-05 and 11: token lookup
(Tensor indexing, module 11's Embedding and positional encodings), Linear/Sequential/
GELU, the losses, autograd, no_grad, train/eval with dropout."""
import numpy as np

from tinytorch.core.activations import GELU, Softmax
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import MultiHeadAttention, causal_mask, masked_softmax


class TinyLM(Module):
    """Embedding lookup (module 01 indexing) -> causal attention -> Linear to the vocab."""

    def __init__(self, vocab=11, dim=8, heads=2, seed=0):
        rng = np.random.default_rng(seed)
        self.embedding = Tensor(rng.normal(0, 0.3, (vocab, dim)), requires_grad=True)
        self.attention = MultiHeadAttention(dim, heads, seed=rng)
        self.head = Linear(dim, vocab, seed=rng)

    def forward(self, ids):
        x = self.embedding[ids]                        # (B, T, C)
        x = x + self.attention(x, is_causal=True)      # residual connection
        return self.head(x)                            # (B, T, vocab)


def test_tiny_language_model_trains_with_sgd_and_cross_entropy(rng):
    model = TinyLM(seed=0)
    ids = rng.integers(0, 11, size=(4, 6))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    loss_fn, losses = CrossEntropyLoss(), []
    for _ in range(30):
        logits = model(inputs)
        loss = loss_fn(logits.reshape(-1, 11), targets.reshape(-1))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert abs(losses[0] - np.log(11)) < 0.3
    assert losses[-1] < 0.6 * losses[0]                   # 20 target tokens: it memorises


def test_embedding_rows_of_unused_tokens_get_zero_gradient(rng):
    model = TinyLM(seed=1)
    ids = np.array([[1, 2, 3], [3, 2, 1]])
    model(ids).sum().backward()
    grad = model.embedding.grad.data
    assert np.all(grad[[0, 4, 5, 6, 7, 8, 9, 10]] == 0.0)
    assert np.all(np.abs(grad[[1, 2, 3]]).max(axis=1) > 0)


def test_mha_chains_in_sequential_with_gelu_and_linear(rng):
    net = Sequential(MultiHeadAttention(8, 2, seed=0), GELU(), Linear(8, 3, seed=1))
    x = Tensor(rng.standard_normal((2, 5, 8)))
    y = net(x)
    assert y.shape == (2, 5, 3)
    assert len(net.parameters()) == 8 + 2
    MSELoss()(y, np.zeros((2, 5, 3), dtype=np.float32)).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_gradcheck_through_embedding_attention_and_cross_entropy(rng, float64):
    model = float64(TinyLM(vocab=5, dim=4, heads=2, seed=2))
    ids = np.array([[0, 3, 1, 4]])

    def loss(*_):
        return CrossEntropyLoss()(model(ids[:, :-1]).reshape(-1, 5), ids[0, 1:])
    assert gradcheck(loss, [model.embedding, model.attention.query.weight]) < 1e-7


def test_masked_softmax_agrees_with_module_02_softmax(rng):
    scores = Tensor(rng.standard_normal((3, 4, 4)))
    np.testing.assert_allclose(masked_softmax(scores).data, Softmax()(scores).data, rtol=1e-6)
    everything = np.ones((4, 4), dtype=bool)
    np.testing.assert_allclose(masked_softmax(scores, everything).data,
                               Softmax()(scores).data, rtol=1e-6)
    # a causal mask makes the first row one-hot on key 0
    causal = masked_softmax(scores, causal_mask(4).data)
    assert np.all(causal.data[:, 0] == [1.0, 0.0, 0.0, 0.0])


def test_dropout_acts_only_in_training_mode(rng):
    plain = MultiHeadAttention(8, 2, dropout=0.0, seed=0)
    dropping = MultiHeadAttention(8, 2, dropout=0.5, seed=0)    # same weights, same seed
    x = Tensor(rng.standard_normal((2, 4, 8)))
    assert not np.allclose(dropping(x).data, plain(x).data)     # training: values dropped
    dropping.eval()
    np.testing.assert_array_equal(dropping(x).data, plain(x).data)
    dropping.train()
    assert dropping.attn_dropout.training and dropping.resid_dropout.training


def test_inference_under_no_grad_matches_training_forward(rng):
    mha = MultiHeadAttention(8, 4, seed=0)
    x = Tensor(rng.standard_normal((2, 3, 8)))
    recorded = mha(x, is_causal=True)
    with no_grad():
        plain = mha(x, is_causal=True)
    np.testing.assert_array_equal(plain.data, recorded.data)
    assert recorded.requires_grad and not plain.requires_grad
