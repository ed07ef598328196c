"""Fixtures shared by every module's tests (TinyTorch's, not the orchestrator's)."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path


def _blas_threads_per_worker() -> None:
    """Under xdist, each worker's BLAS gets its share of the cores, set before numpy loads
    (as the orchestrator sets it for the modules it runs side by side): OpenBLAS threads
    spinning on cores another worker's tests also use made 17_memoization's training take
    53 s beside two busy processes, 11 s with one thread. A value already set wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)


_blas_threads_per_worker()

import numpy as np  # noqa: E402  (after the thread limits: BLAS reads them when it loads)
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def torch():
    """PyTorch as an oracle: the test is skipped, with the reason, when it is absent."""
    return pytest.importorskip("torch", reason="PyTorch not installed (pip install -e "
                                               "'.[reference]'): oracle comparison skipped")


@pytest.fixture
def rng():
    """A fixed-seed generator: every test sees the same numbers on every run."""
    return np.random.default_rng(0)


@pytest.fixture
def loaded_modules():
    """loaded_modules('tinytorch.core.layers') -> the tinytorch modules (not packages: their
    `__init__` files import nothing) a fresh interpreter holds after importing it, which
    checks that the package imports nothing beyond the module's closure."""
    def run(module: str) -> set[str]:
        code = (f"import sys, {module}; "
                "print(' '.join(name for name, m in sys.modules.items() "
                "if name.startswith('tinytorch.') and not hasattr(m, '__path__')))")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        return set(out.split())
    return run


@pytest.fixture
def export_api():
    """export_api('tinytorch.core.tensor', ['Tensor']) -> the named objects, checked to be
    real (not None) and defined by that export path itself."""
    def check(path: str, names: list[str]) -> dict:
        module = importlib.import_module(path)
        found = {}
        for name in names:
            obj = getattr(module, name, None)
            assert obj is not None, f"{path} does not provide {name}"
            defined_in = getattr(obj, "__module__", path)
            assert defined_in == path, f"{path}.{name} is defined in {defined_in}"
            found[name] = obj
        return found
    return check
