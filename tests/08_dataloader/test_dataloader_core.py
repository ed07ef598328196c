"""Core behaviour of module 08: datasets, batching, shuffling, collation, file readers."""
import inspect
import tracemalloc

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import (
    DataFormatError,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    load_digits,
    random_split,
    read_cifar10_batch,
    read_idx,
)

API = ["Dataset", "TensorDataset", "Subset", "random_split", "default_collate", "DataLoader",
       "DataFormatError", "load_digits", "read_idx", "read_cifar10_batch"]


def numbers_dataset(n=10):
    """x[i] = [i, 10 i] (float32), y[i] = i % 3 (int64)."""
    x = np.stack([np.arange(n), 10 * np.arange(n)], axis=1).astype(np.float32)
    return TensorDataset(x, np.arange(n) % 3)


class CountingDataset(Dataset):
    """Sample i is the row i of `rows`; remembers every index it was asked for."""

    def __init__(self, rows):
        self.rows, self.requested = rows, []

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        self.requested.append(index)
        return self.rows[index]


# ---- datasets -----------------------------------------------------------------------

def test_tensor_dataset_returns_row_i_of_every_tensor():
    ds = numbers_dataset()
    assert len(ds) == 10
    x, y = ds[4]
    assert isinstance(x, Tensor) and isinstance(y, Tensor)
    assert np.array_equal(x.data, [4.0, 40.0]) and x.dtype == np.float32
    assert y.item() == 1 and y.dtype == np.int64
    x_last, _ = ds[-1]                                    # negative index, as for a list
    assert np.array_equal(x_last.data, [9.0, 90.0])


def test_tensor_dataset_keeps_tensor_dtypes_and_copies_rows():
    values = Tensor(np.arange(6.0).reshape(3, 2), dtype=np.float64)
    ds = TensorDataset(values)
    (row,) = ds[1]
    assert row.dtype == np.float64
    row.data[0] = -1.0                                    # changing a sample ...
    assert values.data[1, 0] == 2.0                       # ... does not change the dataset


def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()

    class NoGetitem(Dataset):
        def __len__(self):
            return 3

    with pytest.raises(TypeError, match="__getitem__"):
        NoGetitem()


def test_subset_maps_its_indices_to_the_dataset():
    sub = Subset(numbers_dataset(), [7, 2, 2])
    assert len(sub) == 3
    assert [sub[k][0].data[0] for k in range(3)] == [7.0, 2.0, 2.0]
    assert sub[-1][0].data[1] == 20.0


def test_random_split_is_a_seeded_partition():
    ds = numbers_dataset(20)
    train, test = random_split(ds, [15, 5], seed=3)
    assert (len(train), len(test)) == (15, 5)
    seen = sorted(int(train[k][0].data[0]) for k in range(15)) + \
        sorted(int(test[k][0].data[0]) for k in range(5))
    assert sorted(seen) == list(range(20))                # disjoint and complete
    order = np.random.default_rng(3).permutation(20)      # the documented recipe
    assert [int(test[k][0].data[0]) for k in range(5)] == order[15:].tolist()
    again, _ = random_split(ds, [15, 5], seed=3)
    assert np.array_equal(again.indices, train.indices)
    other, _ = random_split(ds, [15, 5], seed=4)
    assert not np.array_equal(other.indices, train.indices)


# ---- batching -----------------------------------------------------------------------

def test_unshuffled_batches_are_consecutive_rows():
    loader = DataLoader(numbers_dataset(), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3                # ceil(10 / 4)
    x0, y0 = batches[0]
    assert np.array_equal(x0.data, [[0, 0], [1, 10], [2, 20], [3, 30]])
    assert np.array_equal(y0.data, [0, 1, 2, 0])
    x2, y2 = batches[2]                                   # the short last batch
    assert np.array_equal(x2.data, [[8, 80], [9, 90]]) and np.array_equal(y2.data, [2, 0])


def test_drop_last_drops_only_the_short_batch():
    loader = DataLoader(numbers_dataset(), batch_size=4, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    assert np.array_equal(batches[1][0].data[:, 0], [4, 5, 6, 7])
    exact = DataLoader(numbers_dataset(8), batch_size=4, drop_last=True)
    assert len(exact) == len(list(exact)) == 2            # nothing to drop


def test_default_batch_size_is_one():
    batches = list(DataLoader(numbers_dataset(3)))
    assert len(batches) == 3
    assert batches[2][0].shape == (1, 2) and batches[2][0].data[0, 0] == 2.0


def epoch_order(loader):
    return np.concatenate([x.data[:, 0] for x, _ in loader]).astype(int).tolist()


def test_shuffle_is_reproducible_with_a_seed():
    a = DataLoader(numbers_dataset(), batch_size=3, shuffle=True, seed=7)
    b = DataLoader(numbers_dataset(), batch_size=3, shuffle=True, seed=7)
    epochs_a = [epoch_order(a) for _ in range(3)]
    epochs_b = [epoch_order(b) for _ in range(3)]
    assert epochs_a == epochs_b                            # same seed: same epochs
    assert all(sorted(order) == list(range(10)) for order in epochs_a)   # permutations
    assert len({tuple(order) for order in epochs_a}) == 3  # each epoch a new order
    rng = np.random.default_rng(7)                         # one generator, one draw per epoch
    assert epochs_a == [rng.permutation(10).tolist() for _ in range(3)]


def test_different_seeds_give_different_orders():
    orders = {tuple(epoch_order(DataLoader(numbers_dataset(), batch_size=5, shuffle=True,
                                           seed=s))) for s in range(4)}
    assert len(orders) == 4


def test_samples_stay_paired_when_shuffled():
    for x, y in DataLoader(numbers_dataset(), batch_size=4, shuffle=True, seed=0):
        assert np.array_equal(x.data[:, 1], 10 * x.data[:, 0])
        assert np.array_equal(y.data, x.data[:, 0].astype(np.int64) % 3)


def test_custom_collate_receives_the_list_of_samples():
    calls = []

    def collate(samples):
        calls.append(len(samples))
        return sum(int(x.data[0]) for x, _ in samples)

    loader = DataLoader(numbers_dataset(), batch_size=4, collate_fn=collate)
    assert list(loader) == [0 + 1 + 2 + 3, 4 + 5 + 6 + 7, 8 + 9]
    assert calls == [4, 4, 2]


def test_default_collate_stacks_fields_recursively():
    batch = default_collate([(np.array([1.5, 2.0]), 3, {"id": 7}),
                             (np.array([0.5, 1.0]), 4, {"id": 8})])
    images, labels, extra = batch
    assert images.dtype == np.float32 and np.array_equal(images.data, [[1.5, 2.0], [0.5, 1.0]])
    assert labels.dtype == np.int64 and np.array_equal(labels.data, [3, 4])
    assert np.array_equal(extra["id"].data, [7, 8])
    floats = default_collate([0.25, 0.75])
    assert floats.dtype == np.float32 and np.array_equal(floats.data, [0.25, 0.75])
    halves = default_collate([Tensor([1.0], dtype=np.float16), Tensor([2.0], dtype=np.float16)])
    assert halves.dtype == np.float16 and halves.shape == (2, 1)


def test_loader_accepts_any_dataset_like_object():
    loader = DataLoader([np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0])],
                        batch_size=2)
    first, second = list(loader)
    assert np.array_equal(first.data, [[1, 2], [3, 4]]) and second.shape == (1, 2)


# ---- file readers (files written from the format specification) ----------------------

@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_mnist_images_and_labels(write_file, idx_bytes, rng, gz):
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    images_file = write_file("images-idx3-ubyte", idx_bytes(images), gz=gz)
    labels_file = write_file("labels-idx1-ubyte", idx_bytes(labels), gz=gz)
    assert images_file.read_bytes()[:4] == (b"\x1f\x8b\x08\x00" if gz else b"\x00\x00\x08\x03")
    read_images, read_labels = read_idx(images_file), read_idx(labels_file)
    assert read_images.dtype == np.uint8 and np.array_equal(read_images, images)
    assert read_labels.shape == (5,) and np.array_equal(read_labels, labels)


def test_read_idx_decodes_big_endian_types(write_file, idx_bytes):
    ints = np.array([[1, -2, 70000], [0, 2**31 - 1, -2**31]], dtype=np.int32)
    floats = np.array([1.5, -0.25, 1e30], dtype=np.float32)
    assert idx_bytes(ints)[4:8] == b"\x00\x00\x00\x02"    # first dim 2, big-endian
    read_ints = read_idx(write_file("ints.idx", idx_bytes(ints)))
    read_floats = read_idx(write_file("floats.idx", idx_bytes(floats)))
    assert read_ints.dtype == np.int32 and np.array_equal(read_ints, ints)
    assert read_floats.dtype == np.float32 and np.array_equal(read_floats, floats)
    assert read_ints.dtype.isnative and read_ints.flags.writeable


def test_read_cifar10_batch_decodes_records_channel_first(write_file, cifar_bytes, rng):
    images = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    labels = [9, 0, 3, 3]
    path = write_file("data_batch_1.bin", cifar_bytes(images, labels))
    assert path.stat().st_size == 4 * 3073
    read_images, read_labels = read_cifar10_batch(path)
    assert read_images.shape == (4, 3, 32, 32) and read_images.dtype == np.uint8
    assert np.array_equal(read_images, images)
    assert read_labels.dtype == np.int64 and read_labels.tolist() == labels
    raw = path.read_bytes()                               # byte 1 + 1024 is green pixel (0, 0)
    assert read_images[0, 1, 0, 0] == raw[1 + 1024]


def test_load_digits_parses_the_csv_format(write_file):
    rows = [list(range(16)) * 4 + [7], [16] * 64 + [0]]
    text = "\n".join(",".join(map(str, row)) for row in rows) + "\n"
    images, labels = load_digits(write_file("two.csv.gz", text.encode(), gz=True))
    assert images.shape == (2, 8, 8) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [7, 0]
    assert images[0, 0].tolist() == list(range(8)) and images[0, 1, 0] == 8.0
    assert images[1].min() == images[1].max() == 16.0


def test_data_format_error_is_a_value_error_naming_the_file(write_file):
    path = write_file("bad.idx", b"\x12\x34\x56\x78")
    with pytest.raises(DataFormatError) as info:
        read_idx(path)
    assert isinstance(info.value, ValueError)
    assert info.value.path == str(path) and str(info.value).startswith(str(path))


# ---- shapes ---------------------------------------------------------------------------

@pytest.mark.shape
@pytest.mark.parametrize("batch_size, drop_last, shapes",
                         [(4, False, [4, 4, 2]), (4, True, [4, 4]), (10, False, [10]),
                          (3, False, [3, 3, 3, 1])])
def test_batch_shapes(batch_size, drop_last, shapes):
    images = np.zeros((10, 1, 8, 8), dtype=np.float32)
    loader = DataLoader(TensorDataset(images, np.zeros(10, dtype=np.int64)),
                        batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(b, 1, 8, 8) for b in shapes]
    assert [y.shape for _, y in batches] == [(b,) for b in shapes]


@pytest.mark.shape
def test_scalar_samples_batch_to_vectors():
    (batch,) = list(DataLoader(TensorDataset(np.arange(5)), batch_size=5))
    assert batch[0].shape == (5,) and batch[0].data.tolist() == [0, 1, 2, 3, 4]


# ---- memory ---------------------------------------------------------------------------

@pytest.mark.memory_performance
def test_each_batch_reads_only_its_own_samples():
    ds = CountingDataset(np.arange(23.0).reshape(23, 1))
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    sizes = []
    for batch in loader:
        sizes.append(batch.shape[0])
        assert len(ds.requested) == sum(sizes)            # fetched lazily, batch by batch
    assert sizes == [5, 5, 5, 5, 3]
    assert sorted(ds.requested) == list(range(23))        # every sample exactly once
    assert all(type(i) is int for i in ds.requested)      # one plain index per call


@pytest.mark.memory_performance
def test_an_epoch_never_copies_the_dataset():
    data = np.ones((2560, 1024), dtype=np.float32)        # 10 MiB
    loader = DataLoader(TensorDataset(data), batch_size=32, shuffle=True, seed=0)
    batch_bytes = 32 * 1024 * 4                           # 128 KiB
    tracemalloc.start()
    try:
        total = 0.0
        for (x,) in loader:
            total += float(x.data[:, 0].sum())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 2560.0                                # every row seen once
    # One full copy of the dataset would be 10 MiB; a batch is built from its own rows
    # (row copies, the stacked batch, the Tensor): a few batches' worth at most.
    assert peak < 8 * batch_bytes, f"peak {peak} bytes for an epoch of a {data.nbytes}-byte dataset"


# ---- API ------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.data.dataloader", API)
    assert issubclass(found["TensorDataset"], found["Dataset"])
    assert issubclass(found["Subset"], found["Dataset"])
    assert issubclass(found["DataFormatError"], ValueError)


@pytest.mark.api_consistency
def test_loader_signature_matches_the_brief_and_pytorch_names():
    params = inspect.signature(DataLoader).parameters
    assert list(params) == ["dataset", "batch_size", "shuffle", "drop_last", "seed", "collate_fn"]
    defaults = {name: p.default for name, p in params.items() if name != "dataset"}
    assert defaults == {"batch_size": 1, "shuffle": False, "drop_last": False, "seed": None,
                        "collate_fn": None}


@pytest.mark.api_consistency
def test_loader_is_reiterable_like_a_pytorch_loader():
    loader = DataLoader(numbers_dataset(), batch_size=4)
    first, second = iter(loader), iter(loader)
    assert first is not second                            # each iter() is a new epoch
    assert np.array_equal(next(first)[0].data, next(second)[0].data)
    assert sum(1 for _ in loader) == len(loader) == 3


@pytest.mark.api_consistency
@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (1, False), (20, False)])
def test_unshuffled_batches_match_pytorch(torch, batch_size, drop_last):
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10) % 4
    ours = DataLoader(TensorDataset(x, y), batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
        batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    for (ox, oy), (tx, ty) in zip(ours, theirs, strict=True):
        assert ox.shape == tuple(tx.shape) and np.array_equal(ox.data, tx.numpy())
        assert oy.dtype == np.int64 and np.array_equal(oy.data, ty.numpy())
