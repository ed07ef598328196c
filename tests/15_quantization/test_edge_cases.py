"""Module 15 at the edges: degenerate ranges, NaN and inf, empty inputs, wrong shapes,
and arguments that make no sense, each with a clear error."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d
from tinytorch.core.tensor import Tensor
from tinytorch.quantization import (
    MIN_SCALE,
    MinMaxObserver,
    PercentileObserver,
    QuantizedConv2d,
    QuantizedLinear,
    calibrate,
    choose_qparams,
    dequantize,
    qparams,
    quantize,
)


@pytest.mark.parametrize("symmetric", [False, True])
def test_an_all_zero_tensor_gets_a_tiny_scale_not_a_division_by_zero(symmetric):
    x = np.zeros((3, 4), np.float32)
    scale, zero = choose_qparams(x, symmetric)            # would be 0 / 0 without the floor
    assert scale == np.float32(MIN_SCALE) and np.isfinite(scale)
    q = quantize(x, scale, zero)
    assert np.array_equal(dequantize(q, scale, zero), x)


def test_constant_tensors_round_trip_exactly_enough():
    for value, symmetric in [(3.0, False), (-2.0, True), (0.7, True)]:
        x = np.full(10, value, np.float32)
        scale, zero = choose_qparams(x, symmetric)
        q = quantize(x, scale, zero)
        assert len(set(q.tolist())) == 1 and abs(q[0]) >= 127          # the end of the grid
        assert np.abs(dequantize(q, scale, zero) - x).max() <= scale / 2


def test_a_dead_output_channel_gets_zero_weights_and_outputs_its_bias():
    layer = Linear(4, 3, seed=0)
    layer.weight.data[:, 1] = 0.0
    layer.bias.data[...] = [0.5, -0.25, 1.0]
    q = QuantizedLinear.from_float(layer, (0.05, 0))
    assert q.weight_scale.data[1] == np.float32(MIN_SCALE)
    assert (q.weight_q.data[:, 1] == 0).all()
    assert (q(Tensor(np.ones((2, 4)))).data[:, 1] == -0.25).all()


def test_nan_is_a_clear_error_everywhere():
    x = np.array([1.0, np.nan], np.float32)
    with pytest.raises(ValueError, match="NaN"):
        quantize(x, 0.1, 0)
    with pytest.raises(ValueError, match="NaN"):
        choose_qparams(x)
    with pytest.raises(ValueError, match="NaN"):
        MinMaxObserver().observe(x)
    q = QuantizedLinear.from_float(Linear(2, 1, seed=0), (0.1, 0))
    with pytest.raises(ValueError, match="NaN"):
        q(Tensor([[1.0, np.nan]]))


def test_an_infinite_calibration_value_is_a_clear_error():
    for observer in (MinMaxObserver(), PercentileObserver()):
        with pytest.raises(ValueError, match="infinite"):
            observer.observe(np.array([0.0, np.inf]))
    with pytest.raises(ValueError, match="finite"):
        qparams(-np.inf, 1.0)


def test_an_observer_that_saw_nothing_says_so():
    for observer in (MinMaxObserver(), PercentileObserver()):
        observer.observe(np.zeros((0, 3)))                   # an empty batch is no data
        with pytest.raises(RuntimeError, match="observed no values"):
            observer.range()


def test_calibration_needs_a_sequential_batches_and_something_to_quantize(rng):
    model = Sequential(Linear(2, 2, seed=0))
    with pytest.raises(ValueError, match="no sample batches"):
        calibrate(model, [])
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        calibrate(Sequential(ReLU()), [np.ones((1, 2))])
    with pytest.raises(TypeError, match="Sequential"):
        calibrate(Linear(2, 2), [np.ones((1, 2))])


def test_an_empty_batch_gives_an_empty_output():
    q = QuantizedLinear.from_float(Linear(3, 2, seed=0), (0.1, 0))
    assert q(Tensor(np.zeros((0, 3)))).shape == (0, 2)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="lo must not exceed hi"):
        qparams(2.0, 1.0)
    with pytest.raises(ValueError, match="3 scales"):
        quantize(np.ones((2, 4)), np.ones(3), np.zeros(3), axis=1)
    with pytest.raises(ValueError, match="axis"):
        quantize(np.ones((2, 4)), np.ones(4), np.zeros(4))
    with pytest.raises(TypeError, match="numbers"):
        quantize(np.array(["a"]), 1.0, 0)
    with pytest.raises(ValueError, match="empty"):
        choose_qparams(np.zeros(0))
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(30)
    with pytest.raises(ValueError, match="positive"):
        QuantizedLinear.from_float(Linear(2, 2, seed=0), (0.0, 0))
    with pytest.raises(ValueError, match="per tensor"):
        QuantizedLinear.from_float(Linear(2, 2, seed=0), (np.ones(2), np.zeros(2)))


def test_wrong_inputs_to_quantized_layers():
    q = QuantizedLinear.from_float(Linear(3, 2, seed=0), (0.1, 0))
    with pytest.raises(ValueError, match="last dimension is 3"):
        q(Tensor(np.ones((2, 4))))
    with pytest.raises(TypeError, match="Tensor"):
        q(np.ones((2, 3)))
    conv = QuantizedConv2d.from_float(Conv2d(2, 1, 3, seed=0), (0.1, 0))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        conv(Tensor(np.ones((1, 3, 5, 5))))
    with pytest.raises(ValueError, match="does not fit"):
        conv(Tensor(np.ones((1, 2, 2, 2))))


def test_a_layer_too_wide_for_the_int32_accumulator_is_refused():
    QuantizedLinear.from_float(Linear(66_311, 1, seed=0), (0.1, 0))     # the largest that fits
    with pytest.raises(ValueError, match="overflow the int32 accumulator"):
        QuantizedLinear.from_float(Linear(66_312, 1, seed=0), (0.1, 0))


def test_an_observer_must_define_observe_and_range():
    from tinytorch.quantization import Observer
    with pytest.raises(TypeError, match="abstract"):
        Observer()
