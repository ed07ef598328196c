"""Edge cases: invalid sizes and masks raise clear errors; T = 1, empty rows, empty
batches and fully masked queries behave as documented."""
import numpy as np
import pytest

import tinytorch.core.autograd  # noqa: F401  (installs backward)
from tinytorch.core.tensor import Tensor
from tinytorch.models.attention import (
    MultiHeadAttention,
    attention_weights,
    length_mask,
    padding_mask,
    scaled_dot_product_attention,
)


def test_embed_dim_not_divisible_by_num_heads_is_a_clear_error():
    with pytest.raises(ValueError, match="embed_dim 10 is not divisible by num_heads 4"):
        MultiHeadAttention(10, 4)


@pytest.mark.parametrize("embed_dim,num_heads", [(0, 1), (8, 0), (8.0, 2), (8, -2), (8, "2")])
def test_non_positive_or_non_integer_sizes_are_rejected(embed_dim, num_heads):
    with pytest.raises(ValueError, match="must be a positive integer"):
        MultiHeadAttention(embed_dim, num_heads)


def test_sequence_of_length_one_returns_the_value_projection(rng):
    mha = MultiHeadAttention(8, 2, seed=0)
    x = Tensor(rng.standard_normal((3, 1, 8)))
    y, weights = mha(x, is_causal=True, return_weights=True)
    assert y.shape == (3, 1, 8) and np.all(weights.data == 1.0)
    np.testing.assert_allclose(y.data, mha.out(mha.value(x)).data, rtol=1e-6)


def test_empty_batch_gives_an_empty_output(rng):
    mha = MultiHeadAttention(8, 2, seed=0)
    assert mha(Tensor(np.zeros((0, 5, 8))), is_causal=True).shape == (0, 5, 8)


@pytest.mark.parametrize("shape", [(4, 4), (6,), (2, 3, 5), (3, 5, 5)])
def test_mask_that_does_not_fit_the_scores_is_a_clear_error(rng, shape):
    q, k, v = (Tensor(a) for a in rng.standard_normal((3, 2, 5, 3)))
    with pytest.raises(ValueError, match=r"mask of shape .* does not broadcast to the scores"):
        scaled_dot_product_attention(q, k, v, mask=np.ones(shape, dtype=bool))


def test_mha_mask_with_the_wrong_length_is_a_clear_error(rng):
    mha = MultiHeadAttention(8, 2, seed=0)
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(Tensor(rng.standard_normal((2, 5, 8))), mask=length_mask([3, 4], 6))


def test_non_boolean_mask_is_rejected(rng):
    q = Tensor(rng.standard_normal((3, 2)))
    with pytest.raises(TypeError, match="mask must be boolean"):
        attention_weights(q, q, mask=np.ones((3, 3)))           # 0/1 floats are ambiguous


def test_query_and_key_sizes_must_agree(rng):
    q, k = Tensor(rng.standard_normal((2, 4, 3))), Tensor(rng.standard_normal((2, 4, 5)))
    with pytest.raises(ValueError, match="queries and keys need the same size d"):
        scaled_dot_product_attention(q, k, k)


def test_keys_and_values_must_have_the_same_length(rng):
    q, v = Tensor(rng.standard_normal((4, 3))), Tensor(rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="keys and values need the same length"):
        scaled_dot_product_attention(q, q, v)


def test_non_tensor_and_one_dimensional_inputs_are_rejected(rng):
    q = Tensor(rng.standard_normal((4, 3)))
    with pytest.raises(TypeError, match="k must be a Tensor"):
        scaled_dot_product_attention(q, np.ones((4, 3)), q)
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., T, d\)"):
        scaled_dot_product_attention(Tensor([1.0, 2.0]), q, q)


def test_mha_rejects_inputs_of_the_wrong_width_or_rank(rng):
    mha = MultiHeadAttention(8, 2, seed=0)
    with pytest.raises(ValueError, match=r"expects x of shape \(B, T, 8\), got \(2, 5, 6\)"):
        mha(Tensor(rng.standard_normal((2, 5, 6))))
    with pytest.raises(ValueError, match="expects x of shape"):
        mha(Tensor(rng.standard_normal((5, 8))))
    with pytest.raises(ValueError, match="expects context of shape"):
        mha(Tensor(rng.standard_normal((2, 5, 8))), context=Tensor(np.zeros((2, 5, 4))))
    with pytest.raises(TypeError, match="expects Tensors"):
        mha(np.zeros((2, 5, 8)))


def test_fully_masked_query_outputs_zero_and_passes_no_gradient(rng):
    q, k, v = (Tensor(a, dtype=np.float64, requires_grad=True)
               for a in rng.standard_normal((3, 3, 2)))
    nothing = np.zeros((3, 3), dtype=bool)
    out = scaled_dot_product_attention(q, k, v, mask=nothing)
    assert np.all(out.data == 0.0) and not np.isnan(out.data).any()
    out.sum().backward()
    assert all(np.all(t.grad.data == 0.0) for t in (q, k, v))


def test_length_mask_validates_its_lengths():
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 4\]"):
        length_mask([2, 5], 4)
    with pytest.raises(TypeError, match="lengths must be a 1-D array of integers"):
        length_mask([1.5, 2.0], 4)
    assert length_mask([0, 4], 4).data.sum() == 4                # length 0: a fully masked row


def test_padding_mask_needs_a_batch_of_sequences():
    with pytest.raises(ValueError, match=r"ids must have shape \(B, T\)"):
        padding_mask(np.array([1, 2, 0]), pad_id=0)
