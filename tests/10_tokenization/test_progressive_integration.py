"""Module 10 on top of module 01: what it imports, what it exports, and that 01 still works."""
import numpy as np
import pytest

API = ["Tokenizer", "CharTokenizer", "BPETokenizer", "pad_batch", "SPECIAL_TOKENS",
       "split_special", "merge_pair", "learn_merges"]


def test_importing_tokenization_loads_only_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.text.tokenization") == {
        "tinytorch.core.tensor", "tinytorch.text.tokenization"}


@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.text.tokenization", API)
    assert found["SPECIAL_TOKENS"] == {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    assert callable(found["pad_batch"])


@pytest.mark.export_import
def test_generated_file_names_its_source():
    from pathlib import Path

    import tinytorch.text.tokenization as tokenization
    header = Path(tokenization.__file__).read_text(encoding="utf-8")[:500]
    assert "modules/10_tokenization/tokenization_dev.py" in header


def test_tensor_from_module_01_still_behaves_the_same_next_to_tokenizers():
    from tinytorch.core.tensor import Tensor
    from tinytorch.text.tokenization import CharTokenizer, pad_batch

    ids, mask = pad_batch([CharTokenizer().train("abc").encode("cab")])
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert (x @ x).data.tolist() == [[7.0, 10.0], [15.0, 22.0]]
    assert (ids + 1).data.tolist() == [[7, 5, 6]]           # int Tensor arithmetic stays integer
    assert (ids + 1).dtype == np.int64
    assert mask.sum().item() == 3
