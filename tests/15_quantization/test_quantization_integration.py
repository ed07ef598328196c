"""Module 15 with the modules it builds on: DataLoader batches (08) for calibration,
CNN layers (09), and the counts of module 14's profiler on quantized models."""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import DataLoader, TensorDataset
from tinytorch.profiling import count_parameters, parameter_bytes, parameter_bytes_by_dtype
from tinytorch.quantization import (
    QuantizedConv2d,
    QuantizedLinear,
    calibrate,
    model_bytes,
    quantize_model,
)


def small_cnn():
    return Sequential(Conv2d(1, 4, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                      Conv2d(4, 6, 3, stride=1, padding=1, seed=1), ReLU(), AvgPool2d(2),
                      Flatten(), Linear(6 * 2 * 2, 5, seed=2))


def test_calibrating_from_a_dataloader_equals_calibrating_from_arrays(rng):
    model = small_cnn()
    images = rng.uniform(0, 1, (40, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 5, 40)
    loader = DataLoader(TensorDataset(images, labels), batch_size=16)   # (images, labels) pairs
    from_loader = calibrate(model, loader)
    from_arrays = calibrate(model, [images[:16], images[16:32], images[32:]])
    assert sorted(from_loader) == sorted(from_arrays) == [0, 3, 7]
    for i in from_loader:
        assert from_loader[i].range() == from_arrays[i].range()


def test_a_quantized_two_conv_cnn_tracks_the_float_cnn(rng):
    model = small_cnn()
    images = rng.uniform(0, 1, (64, 1, 8, 8)).astype(np.float32)
    q = quantize_model(model, DataLoader(TensorDataset(images), batch_size=32))
    assert [type(layer).__name__ for layer in q] == [
        "QuantizedConv2d", "ReLU", "MaxPool2d", "QuantizedConv2d", "ReLU", "AvgPool2d",
        "Flatten", "QuantizedLinear"]
    x = Tensor(images[:10])
    float_out, int8_out = model(x).data, q(x).data
    assert int8_out.shape == float_out.shape == (10, 5)
    relative = np.abs(int8_out - float_out).max() / np.abs(float_out).max()
    assert relative < 0.02
    assert (int8_out.argmax(axis=1) == float_out.argmax(axis=1)).mean() >= 0.9


@pytest.mark.memory_performance
def test_model_bytes_agrees_with_the_profiler_of_module_14(rng):
    model = small_cnn()
    n_params = count_parameters(model).total
    assert n_params == (4 * 9 + 4) + (6 * 4 * 9 + 6) + (24 * 5 + 5)
    assert model_bytes(model) == parameter_bytes(model) == 4 * n_params
    q = quantize_model(model, rng.uniform(0, 1, (16, 1, 8, 8)).astype(np.float32))
    by_dtype = parameter_bytes_by_dtype(q)
    n_weights = 4 * 9 + 6 * 4 * 9 + 24 * 5
    assert by_dtype["int8"] == n_weights                       # one byte per weight
    assert by_dtype["int32"] == 3 * 4                          # one input zero point per layer
    # float32: a scale and a bias per output channel, one input scale per layer
    assert by_dtype["float32"] == 4 * (2 * (4 + 6 + 5) + 3)
    assert model_bytes(q) == sum(by_dtype.values())
    counts = count_parameters(q)
    assert counts.trainable == 0 and counts.total == n_weights + 2 * (4 + 6 + 5) + 2 * 3


def test_a_quantized_layer_reads_integer_pixels(rng):
    # uint8 images, as a camera delivers them: with scale 1 and zero point -128 each grey
    # level is its own integer, so only the weights are rounded
    conv = Conv2d(1, 2, 3, seed=0)
    pixels = rng.integers(0, 256, (2, 1, 5, 5)).astype(np.uint8)
    q = QuantizedConv2d.from_float(conv, (1.0, -128))
    x_q = q.quantize_input(Tensor(pixels))
    assert np.array_equal(x_q.astype(np.int32) + 128, pixels)
    expected = conv(Tensor(pixels.astype(np.float32))).data
    bound = 9 * 255 * q.weight_scale.data[:, None, None] / 2      # window L1 * s_w / 2
    assert (np.abs(q(Tensor(pixels)).data - expected) <= bound).all()


def test_a_quantized_linear_handles_a_batch_of_sequences(rng):
    layer = Linear(8, 3, seed=0)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)          # (B, T, features)
    q = QuantizedLinear.from_float(layer, calibrate(Sequential(layer), x)[0].qparams())
    out = q(Tensor(x))
    assert out.shape == (2, 5, 3)
    assert np.allclose(out.data, layer(Tensor(x)).data, atol=0.05)
