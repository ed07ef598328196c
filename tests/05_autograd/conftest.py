"""Helpers shared by module 05's tests: an independent finite-difference gradient, and
a fresh interpreter for checks that must not see this process's imports."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def central_difference(f, array, eps=1e-6):
    """d f / d array by central differences: f maps a float64 array to a float.

    Written independently of `gradcheck`, so the tests do not only trust the
    module's own checker."""
    x = np.array(array, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        above = f(x.copy())
        x[index] = original - eps
        below = f(x.copy())
        x[index] = original
        grad[index] = (above - below) / (2 * eps)
    return grad


@pytest.fixture(name="central_difference")
def central_difference_fixture():
    return central_difference


@pytest.fixture
def run_python():
    """run_python(code) -> stdout of `code` run by a fresh interpreter in the repository."""
    def run(code: str) -> str:
        done = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
                              cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"subprocess failed:\n{done.stderr}"
        return done.stdout
    return run
