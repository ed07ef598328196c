"""Progressive integration: attention loads only what it builds on (01 tensor,
02 activations, 03 layers) and works with the earlier modules' pieces as they were."""
import numpy as np

import tinytorch.core.autograd  # noqa: F401  (installs backward)
from tinytorch.core.activations import Softmax
from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import MultiHeadAttention, attention_weights


def test_importing_attention_loads_exactly_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.models.attention") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.models.attention"}


def test_attention_weights_are_softmax_of_scaled_scores_from_module_01_ops(rng):
    q, k = (Tensor(a) for a in rng.standard_normal((2, 2, 5, 4)))
    scores = (q @ k.transpose(-2, -1)) / np.sqrt(4)          # module 01 matmul, transpose
    np.testing.assert_allclose(attention_weights(q, k).data, Softmax()(scores).data, rtol=1e-6)


def test_projections_are_module_03_linear_layers(rng):
    mha = MultiHeadAttention(6, 3, seed=0)
    x = Tensor(rng.standard_normal((1, 2, 6)))
    np.testing.assert_allclose(mha.query(x).data, x.data @ mha.query.weight.data +
                               mha.query.bias.data, rtol=1e-6)
    assert isinstance(mha.out, Linear) and mha.out.weight.shape == (6, 6)


def test_backward_from_module_05_reaches_the_input_through_attention(rng):
    mha = MultiHeadAttention(4, 2, seed=0)
    x = Tensor(rng.standard_normal((1, 3, 4)), requires_grad=True)
    mha(x).sum().backward()
    assert x.grad.shape == (1, 3, 4) and np.abs(x.grad.data).max() > 0
