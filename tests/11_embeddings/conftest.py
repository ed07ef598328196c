"""Fixtures for the embedding tests: the real corpus (data/corpus/README.md)."""
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "python_reference.txt"


@pytest.fixture(scope="session")
def corpus():
    """The Python Language Reference text (~465 KB)."""
    return CORPUS.read_text(encoding="utf-8")
