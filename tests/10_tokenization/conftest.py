"""Fixtures for the tokenizer tests: the real corpus, split 80/20, and a BPE trained on it."""
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "python_reference.txt"


@pytest.fixture(scope="session")
def corpus():
    """The Python Language Reference text (~465 KB, data/corpus/README.md)."""
    return CORPUS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def corpus_split(corpus):
    """(first 80%, last 20%) of the corpus: train on one, measure on the other."""
    cut = int(len(corpus) * 0.8)
    return corpus[:cut], corpus[cut:]


@pytest.fixture(scope="session")
def corpus_bpe(corpus_split):
    """A BPETokenizer with 500 merges learned from the first 80% of the corpus."""
    from tinytorch.text.tokenization import BPETokenizer
    return BPETokenizer().train(corpus_split[0], vocab_size=259 + 500)
