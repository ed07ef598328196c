"""Module 14 on real models: the digits CNN (1x8x8 images, 10 classes) of module 09, an
MLP for the same digits, and a CIFAR-sized CNN (3x32x32), profiled with the real layers."""
import itertools
import re

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.profiling import (
    count_parameters,
    model_flops,
    parameter_bytes,
    parameters_by_layer,
    profile_model,
)


def digits_cnn():
    """The CNN that learns the digits to >= 95% in module 09's real-world test."""
    return Sequential(Conv2d(1, 8, 3, padding=1, seed=0), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(8 * 4 * 4, 10, seed=1))


def columns(table):
    """Split an aligned table into cells using the dashed rule under its header."""
    lines = table.splitlines()[1:]                          # after the 'input ...' line
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    body = [line for line in lines[2:] if not line.startswith("whole model")]
    return [[line[a:b].strip() for a, b in spans] for line in body]


def test_profile_of_the_digits_cnn_adds_up():
    model = digits_cnn()
    profile = profile_model(model, (32, 1, 8, 8), warmup=1, repeats=5)
    by_hand_flops = [
        2 * 32 * 8 * 64 * 9 + 32 * 8 * 64,       # conv 1->8, 3x3, same padding: 311,296
        32 * 8 * 64,                              # relu: 16,384
        32 * 8 * 16 * 3,                          # max pool 2x2: 12,288
        0,                                        # flatten -> (32, 128)
        2 * 32 * 128 * 10 + 32 * 10,              # linear 128->10: 82,240
    ]
    assert [row["flops"] for row in profile.rows] == by_hand_flops
    assert profile.total_flops == model_flops(model, (32, 1, 8, 8)) == 422_208
    assert profile.total_params == count_parameters(model).total == 80 + 1290
    assert [row["params"] for row in profile.rows] == [
        c.total for c in parameters_by_layer(model).values()]
    assert [row["output_shape"] for row in profile.rows] == [
        (32, 8, 8, 8), (32, 8, 8, 8), (32, 8, 4, 4), (32, 128), (32, 10)]
    assert parameter_bytes(model) == 4 * 1370


def test_digits_cnn_table_shows_the_same_totals():
    profile = profile_model(digits_cnn(), (32, 1, 8, 8), warmup=0, repeats=2,
                            timer=itertools.count(0, 2e-5).__next__)
    cells = columns(profile.table())
    assert [row[:2] for row in cells] == [["0", "Conv2d"], ["1", "ReLU"], ["2", "MaxPool2d"],
                                          ["3", "Flatten"], ["4", "Linear"], ["total", ""]]
    assert cells[-1][3:6] == ["1,370", "422,208", "100.0 us"]   # 5 layers x 20 us
    assert cells[0][2:6] == ["(32, 8, 8, 8)", "80", "311,296", "20.0 us"]
    assert profile.table().splitlines()[0] == "input (32, 1, 8, 8)"


@pytest.mark.memory_performance
def test_measured_activation_peaks_hold_each_layer_output(rng):
    x = Tensor(rng.random((64, 1, 8, 8)).astype(np.float32))
    profile = profile_model(digits_cnn(), x, warmup=1, repeats=3)
    computing = [row for row in profile.rows if row["type"] != "Flatten"]
    for row in computing:                       # each layer allocates at least its output
        assert row["activation_bytes"] >= row["output_bytes"], row
        assert row["output_bytes"] == 4 * np.prod(row["output_shape"])
    # the convolution's im2col matrix (64, 9, 64) float32 is its largest temporary
    conv = profile.rows[0]
    assert conv["activation_bytes"] >= 64 * 9 * 64 * 4 + conv["output_bytes"]
    # Flatten is a reshape: a view, no new array
    assert profile.rows[3]["activation_bytes"] < 0.05 * profile.rows[3]["output_bytes"]


def test_the_linear_layer_holds_the_parameters_the_conv_does_the_work():
    """The classic CNN profile: weights sit in the dense layer, FLOPs in the convolution."""
    profile = profile_model(digits_cnn(), (32, 1, 8, 8), repeats=2)
    most_params = max(profile.rows, key=lambda r: r["params"])["type"]
    most_flops = max(profile.rows, key=lambda r: r["flops"])["type"]
    assert (most_params, most_flops) == ("Linear", "Conv2d")


def test_digits_mlp_against_the_cnn():
    mlp = Sequential(Flatten(), Linear(64, 32, seed=0), ReLU(), Linear(32, 10, seed=1))
    assert count_parameters(mlp).total == 64 * 32 + 32 + 32 * 10 + 10 == 2410
    assert model_flops(mlp, (1, 1, 8, 8)) == 2 * 64 * 32 + 32 + 32 + 2 * 32 * 10 + 10 == 4810
    # more parameters than the CNN, fewer FLOPs per image
    assert count_parameters(mlp).total > count_parameters(digits_cnn()).total
    assert model_flops(mlp, (1, 1, 8, 8)) < model_flops(digits_cnn(), (1, 1, 8, 8)) == 13_194


def test_cifar_sized_cnn_profile():
    model = Sequential(Conv2d(3, 16, 3, padding=1, seed=0), ReLU(), MaxPool2d(2),
                       Conv2d(16, 32, 3, padding=1, seed=1), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(32 * 8 * 8, 10, seed=2))
    profile = profile_model(model, (8, 3, 32, 32), warmup=1, repeats=2)
    assert profile.total_params == (16 * 27 + 16) + (32 * 144 + 32) + (2048 * 10 + 10) == 25_578
    conv1 = 2 * 8 * 16 * 1024 * 27 + 8 * 16 * 1024
    conv2 = 2 * 8 * 32 * 256 * 144 + 8 * 32 * 256
    rest = 8 * 16 * 1024 + 8 * 16 * 256 * 3 + 8 * 32 * 256 + 8 * 32 * 64 * 3 + \
        2 * 8 * 2048 * 10 + 8 * 10
    assert profile.total_flops == model_flops(model, (8, 3, 32, 32)) == conv1 + conv2 + rest
    assert profile.rows[-1]["output_shape"] == (8, 10)
    assert all(row["latency"] > 0 for row in profile.rows if row["type"] != "Flatten")
