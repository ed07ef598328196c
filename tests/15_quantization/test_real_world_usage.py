"""Module 15 on real data: the digits models of conftest.py (trained once per session,
seeded), quantized to int8 with 256 training images for calibration. Sizes are counted
from the stored arrays and accuracies measured on the 359 held-out images."""
import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import DataLoader, TensorDataset
from tinytorch.quantization import PercentileObserver, model_bytes, quantize_model


def predictions(model, x):
    with no_grad():
        return model(Tensor(x)).data.argmax(axis=1)


@pytest.mark.memory_performance
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_int8_digits_model_is_about_4x_smaller_and_as_accurate(request, digits, accuracy, name):
    model = request.getfixturevalue(f"digits_{name}")
    train_x = digits.train_flat if name == "mlp" else digits.train_images
    test_x = digits.test_flat if name == "mlp" else digits.test_images
    q = quantize_model(model, train_x[:256])
    float_bytes, int8_bytes = model_bytes(model), model_bytes(q)
    float_acc = accuracy(model, test_x, digits.test_labels)
    int8_acc = accuracy(q, test_x, digits.test_labels)
    agree = (predictions(q, test_x) == predictions(model, test_x)).mean()
    print(f"digits {name}: {float_bytes} B float32 -> {int8_bytes} B int8 "
          f"(ratio {float_bytes / int8_bytes:.3f}); held-out accuracy {float_acc:.4f} -> "
          f"{int8_acc:.4f}; same prediction on {agree:.4f} of the images")
    assert float_acc >= 0.95
    assert 3.5 <= float_bytes / int8_bytes <= 4.1
    assert float_acc - int8_acc <= 0.01
    assert agree >= 0.98


def test_calibrating_from_a_shuffled_loader_with_percentiles(digits, digits_cnn, accuracy):
    loader = DataLoader(TensorDataset(digits.train_images, digits.train_labels), batch_size=64,
                        shuffle=True, seed=0)
    batches = [batch for batch, _ in zip(loader, range(4))]        # 4 batches = 256 images
    q = quantize_model(digits_cnn, batches, observer=lambda: PercentileObserver(99.9))
    float_acc = accuracy(digits_cnn, digits.test_images, digits.test_labels)
    int8_acc = accuracy(q, digits.test_images, digits.test_labels)
    print(f"digits cnn, 99.9th-percentile calibration: {float_acc:.4f} -> {int8_acc:.4f}")
    assert float_acc - int8_acc <= 0.01


@pytest.mark.memory_performance
def test_per_tensor_weights_are_smaller_still_and_close_in_accuracy(digits, digits_mlp, accuracy):
    per_channel = quantize_model(digits_mlp, digits.train_flat[:256])
    per_tensor = quantize_model(digits_mlp, digits.train_flat[:256], per_channel=False)
    # one float32 scale per layer instead of one per output unit: 42 - 2 = 40 fewer scales
    assert model_bytes(per_channel) - model_bytes(per_tensor) == 4 * (32 + 10 - 2)
    w = digits_mlp[0].weight.data
    weight_error = {"per channel": np.abs(per_channel[0].dequantized_weight() - w).mean(),
                    "per tensor": np.abs(per_tensor[0].dequantized_weight() - w).mean()}
    acc = {name: accuracy(m, digits.test_flat, digits.test_labels)
           for name, m in (("per channel", per_channel), ("per tensor", per_tensor))}
    print(f"digits mlp: mean |weight error| of layer 0 {weight_error}, accuracy {acc}")
    assert weight_error["per channel"] < weight_error["per tensor"]
    assert abs(acc["per channel"] - acc["per tensor"]) <= 0.01
