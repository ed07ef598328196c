"""Module 08 on real data: the shipped UCI digits, read, split, batched, and used."""
import csv
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tinytorch.data.dataloader import (
    DIGITS_PATH,
    DataLoader,
    TensorDataset,
    load_digits,
    random_split,
    read_idx,
)

DIGITS_FILE = Path(__file__).resolve().parents[2] / "data" / "digits" / "digits.csv.gz"


@pytest.fixture(scope="module")
def raw_rows():
    """The file's rows as lists of ints, read with the standard library only."""
    with gzip.open(DIGITS_FILE, "rt", newline="") as f:
        return [[int(v) for v in row] for row in csv.reader(f)]


def test_default_path_is_the_shipped_file():
    assert DIGITS_PATH == DIGITS_FILE and DIGITS_PATH.is_file()


def test_load_digits_matches_the_raw_file(raw_rows):
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    expected_counts = Counter(row[64] for row in raw_rows)
    assert len(expected_counts) == 10 and sum(expected_counts.values()) == 1797
    assert dict(Counter(labels.tolist())) == dict(expected_counts)
    assert np.array_equal(images.reshape(1797, 64), np.array([row[:64] for row in raw_rows]))
    assert images.min() == 0.0 and images.max() == 16.0


def test_seeded_split_and_an_epoch_of_batches(raw_rows):
    images, labels = load_digits()
    dataset = TensorDataset(images / 16, labels)
    train, test = random_split(dataset, [1437, 360], seed=0)
    again_train, _ = random_split(dataset, [1437, 360], seed=0)
    assert np.array_equal(train.indices, again_train.indices)
    assert set(train.indices.tolist()).isdisjoint(test.indices.tolist())

    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    assert len(loader) == 23                               # 22 full batches + 29 samples
    seen = Counter()
    sizes = []
    for x, y in loader:
        assert x.dtype == np.float32 and 0.0 <= x.data.min() and x.data.max() <= 1.0
        sizes.append(x.shape[0])
        seen.update(y.data.tolist())
    assert sizes == [64] * 22 + [29]
    expected = Counter(raw_rows[i][64] for i in train.indices.tolist())
    assert seen == expected                                # every training sample once


def test_nearest_centroid_classifier_from_batches():
    """Class means accumulated batch by batch equal numpy's, and classify held-out digits."""
    images, labels = load_digits()
    flat = images.reshape(-1, 64) / 16
    train, test = random_split(TensorDataset(flat, labels), [1437, 360], seed=0)
    sums, counts = np.zeros((10, 64)), np.zeros(10)
    for x, y in DataLoader(train, batch_size=100, shuffle=True, seed=1):
        np.add.at(sums, y.data, x.data)
        counts += np.bincount(y.data, minlength=10)
    centroids = sums / counts[:, None]
    idx = train.indices
    expected = np.stack([flat[idx][labels[idx] == c].mean(axis=0) for c in range(10)])
    assert np.allclose(centroids, expected, atol=1e-6)

    correct = 0
    for x, y in DataLoader(test, batch_size=100):
        distances = ((x.data[:, None, :] - centroids[None]) ** 2).sum(axis=2)
        correct += int((distances.argmin(axis=1) == y.data).sum())
    accuracy = correct / len(test)
    assert accuracy >= 0.85, f"nearest-centroid accuracy {accuracy:.3f}"


def test_digits_survive_a_round_trip_through_the_mnist_format(write_file, idx_bytes):
    images, labels = load_digits()
    image_file = write_file("digits-images-idx3-ubyte.gz", idx_bytes(images.astype(np.uint8)),
                            gz=True)
    label_file = write_file("digits-labels-idx1-ubyte", idx_bytes(labels.astype(np.uint8)))
    assert image_file.read_bytes()[:2] == b"\x1f\x8b"
    assert np.array_equal(read_idx(image_file), images.astype(np.uint8))
    assert np.array_equal(read_idx(label_file), labels)
