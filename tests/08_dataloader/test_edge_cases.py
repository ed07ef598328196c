"""Edge cases of module 08: bad indices, empty and tiny datasets, bad arguments, bad files."""
import gzip
import re

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import (
    DataFormatError,
    DataLoader,
    Subset,
    TensorDataset,
    default_collate,
    load_digits,
    random_split,
    read_cifar10_batch,
    read_idx,
)


def small():
    return TensorDataset(np.arange(6.0).reshape(3, 2), np.arange(3))


# ---- indexing -------------------------------------------------------------------------

@pytest.mark.parametrize("index", [3, -4, 100])
def test_out_of_range_index_is_an_index_error(index):
    with pytest.raises(IndexError, match=f"index {index} is out of range for 3 samples"):
        small()[index]


@pytest.mark.parametrize("index", [1.0, "0", None, True, slice(0, 2)])
def test_non_integer_index_is_a_type_error(index):
    with pytest.raises(TypeError, match="indices must be integers"):
        small()[index]


def test_numpy_integer_indices_work():
    x, y = small()[np.int64(2)]
    assert y.item() == 2 and x.data.tolist() == [4.0, 5.0]


def test_subset_index_errors():
    with pytest.raises(IndexError, match=r"\[-3, 3\)"):
        Subset(small(), [0, 3])
    with pytest.raises(IndexError, match="out of range for 2 samples"):
        Subset(small(), [0, 1])[2]


# ---- empty and tiny datasets ---------------------------------------------------------------

@pytest.mark.parametrize("shuffle", [False, True])
def test_empty_dataset_gives_no_batches(shuffle):
    empty = TensorDataset(np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64))
    loader = DataLoader(empty, batch_size=8, shuffle=shuffle, seed=0)
    assert len(empty) == 0 and len(loader) == 0 and list(loader) == []
    with pytest.raises(IndexError, match="out of range for 0 samples"):
        empty[0]


def test_batch_larger_than_dataset_is_one_short_batch():
    loader = DataLoader(small(), batch_size=100, shuffle=True, seed=0)
    (x, y), = list(loader)
    assert len(loader) == 1 and x.shape == (3, 2) and sorted(y.data.tolist()) == [0, 1, 2]


def test_batch_larger_than_dataset_with_drop_last_gives_nothing():
    loader = DataLoader(small(), batch_size=4, drop_last=True)
    assert len(loader) == 0 and list(loader) == []


def test_single_sample_dataset():
    (x, y), = DataLoader(TensorDataset(np.array([[5.0]]), np.array([1])), shuffle=True, seed=0)
    assert x.shape == (1, 1) and x.data[0, 0] == 5.0 and y.data.tolist() == [1]


# ---- bad arguments ---------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "4", None])
def test_batch_size_must_be_a_positive_integer(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(small(), batch_size=batch_size)


def test_dataset_must_have_len_and_getitem():
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(iter([1, 2, 3]))


def test_tensor_dataset_checks_its_tensors():
    with pytest.raises(ValueError, match=r"same first dimension.*\(3, 2\), \(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d tensor"):
        TensorDataset(Tensor(1.0))
    with pytest.raises(TypeError, match="must be numbers"):
        TensorDataset(["a", "b"])


def test_random_split_lengths_must_add_up():
    with pytest.raises(ValueError, match=r"add up to the dataset's 3 samples"):
        random_split(small(), [2, 2])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(small(), [4, -1])
    empty_part, everything = random_split(small(), [0, 3], seed=0)
    assert len(empty_part) == 0 and len(everything) == 3


def test_collate_errors_say_what_to_do():
    with pytest.raises(ValueError, match=r"different shapes \[\(2,\), \(3,\)\].*collate_fn"):
        default_collate([np.zeros(3), np.zeros(2)])
    with pytest.raises(TypeError, match="don't know how to batch a str"):
        default_collate(["a", "b"])
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (3,)])


# ---- bad files ---------------------------------------------------------------------------

def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "train-images-idx3-ubyte"
    for reader in (read_idx, read_cifar10_batch, load_digits):
        with pytest.raises(FileNotFoundError, match=re.escape(f"data file not found: {missing}")):
            reader(missing)


def test_idx_wrong_magic_number(write_file, idx_bytes):
    good = idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    little_endian = write_file("swapped.idx", good[:4][::-1] + good[4:])   # 03 08 00 00
    with pytest.raises(DataFormatError, match=r"swapped\.idx: wrong magic number 0x03080000"):
        read_idx(little_endian)
    unknown_type = write_file("type.idx", b"\x00\x00\x07\x01" + good[4:])
    with pytest.raises(DataFormatError, match="wrong magic number 0x00000701"):
        read_idx(unknown_type)


def test_idx_truncated_data_or_header(write_file, idx_bytes):
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    with pytest.raises(DataFormatError, match=r"cut\.idx: truncated: the header promises shape "
                                              r"\(3, 4\) of uint8 \(24 bytes in all\), the "
                                              r"file has 23 bytes"):
        read_idx(write_file("cut.idx", good[:-1]))
    with pytest.raises(DataFormatError, match="truncated header: 2 dimensions need 12 bytes"):
        read_idx(write_file("head.idx", good[:10]))
    with pytest.raises(DataFormatError, match="too short for an IDX header: 2 bytes"):
        read_idx(write_file("tiny.idx", good[:2]))
    with pytest.raises(DataFormatError, match="extra bytes after the data"):
        read_idx(write_file("long.idx", good + b"\x00"))


def test_idx_damaged_gzip(write_file, idx_bytes):
    compressed = gzip.compress(idx_bytes(np.zeros(1000, dtype=np.uint8)))
    path = write_file("cut.idx.gz", compressed[: len(compressed) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.idx\.gz: damaged gzip data"):
        read_idx(path)


def test_cifar_wrong_record_size(write_file, cifar_bytes):
    good = cifar_bytes(np.zeros((2, 3, 32, 32), dtype=np.uint8), [1, 2])
    with pytest.raises(DataFormatError, match=r"batch\.bin: wrong record size: 6145 bytes is "
                                              r"not a whole number of 3073-byte records"):
        read_cifar10_batch(write_file("batch.bin", good[:-1]))
    with pytest.raises(DataFormatError, match="empty file"):
        read_cifar10_batch(write_file("empty.bin", b""))
    bad_label = bytearray(good)
    bad_label[3073] = 10                                   # record 1's label byte
    with pytest.raises(DataFormatError, match="record 1 has label 10"):
        read_cifar10_batch(write_file("label.bin", bytes(bad_label)))


@pytest.mark.parametrize("text, problem", [
    ("", "no rows"),
    ("1,2,3\n", "rows have 3 values, expected 65"),
    (",".join(["17"] * 64 + ["1"]), "pixel values must be in 0..16, found 17 to 17"),
    (",".join(["0"] * 64 + ["10"]), "labels must be in 0..9"),
    (",".join(["x"] * 65), "not a CSV of integers"),
])
def test_digits_csv_problems(write_file, text, problem):
    path = write_file("digits.csv", text.encode())
    with pytest.raises(DataFormatError, match=problem) as info:
        load_digits(path)
    assert str(info.value).startswith(str(path))


def test_digits_binary_file_is_not_csv(write_file):
    with pytest.raises(DataFormatError, match="not a text"):
        load_digits(write_file("digits.csv", b"\xff\xfe\x00"))
