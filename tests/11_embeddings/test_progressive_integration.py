"""Module 11 on top of 01-05 and 10: what it imports, what it exports, and that the
modules below still work."""
import numpy as np
import pytest

API = ["Embedding", "LearnedPositionalEmbedding", "SinusoidalPositionalEncoding",
       "sinusoidal_table"]

# What the dependency graph allows (deps 05_autograd and 10_tokenization, transitively).
CLOSURE = {"tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
           "tinytorch.core.losses", "tinytorch.core.autograd", "tinytorch.text.tokenization"}


def test_importing_embeddings_loads_what_it_uses_from_its_closure(loaded_modules):
    loaded = loaded_modules("tinytorch.text.embeddings")
    # Tensor, Module (layers) and the autograd engine (which imports activations);
    # tokenizers and losses are used together with embeddings but not imported by them.
    assert loaded == {"tinytorch.core.tensor", "tinytorch.core.activations",
                      "tinytorch.core.layers", "tinytorch.core.autograd",
                      "tinytorch.text.embeddings"}
    assert loaded - {"tinytorch.text.embeddings"} <= CLOSURE


def test_importing_embeddings_installs_the_autograd_engine():
    import subprocess
    import sys
    code = ("import numpy as np; from tinytorch.text.embeddings import Embedding; "
            "e = Embedding(3, 2, seed=0); e([1, 1]).sum().backward(); "
            "print(e.weight.grad.data.tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[[0.0, 0.0], [2.0, 2.0], [0.0, 0.0]]"


@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.text.embeddings", API)
    from tinytorch.core.layers import Module
    for name in API[:3]:
        assert issubclass(found[name], Module)


def test_earlier_modules_still_behave_the_same():
    from tinytorch.core.autograd import gradcheck
    from tinytorch.core.layers import Linear
    from tinytorch.core.tensor import Tensor
    from tinytorch.text.embeddings import Embedding  # noqa: F401  (imported alongside)
    from tinytorch.text.tokenization import CharTokenizer

    x = Tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    (x[0, [0, 0, 2]] * Tensor([1.0, 2.0, 3.0])).sum().backward()   # 05's getitem rule
    assert x.grad.data.tolist() == [[3.0, 0.0, 3.0]]
    layer = Linear(3, 2, seed=0)
    assert gradcheck(lambda *ps: layer(Tensor(np.ones((2, 3)))), layer.parameters()) < 1e-6
    assert CharTokenizer().train("ab").encode("ba") == [5, 4]
