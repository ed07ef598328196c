"""Module 15 never overflows: the int32 accumulator at its worst case, huge and tiny
inputs, and a float rescale that keeps float32 accuracy."""
import numpy as np

from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Tensor
from tinytorch.quantization import (
    MAX_ACCUMULATED,
    QMAX,
    QMIN,
    QuantizedLinear,
    choose_qparams,
    dequantize,
    fake_quantize,
    quantize,
)


def test_the_worst_case_accumulator_fits_in_int32_exactly():
    # every input at 127 with zero point -128 (centred 255), every weight at +127
    n = MAX_ACCUMULATED
    layer = Linear(n, 1, bias=False, seed=0)
    layer.weight.data[...] = 1.0
    q = QuantizedLinear.from_float(layer, (1.0, QMIN))
    assert (q.weight_q.data == QMAX).all()
    acc = q.accumulate(np.full((1, n), QMAX, np.int8))
    assert acc.dtype == np.int32 and acc.item() == 255 * 127 * n     # no wrap-around
    assert 255 * 127 * n <= 2 ** 31 - 1 < 255 * 127 * (n + 1)


def test_huge_values_saturate_without_overflow_warnings():
    # pytest turns numpy overflow warnings into errors: x / scale must not overflow
    x = np.array([3e38, -3e38, 1e30, 0.5], np.float32)
    assert quantize(x, np.float32(1e-7), 0).tolist() == [QMAX, QMIN, QMAX, 127]


def test_tiny_ranges_keep_their_values_to_half_a_step():
    x = np.array([1e-30, -2e-30, 0.0], np.float32)
    scale, zero = choose_qparams(x, symmetric=True)
    assert scale > 0 and np.abs(fake_quantize(x, scale, zero) - x).max() <= scale / 2


def test_small_scales_and_large_ranges_dequantize_accurately(rng):
    for magnitude in (1e-6, 1.0, 1e6):
        x = (rng.standard_normal(1000) * magnitude).astype(np.float32)
        scale, zero = choose_qparams(x)
        back = dequantize(quantize(x, scale, zero), scale, zero)
        assert back.dtype == np.float32 and np.isfinite(back).all()
        assert np.abs(back - x).max() <= scale / 2 * (1 + 1e-6)


def test_the_rescale_of_a_large_accumulator_keeps_float32_accuracy(rng):
    # accumulators above 2^24 are not exact in float32: the rescale runs in
    # float64, so the output is the correctly rounded float32 of s_x * s_w * acc + b
    n = 8000
    layer = Linear(n, 2, seed=0)
    layer.weight.data[...] = np.abs(rng.standard_normal((n, 2))).astype(np.float32)
    layer.bias.data[...] = [1.0, -1.0]
    q = QuantizedLinear.from_float(layer, (0.01, QMIN))
    x = Tensor(np.full((1, n), 1.27, np.float32))                  # x_q = 127, centred 255
    acc = q.accumulate(q.quantize_input(x))
    assert acc.max() > 2 ** 24
    expected = np.float64(q.input_scale.item()) * q.weight_scale.data.astype(np.float64) * acc
    expected = (expected + layer.bias.data).astype(np.float32)
    assert np.array_equal(q(x).data, expected)


def test_quantized_outputs_stay_finite_for_extreme_inputs(rng):
    layer = Linear(16, 4, seed=0)
    q = QuantizedLinear.from_float(layer, choose_qparams(rng.standard_normal((8, 16))))
    out = q(Tensor(np.full((2, 16), 1e30, np.float32) * [[1], [-1]]))
    assert np.isfinite(out.data).all()
    saturated = q(Tensor(np.full((1, 16), 1e30, np.float32))).data
    at_the_edge = q(Tensor(np.full((1, 16), 1e3, np.float32))).data   # also beyond the range
    assert np.array_equal(saturated, at_the_edge)
