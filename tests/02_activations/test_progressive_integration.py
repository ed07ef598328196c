"""Module 02 builds on module 01 only: it loads Tensor and nothing else, leaves
Tensor unchanged, and everything module 01 does still works next to it."""
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Softmax
from tinytorch.core.tensor import Tensor

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_API = ["Activation", "ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax",
              "stable_sigmoid"]


def test_importing_activations_loads_exactly_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.core.activations") == {"tinytorch.core.tensor",
                                                            "tinytorch.core.activations"}


def test_importing_activations_does_not_patch_tensor_or_install_autograd():
    code = ("from tinytorch.core.tensor import Tensor, autograd_hook\n"
            "before = {name: getattr(Tensor, name) for name in dir(Tensor)}\n"
            "import tinytorch.core.activations\n"
            "after = {name: getattr(Tensor, name) for name in dir(Tensor)}\n"
            "print(before == after, autograd_hook.installed)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "True False"


def test_activations_use_the_same_tensor_class():
    from tinytorch.core import activations
    assert activations.Tensor is Tensor
    assert type(GELU()(Tensor([1.0]))) is Tensor


def test_tensor_features_still_work_next_to_activations(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    t = Tensor(x)
    hidden = ReLU()(t)
    np.testing.assert_allclose((hidden @ Tensor(x.T)).data, np.maximum(x, 0) @ x.T, rtol=1e-5)
    np.testing.assert_array_equal(hidden.sum(axis=0).data, np.maximum(x, 0).sum(axis=0))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4,\)"):
        Softmax()(t) + Tensor(np.ones(4))


@pytest.mark.export_import
def test_public_api_is_exported(export_api):
    api = export_api("tinytorch.core.activations", PUBLIC_API)
    for name in ["ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax"]:
        assert issubclass(api[name], api["Activation"])
    assert callable(api["stable_sigmoid"])


@pytest.mark.export_import
def test_imported_module_is_the_export_of_the_current_source():
    from tinytorch.core import activations
    generated = Path(activations.__file__)
    source = ROOT / "modules" / "02_activations" / "activations_dev.py"
    assert generated == ROOT / "tinytorch" / "core" / "activations.py"
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert f"# source-sha256: {source_sha}" in generated.read_text().splitlines()[:3]
