"""Module 01 is the foundation: it stands alone, loads nothing else, and leaves
gradients to module 05 through the autograd hook."""
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code):
    """Run `code` in a fresh interpreter (no other test's imports) and return its stdout."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_importing_tensor_loads_only_tensor(loaded_modules):
    assert loaded_modules("tinytorch.core.tensor") == {"tinytorch.core.tensor"}


def test_backward_without_autograd_names_the_module_to_import():
    code = ("from tinytorch.core.tensor import Tensor, autograd_hook\n"
            "y = (Tensor([1.0, 2.0], requires_grad=True) * 3).sum()\n"
            "print(autograd_hook.installed)\n"
            "try:\n"
            "    y.backward()\n"
            "except RuntimeError as error:\n"
            "    print(error)\n")
    installed, message = run_fresh(code).splitlines()
    assert installed == "False"
    assert "tinytorch.core.autograd" in message


def test_graph_records_without_autograd_installed():
    # Recording needs no engine: a graph built now can be differentiated later.
    code = ("from tinytorch.core.tensor import Tensor\n"
            "w = Tensor([[1.0, 2.0]], requires_grad=True)\n"
            "loss = ((Tensor([[3.0], [4.0]]).T * w).sum() - 1) ** 2\n"
            "print(loss._op, loss._parents[0]._op, loss._parents[0]._parents[0]._op,"
            " loss.item())\n")
    assert run_fresh(code) == "pow sub sum 100.0"


def test_hook_install_plugs_in_an_engine():
    from tinytorch.core.tensor import AutogradHook
    hook = AutogradHook()
    assert not hook.installed and hook.is_grad_enabled() is True
    calls = []
    hook.install(backward=lambda t, g: calls.append((t, g)), is_grad_enabled=lambda: False)
    assert hook.installed and hook.is_grad_enabled() is False
    hook.backward("tensor", "grad")
    assert calls == [("tensor", "grad")]


@pytest.mark.export_import
def test_public_api_is_exported(export_api):
    api = export_api("tinytorch.core.tensor", ["Tensor", "AutogradHook", "autograd_hook"])
    assert isinstance(api["autograd_hook"], api["AutogradHook"])
    assert Tensor is api["Tensor"]


@pytest.mark.export_import
def test_exported_constants():
    from tinytorch.core import tensor
    assert tensor.NUMERIC_KINDS == "biuf"
    assert set(tensor.DATA_TYPES) == {bool, int, float, list, tuple, np.ndarray, np.generic}


@pytest.mark.export_import
def test_imported_module_is_the_export_of_the_current_source():
    from tinytorch.core import tensor
    generated = Path(tensor.__file__)
    source = ROOT / "modules" / "01_tensor" / "tensor_dev.py"
    assert generated == ROOT / "tinytorch" / "core" / "tensor.py"
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert f"# source-sha256: {source_sha}" in generated.read_text().splitlines()[:3]
