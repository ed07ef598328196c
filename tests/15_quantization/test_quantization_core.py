"""Module 15 core: quantization parameters, quantize/dequantize, observers, calibration,
and the integer arithmetic of QuantizedLinear and QuantizedConv2d, checked against hand
computations, independent integer loops and PyTorch's fake-quantization formulas."""
import inspect

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.quantization import (
    QMAX,
    QMIN,
    MinMaxObserver,
    PercentileObserver,
    QuantizedConv2d,
    QuantizedLinear,
    calibrate,
    choose_qparams,
    dequantize,
    fake_quantize,
    model_bytes,
    qparams,
    quantize,
    quantize_model,
)

API = ["QMIN", "QMAX", "MIN_SCALE", "MAX_ACCUMULATED", "qparams", "choose_qparams", "quantize",
       "dequantize", "fake_quantize", "Observer", "MinMaxObserver", "PercentileObserver",
       "calibrate", "QuantizedLinear", "QuantizedConv2d", "quantize_model", "model_bytes"]


def round_trip_bound(x, scale):
    """Half a step, plus the float32 rounding of the dequantized value itself."""
    return scale / 2 + np.spacing(np.abs(x).astype(np.float32))


def random_linear(rng, n_in, n_out):
    layer = Linear(n_in, n_out, seed=0)
    layer.weight.data[...] = rng.standard_normal((n_in, n_out)) * 0.3
    layer.bias.data[...] = rng.standard_normal(n_out) * 0.1
    return layer


# ---- quantization parameters ------------------------------------------------------------

def test_asymmetric_parameters_by_hand():
    scale, zero = qparams(-1.0, 2.0)
    assert scale.dtype == np.float32 and zero.dtype == np.int32
    assert scale == np.float32(3 / 255)              # 256 levels over a width of 3
    assert zero == -43                                # -128 - round(-1 / (3/255)) = -128 + 85


def test_symmetric_parameters_by_hand():
    scale, zero = qparams(-0.5, 2.0, symmetric=True)
    assert scale == np.float32(2 / 127) and zero == 0


def test_the_range_is_widened_to_contain_zero():
    scale, zero = qparams(2.0, 5.0)                   # as if the range were [0, 5]
    assert scale == np.float32(5 / 255) and zero == QMIN
    assert dequantize(quantize([0.0], scale, zero), scale, zero)[0] == 0.0


def test_per_channel_parameters_are_elementwise():
    scale, zero = qparams([-1.0, 0.0, -4.0], [1.0, 2.0, 1.0], symmetric=True)
    assert scale.tolist() == pytest.approx([1 / 127, 2 / 127, 4 / 127], rel=1e-7)
    assert zero.tolist() == [0, 0, 0]


def test_choose_qparams_reads_the_range_from_the_data():
    x = np.array([[-3.0, 0.5], [1.0, 6.0]], np.float32)
    assert choose_qparams(x) == qparams(-3.0, 6.0)
    scale, zero = choose_qparams(x, symmetric=True, axis=1)      # columns: [-3, 1], [0.5, 6]
    assert scale.tolist() == pytest.approx([3 / 127, 6 / 127], rel=1e-7)
    scale, zero = choose_qparams(x, axis=0)                      # rows: [-3, 0.5], [1, 6]
    assert np.array_equal((scale, zero), qparams([-3.0, 0.0], [0.5, 6.0]))


# ---- quantize / dequantize ----------------------------------------------------------------

def test_quantize_by_hand():
    scale, zero = qparams(-1.0, 2.0)                  # 1 / scale = 85
    q = quantize(np.array([-1.0, 0.0, 0.25, 2.0]), scale, zero)
    assert q.dtype == np.int8
    assert q.tolist() == [-128, -43, 21 - 43, 127]    # round(x * 85) + zero point
    back = dequantize(q, scale, zero)
    assert back.dtype == np.float32
    assert back.tolist() == pytest.approx([-1.0, 0.0, 21 / 85, 2.0], rel=1e-6)


def test_symmetric_quantize_by_hand():
    scale, zero = qparams(-0.5, 2.0, symmetric=True)  # 1 / scale = 63.5
    assert quantize([-0.5, 0.0, 1.2, 2.0], scale, zero).tolist() == [-32, 0, 76, 127]


def test_rounding_is_half_to_even_like_pytorch():
    assert quantize([0.5, 1.5, 2.5, -0.5, -1.5], 1.0, 0).tolist() == [0, 2, 2, 0, -2]


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("axis", [None, 1])
def test_round_trip_error_is_at_most_half_a_step(rng, symmetric, axis):
    x = (rng.standard_normal((200, 6)) * [0.01, 0.1, 1, 3, 10, 100]).astype(np.float32)
    scale, zero = choose_qparams(x, symmetric, axis)
    error = np.abs(fake_quantize(x, scale, zero, axis) - x)
    bound = round_trip_bound(x, scale if axis is None else scale[None, :])
    assert (error <= bound).all()
    assert error.max() > 0.3 * bound.max()            # a real rounding, not a trivial case


def test_symmetric_maps_zero_to_zero_exactly(rng):
    x = rng.standard_normal(50).astype(np.float32)
    x[::7] = 0.0
    scale, zero = choose_qparams(x, symmetric=True)
    q = quantize(x, scale, zero)
    assert (q[::7] == 0).all() and (dequantize(q, scale, zero)[::7] == 0.0).all()


def test_asymmetric_maps_zero_to_the_zero_point_and_back_to_zero(rng):
    x = rng.uniform(-0.3, 5.0, 64).astype(np.float32)
    x[:4] = 0.0
    scale, zero = choose_qparams(x)
    q = quantize(x, scale, zero)
    assert (q[:4] == zero).all() and (dequantize(q, scale, zero)[:4] == 0.0).all()


def test_out_of_range_values_saturate():
    scale, zero = qparams(-1.0, 1.0, symmetric=True)
    q = quantize([-50.0, -1.01, 1.01, 50.0, np.inf, -np.inf], scale, zero)
    assert q.tolist() == [-128, -128, 127, 127, 127, -128]
    scale, zero = qparams(0.0, 1.0)
    assert quantize([-1.0, 2.0], scale, zero).tolist() == [QMIN, QMAX]


def test_per_channel_beats_per_tensor_on_channels_of_different_ranges(rng):
    ranges = np.array([0.01, 0.1, 1.0, 10.0])
    w = (rng.standard_normal((64, 4)) * ranges).astype(np.float32)
    per_tensor = fake_quantize(w, *choose_qparams(w, symmetric=True))
    per_channel = fake_quantize(w, *choose_qparams(w, symmetric=True, axis=1), axis=1)
    err_tensor = np.abs(per_tensor - w).max(axis=0)
    err_channel = np.abs(per_channel - w).max(axis=0)
    # the largest channel sets the shared step; the small ones round to almost nothing
    assert (per_tensor[:, 0] == 0).all()
    assert (err_channel <= err_tensor).all()
    assert err_channel[3] == err_tensor[3]            # same grid for the widest channel
    assert err_channel[0] < err_tensor[0] / 100
    mse_tensor, mse_channel = ((per_tensor - w) ** 2).mean(), ((per_channel - w) ** 2).mean()
    assert mse_channel < mse_tensor


def test_per_channel_quantize_applies_each_scale_to_its_own_channel():
    x = np.array([[1.0, 10.0], [-1.0, -10.0]], np.float32)
    scale, zero = np.array([1 / 127, 10 / 127], np.float32), np.zeros(2, np.int32)
    assert quantize(x, scale, zero, axis=1).tolist() == [[127, 127], [-127, -127]]
    assert quantize(x.T, scale, zero, axis=0).tolist() == [[127, -127], [127, -127]]


# ---- PyTorch's formulas -----------------------------------------------------------------------

def test_fake_quantize_per_tensor_matches_pytorch(torch, rng):
    x = (rng.standard_normal((64, 33)) * 3).astype(np.float32)
    for symmetric in (False, True):
        scale, zero = choose_qparams(x, symmetric)
        theirs = torch.fake_quantize_per_tensor_affine(torch.tensor(x), float(scale), int(zero),
                                                       QMIN, QMAX).numpy()
        ours = fake_quantize(x, scale, zero)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_fake_quantize_per_channel_matches_pytorch(torch, rng):
    x = (rng.standard_normal((64, 33)) * np.linspace(0.1, 5, 33)).astype(np.float32)
    for symmetric in (False, True):
        scale, zero = choose_qparams(x, symmetric, axis=1)
        theirs = torch.fake_quantize_per_channel_affine(
            torch.tensor(x), torch.tensor(scale), torch.tensor(zero), 1, QMIN, QMAX).numpy()
        ours = fake_quantize(x, scale, zero, axis=1)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_parameters_match_pytorch_observers(torch, rng):
    obs = torch.ao.quantization
    x = (rng.standard_normal((40, 7)) * 2 + 0.5).astype(np.float32)
    theirs = obs.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine)
    theirs(torch.tensor(x))
    t_scale, t_zero = theirs.calculate_qparams()
    scale, zero = choose_qparams(x)
    assert scale == pytest.approx(t_scale.item(), rel=1e-6) and zero == t_zero.item()
    # symmetric: PyTorch divides by 127 when the grid is restricted to [-127, 127]
    theirs = obs.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric,
                                quant_min=-127, quant_max=127)
    theirs(torch.tensor(x))
    t_scale, t_zero = theirs.calculate_qparams()
    scale, zero = choose_qparams(x, symmetric=True)
    assert scale == pytest.approx(t_scale.item(), rel=1e-6) and zero == t_zero.item() == 0
    theirs = obs.PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8,
                                          qscheme=torch.per_channel_affine)
    theirs(torch.tensor(x))
    t_scale, t_zero = theirs.calculate_qparams()
    scale, zero = choose_qparams(x, axis=1)
    assert scale.shape == tuple(t_scale.shape) == (7,)
    assert np.allclose(scale, t_scale.numpy(), rtol=1e-6, atol=0)
    assert np.array_equal(zero, t_zero.numpy())


# ---- observers and calibration ------------------------------------------------------------

def test_min_max_observer_remembers_the_extremes_of_all_batches():
    observer = MinMaxObserver()
    observer.observe(np.array([0.5, 2.0]))
    observer.observe(Tensor([[-1.5, 0.0]]))
    observer.observe(np.array([1.0]))
    assert observer.range() == (-1.5, 2.0)
    assert observer.qparams() == qparams(-1.5, 2.0)


def test_percentile_observer_ignores_a_rare_outlier(rng):
    x = rng.uniform(-1, 1, 100_000)
    x[0] = 1000.0
    minmax, percentile = MinMaxObserver(), PercentileObserver(99.9)
    for part in np.split(x, 4):
        minmax.observe(part)
        percentile.observe(part)
    assert minmax.range()[1] == 1000.0
    lo, hi = percentile.range()
    assert (lo, hi) == (np.percentile(x, 0.1), np.percentile(x, 99.9))
    assert -1 < lo < -0.99 and 0.99 < hi < 1
    # the common values get a grid 500x finer, at the price of clipping one value
    assert minmax.qparams()[0] > 400 * percentile.qparams()[0]


def test_calibrate_observes_the_input_of_each_quantizable_layer(rng):
    model = Sequential(Linear(4, 6, seed=0), ReLU(), Linear(6, 3, seed=1))
    batches = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3)]
    observers = calibrate(model, batches)
    assert sorted(observers) == [0, 2]
    x = np.concatenate(batches)
    hidden = np.maximum(x @ model[0].weight.data + model[0].bias.data, 0)
    assert observers[0].range() == (x.min(), x.max())
    assert observers[2].range() == pytest.approx((hidden.min(), hidden.max()), rel=1e-6)
    assert observers[2].range()[0] == 0.0                       # after a ReLU


def test_calibrate_uses_eval_mode_and_restores_the_training_flag(rng):
    from tinytorch.core.layers import Dropout
    model = Sequential(Dropout(0.5, seed=0), Linear(3, 2, seed=0))
    x = np.ones((200, 3), np.float32)
    observers = calibrate(model, [x])
    assert observers[1].range() == (1.0, 1.0)                  # no dropout while calibrating
    assert model.training and model[0].training


# ---- integer layers ----------------------------------------------------------------------------

def test_quantized_linear_accumulator_equals_an_independent_integer_computation(rng):
    layer = random_linear(rng, 16, 5)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    q = QuantizedLinear.from_float(layer, choose_qparams(x))
    x_q = q.quantize_input(Tensor(x))
    acc = q.accumulate(x_q)
    assert x_q.dtype == np.int8 and q.weight_q.dtype == np.int8 and acc.dtype == np.int32
    zx, wq = int(q.input_zero_point.item()), q.weight_q.data
    expected = [[sum((int(x_q[n, i]) - zx) * int(wq[i, j]) for i in range(16)) for j in range(5)]
                for n in range(3)]
    assert acc.tolist() == expected


def test_quantized_linear_output_is_the_rescaled_accumulator(rng):
    layer = random_linear(rng, 8, 4)
    x = rng.standard_normal((6, 8)).astype(np.float32)
    q = QuantizedLinear.from_float(layer, choose_qparams(x))
    acc = q.accumulate(q.quantize_input(Tensor(x)))
    # y = s_x * s_w * acc + b, evaluated independently in float64
    expected = (float(q.input_scale.item()) * q.weight_scale.data.astype(np.float64) * acc
                + layer.bias.data)
    out = q(Tensor(x))
    assert out.dtype == np.float32 and out.shape == (6, 4)
    assert np.allclose(out.data, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("per_channel", [True, False])
def test_quantized_linear_is_close_to_the_float_layer_within_the_derived_bound(rng, per_channel):
    layer = random_linear(rng, 32, 10)
    x = rng.standard_normal((20, 32)).astype(np.float32)
    q = QuantizedLinear.from_float(layer, choose_qparams(x), per_channel)
    s_x, s_w = float(q.input_scale.item()), q.weight_scale.data.astype(np.float64)
    w_hat = q.dequantized_weight().astype(np.float64)
    # X^ W^ - X W = (X^ - X) W^ + X (W^ - W), with |X^ - X| <= s_x/2 and |W^ - W| <= s_w/2
    bound = s_x / 2 * np.abs(w_hat).sum(axis=0) + np.abs(x).sum(axis=1, keepdims=True) * s_w / 2
    error = np.abs(q(Tensor(x)).data - layer(Tensor(x)).data)
    assert (error <= bound + 1e-5).all()
    assert error.max() > 0                              # it is an approximation
    assert (np.abs(w_hat - layer.weight.data) <= s_w / 2 + 1e-7).all()


def naive_int_conv(x_q, zero_point, w_q, stride, padding):
    """Integer convolution by loops over every output: (x_q - z) padded with 0, int64."""
    centered = np.pad(x_q.astype(np.int64) - zero_point,
                      ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, w = centered.shape
    out_c, _, kh, kw = w_q.shape
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, out_c, ho, wo), np.int64)
    for b in range(n):
        for o in range(out_c):
            for i in range(ho):
                for j in range(wo):
                    window = centered[b, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[b, o, i, j] = np.sum(window * w_q[o].astype(np.int64))
    return out


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1)])
def test_quantized_conv_accumulator_equals_integer_loops(rng, stride, padding):
    conv = Conv2d(3, 4, 3, stride=stride, padding=padding, seed=0)
    conv.bias.data[...] = rng.standard_normal(4)
    x = rng.uniform(-0.5, 2.0, (2, 3, 6, 7)).astype(np.float32)
    q = QuantizedConv2d.from_float(conv, choose_qparams(x))
    x_q = q.quantize_input(Tensor(x))
    acc = q.accumulate(x_q)
    assert acc.dtype == np.int32
    expected = naive_int_conv(x_q, int(q.input_zero_point.item()), q.weight_q.data, stride, padding)
    assert acc.shape == expected.shape and np.array_equal(acc, expected)


def test_quantized_conv_is_close_to_the_float_conv_within_the_derived_bound(rng):
    conv = Conv2d(2, 5, 3, padding=1, seed=0)
    conv.bias.data[...] = rng.standard_normal(5) * 0.1
    x = rng.uniform(0, 1, (3, 2, 8, 8)).astype(np.float32)
    q = QuantizedConv2d.from_float(conv, choose_qparams(x))
    s_x, s_w = float(q.input_scale.item()), q.weight_scale.data.astype(np.float64)
    # per output: s_x/2 * sum |W^| over the filter + s_w/2 * sum |x| over the window
    ones = Conv2d(2, 1, 3, padding=1, bias=False)
    ones.weight.data[...] = 1.0
    window_l1 = ones(Tensor(np.abs(x))).data.astype(np.float64)             # (N, 1, H, W)
    filter_l1 = np.abs(q.dequantized_weight()).reshape(5, -1).sum(axis=1)
    bound = s_x / 2 * filter_l1[:, None, None] + window_l1 * s_w[:, None, None] / 2
    error = np.abs(q(Tensor(x)).data - conv(Tensor(x)).data)
    assert error.shape == (3, 5, 8, 8)
    assert (error <= bound + 1e-5).all() and error.max() > 0


def test_quantize_model_replaces_linear_and_conv_and_keeps_the_rest(rng):
    model = Sequential(Conv2d(1, 4, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(16, 3, seed=1))
    batches = [rng.uniform(0, 1, (8, 1, 4, 4)).astype(np.float32) for _ in range(2)]
    q = quantize_model(model, batches)
    assert [type(layer) for layer in q] == [QuantizedConv2d, ReLU, MaxPool2d, Flatten,
                                            QuantizedLinear]
    assert q[1] is model[1] and q[3] is model[3]                 # weightless layers reused
    assert isinstance(model[0], Conv2d) and isinstance(model[4], Linear)   # original kept
    observers = calibrate(model, batches)
    assert (q[4].input_scale.item(), q[4].input_zero_point.item()) == tuple(
        v.item() for v in observers[4].qparams())
    x = Tensor(batches[0])
    assert np.abs(q(x).data - model(x).data).max() < 0.05


# ---- memory -------------------------------------------------------------------------------------

@pytest.mark.memory_performance
def test_model_bytes_counts_int8_weights_and_float32_extras_exactly():
    layer = Linear(64, 32, seed=0)
    assert model_bytes(layer) == (64 * 32 + 32) * 4                              # 8,320
    q = QuantizedLinear.from_float(layer, (0.01, 0))
    # int8 weights + float32 scale per output + float32 bias + input scale and zero point
    assert model_bytes(q) == 64 * 32 + 32 * 4 + 32 * 4 + 4 + 4                   # 2,312
    q = QuantizedLinear.from_float(layer, (0.01, 0), per_channel=False)
    assert model_bytes(q) == 64 * 32 + 4 + 32 * 4 + 4 + 4                        # 2,188
    conv = QuantizedConv2d.from_float(Conv2d(1, 8, 3, seed=0), (0.01, 0))
    assert model_bytes(conv) == 8 * 9 + 8 * 4 + 8 * 4 + 4 + 4                    # 144


@pytest.mark.memory_performance
def test_stored_weights_really_are_one_byte_each():
    q = QuantizedConv2d.from_float(Conv2d(3, 16, 3, seed=0), (0.02, -128))
    assert q.weight_q.dtype == np.int8 and q.weight_q.data.nbytes == 16 * 3 * 9
    assert q.weight_scale.dtype == np.float32 and q.weight_scale.shape == (16,)
    assert q.input_zero_point.dtype == np.int32


# ---- API ----------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.quantization", API)
    assert issubclass(found["QuantizedLinear"], Module)
    assert issubclass(found["QuantizedConv2d"], Module)
    assert issubclass(found["PercentileObserver"], found["Observer"])
    assert (found["QMIN"], found["QMAX"]) == (-128, 127)
    assert found["MAX_ACCUMULATED"] == (2 ** 31 - 1) // (255 * 127) == 66_311
    assert found["MIN_SCALE"] == np.finfo(np.float32).eps


@pytest.mark.api_consistency
def test_signatures():
    assert list(inspect.signature(quantize).parameters) == ["x", "scale", "zero_point", "axis"]
    assert list(inspect.signature(dequantize).parameters) == ["q", "scale", "zero_point", "axis"]
    params = inspect.signature(quantize_model).parameters
    assert list(params) == ["model", "calibration_data", "observer", "per_channel"]
    assert params["observer"].default is MinMaxObserver and params["per_channel"].default is True
    assert list(inspect.signature(calibrate).parameters) == ["model", "sample_batches", "observer"]
    for layer in (QuantizedLinear, QuantizedConv2d):
        assert list(inspect.signature(layer.from_float).parameters) == [
            "linear" if layer is QuantizedLinear else "conv", "input_qparams", "per_channel"]


@pytest.mark.api_consistency
def test_quantized_layers_are_inference_modules_with_no_trainable_parameters():
    q = QuantizedLinear.from_float(Linear(4, 3, seed=0), (0.1, 0))
    assert q.parameters() == [] and isinstance(q(Tensor(np.ones((2, 4)))), Tensor)
    assert repr(q) == "QuantizedLinear(in_features=4, out_features=3, per_channel=True)"
    conv = QuantizedConv2d.from_float(Conv2d(2, 3, 3, padding=1, seed=0), (0.1, 0), False)
    assert conv.parameters() == []
    assert repr(conv) == ("QuantizedConv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), "
                          "padding=(1, 1), per_channel=False)")


# ---- shapes ------------------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4)])
def test_quantize_keeps_the_shape(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    q = quantize(x, 0.05, 3)
    assert q.shape == shape and q.dtype == np.int8
    assert dequantize(q, 0.05, 3).shape == shape


@pytest.mark.shape
@pytest.mark.parametrize("in_c, out_c, kernel, stride, padding, size", [
    (1, 8, 3, 1, 1, (8, 8)), (3, 4, 3, 2, 1, (7, 9)), (2, 5, (3, 2), (1, 2), (0, 1), (6, 6)),
    (4, 2, 1, 1, 0, (3, 3))])
def test_quantized_conv_output_shape_equals_the_float_conv(rng, in_c, out_c, kernel, stride,
                                                            padding, size):
    conv = Conv2d(in_c, out_c, kernel, stride=stride, padding=padding, seed=0)
    x = Tensor(rng.uniform(0, 1, (2, in_c, *size)).astype(np.float32))
    q = QuantizedConv2d.from_float(conv, choose_qparams(x))
    assert q(x).shape == conv(x).shape
    assert q.weight_q.shape == conv.weight.shape and q.weight_scale.shape == (out_c,)


@pytest.mark.shape
def test_quantized_linear_shapes(rng):
    layer = Linear(6, 4, seed=0)
    q = QuantizedLinear.from_float(layer, (0.05, 0))
    assert q.weight_q.shape == (6, 4) and q.weight_scale.shape == (4,) and q.bias.shape == (4,)
    assert QuantizedLinear.from_float(layer, (0.05, 0), per_channel=False).weight_scale.shape == ()
    for batch in [(1,), (7,), (2, 3)]:
        assert q(Tensor(np.zeros((*batch, 6)))).shape == (*batch, 4)
    assert QuantizedLinear.from_float(Linear(6, 4, bias=False), (0.05, 0)).bias is None
