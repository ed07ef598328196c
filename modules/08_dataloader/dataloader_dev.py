# %% [markdown]
# # Module 08: DataLoader
#
# A model trains on *batches*: 32 or 64 samples at a time, in a fresh random order
# every epoch. Getting those batches out of a data set is the same job for every
# model, so it gets its own small module, in three layers:
#
# 1. **Dataset**: anything with `len(ds)` and `ds[i]` (one sample).
#    `TensorDataset(images, labels)` is the common case: row `i` of each tensor.
# 2. **DataLoader**: walks a dataset in batches, optionally shuffled, and stacks
#    the samples of a batch into Tensors (*collation*).
# 3. **File readers**: real data comes in real formats. We read three of them:
#    the digits CSV shipped with this repository, MNIST's IDX files and CIFAR-10's
#    binary batches. A damaged file fails loudly, naming the file and the problem,
#    instead of producing a silently wrong array.
#
# This module knows nothing about gradients: data are constants, so every tensor
# it produces has `requires_grad=False`.

# %%
#| default_exp data.dataloader

# %%
#| export
"""Datasets, a batching DataLoader, and readers for real data files (the shipped
UCI digits CSV, MNIST's IDX format, CIFAR-10 binary batches)."""
import gzip
import math
import zlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from tinytorch.core.tensor import Tensor, check_int

# %% [markdown]
# ## Dataset
#
# A dataset is a sized collection with random access: `len(ds)` samples, and
# `ds[i]` returns sample `i` (for `0 <= i < len(ds)`, or a negative index counted
# from the end, as for a list). That is all the loader needs, so a dataset can
# be an array in memory, a folder of images read on demand, or anything else.
#
# `Dataset` is an abstract base class: a subclass that forgets `__len__` or
# `__getitem__` cannot be instantiated, and the error says which one is missing.

# %%
#| export
class Dataset(ABC):
    """A sized collection of samples: `len(ds)` and `ds[i]`."""

    @abstractmethod
    def __len__(self):
        """The number of samples."""

    @abstractmethod
    def __getitem__(self, index):
        """Sample `index` (an int in [-len, len))."""


def check_index(index, length, name="dataset"):
    """`index` as a non-negative int below `length`; IndexError or TypeError otherwise."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"{name} indices must be integers, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"{name} index {index} is out of range for {length} samples")
    return int(index) % length

# %% [markdown]
# ## TensorDataset: samples are rows
#
# `TensorDataset(images, labels)` pairs row `i` of `images` with row `i` of
# `labels`, so every tensor needs the same first dimension (one entry per
# sample). Arrays are accepted too and become Tensors (float data as float32).
#
# `ds[i]` returns a tuple with one new Tensor per stored tensor. Those rows are
# plain data, cut off from any graph: a sample never requires a gradient.

# %%
#| export
class TensorDataset(Dataset):
    """Sample i is (t[i] for t in tensors): row i of each tensor."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        if any(t.ndim == 0 for t in tensors):
            raise ValueError("TensorDataset: every tensor needs a first dimension "
                             "(one entry per sample), got a 0-d tensor")
        if len({t.shape[0] for t in tensors}) > 1:
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"TensorDataset: all tensors need the same first dimension "
                             f"(one entry per sample), got shapes {shapes}")
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        i = check_index(index, len(self), "TensorDataset")
        return tuple(Tensor(t.data[i], dtype=t.dtype) for t in self.tensors)

# %% [markdown]
# ## Subsets and a seeded split
#
# To hold out a test set we need a view of some samples of a dataset, without
# copying them: `Subset(dataset, indices)` maps its own index `k` to
# `dataset[indices[k]]`. `random_split(dataset, [n_train, n_test], seed=0)`
# shuffles the indices once and cuts them into consecutive pieces, so the pieces
# never overlap and together cover every sample exactly once.

# %%
#| export
class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order (a view, not a copy)."""

    def __init__(self, dataset, indices):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must be in [-{n}, {n}) for a dataset of "
                             f"{n} samples, got values from {indices.min()} to {indices.max()}")
        self.dataset, self.indices = dataset, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[check_index(index, len(self), "Subset")])]


def random_split(dataset, lengths, seed=None):
    """Shuffle the indices once (seeded) and cut them into Subsets of these lengths."""
    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths) or sum(lengths) != len(dataset):
        raise ValueError(f"random_split: lengths {lengths} must be non-negative and add up "
                         f"to the dataset's {len(dataset)} samples")
    order = np.random.default_rng(seed).permutation(len(dataset))
    ends = np.cumsum(lengths)
    return [Subset(dataset, order[end - n:end]) for n, end in zip(lengths, ends)]

# %% [markdown]
# ## Collation: a list of samples -> a batch
#
# The loader fetches `batch_size` samples, each a tuple like `(image, label)`,
# and must return one batch: `(images, labels)`, each a Tensor with a new first
# dimension. `default_collate` does this recursively:
#
# - a tuple or list of fields -> a tuple with each field collated;
# - a dict -> a dict with each value collated;
# - Tensors, numpy arrays and numbers -> one Tensor, `np.stack`ed along a new
#   first axis (a Tensor keeps its dtype; numbers follow Tensor's rules: floats
#   become float32, ints stay int64).
#
# Pass your own `collate_fn` to batch anything else (text of different lengths
# needs padding, for example).

# %%
#| export
STACKABLE = (Tensor, np.ndarray, np.generic, int, float)


def default_collate(samples):
    """Stack a list of samples into a batch, field by field."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        if len({len(s) for s in samples}) > 1:
            raise ValueError("default_collate: samples have different numbers of fields")
        return tuple(default_collate(list(field)) for field in zip(*samples))
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, STACKABLE):
        rows = [s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]
        if len({row.shape for row in rows}) > 1:
            raise ValueError(f"default_collate: cannot stack samples of different shapes "
                             f"{sorted({row.shape for row in rows})}; pass a collate_fn")
        dtype = first.dtype if isinstance(first, Tensor) else None
        return Tensor(np.stack(rows), dtype=dtype)
    raise TypeError(f"default_collate: don't know how to batch a {type(first).__name__}; "
                    f"pass a collate_fn")

# %% [markdown]
# ## DataLoader
#
# One epoch = one pass over the dataset, in batches:
#
# 1. **Order.** `0, 1, ..., n-1`, or with `shuffle=True` a random permutation.
#    The loader owns one random generator, made from `seed` once: each epoch draws
#    a new permutation from it, so epochs differ from each other, while two loaders
#    made with the same seed produce exactly the same sequence of epochs.
# 2. **Batches.** Consecutive chunks of `batch_size` indices. The last chunk may be
#    smaller; `drop_last=True` drops it (useful when every batch must be full).
#    `len(loader)` is the number of batches per epoch.
# 3. **Samples.** Each batch calls `dataset[i]` for its own indices only, then
#    collates. The dataset is never copied as a whole, so memory per batch is
#    proportional to the batch, not to the dataset.

# %%
#| export
class DataLoader:
    """Iterate over a dataset in batches, optionally shuffled with a seeded generator."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 collate_fn=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader needs a dataset with __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        self.batch_size = check_int("DataLoader", "batch_size", batch_size)
        self.dataset = dataset
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.rng = np.random.default_rng(seed)      # one generator for every epoch
        self.collate_fn = default_collate if collate_fn is None else collate_fn

    def __len__(self):
        """Batches per epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batch_indices(self):
        """One epoch's sample indices, as a list of arrays, one per batch."""
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        return [order[start:start + self.batch_size] for start in starts]

    def __iter__(self):
        for indices in self.batch_indices():
            yield self.collate_fn([self.dataset[int(i)] for i in indices])

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)} samples, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")

# %% [markdown]
# ## Reading real files, carefully
#
# Every reader below starts the same way: the file must exist, and if it starts
# with gzip's two magic bytes (`1f 8b`) it is decompressed first, whatever its
# name. Then each format is checked against what its header promises. A file
# that does not match raises `DataFormatError` (a `ValueError`) whose message
# starts with the file's path and says what is wrong: a truncated download would
# otherwise become a silently shorter data set.

# %%
#| export
GZIP_MAGIC = b"\x1f\x8b"


class DataFormatError(ValueError):
    """A data file that does not match the format its reader expects."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem


def read_bytes(path):
    """The file's bytes, gunzipped if it is gzip data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(path, f"damaged gzip data ({error})") from None

# %% [markdown]
# ## The digits CSV
#
# `data/digits/digits.csv.gz` (UCI optical digits, see its README): 1,797 rows,
# each 64 pixel values 0..16 (an 8x8 image, row by row) and then the label 0..9.
#
# `load_digits()` returns `images` as float32 of shape **(N, 8, 8)**, with the
# file's values 0..16 unchanged (divide by 16 for inputs in [0, 1]; add a channel
# axis, `images[:, None]`, for a CNN; `reshape(N, 64)` for an MLP), and `labels`
# as int64 of shape (N,).

# %%
#| export
DIGITS_PATH = Path(__file__).resolve().parents[2] / "data" / "digits" / "digits.csv.gz"


def load_digits(path=DIGITS_PATH):
    """(images float32 (N, 8, 8) with values 0..16, labels int64 (N,)) from the digits CSV."""
    try:
        text = read_bytes(path).decode("ascii")
    except UnicodeDecodeError:
        raise DataFormatError(path, "not a text (CSV) file") from None
    if not text.strip():
        raise DataFormatError(path, "no rows")
    try:
        table = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise DataFormatError(path, f"not a CSV of integers ({error})") from None
    if table.shape[1] != 65:
        raise DataFormatError(path, f"rows have {table.shape[1]} values, expected 65 "
                                    f"(64 pixels and a label)")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16:
        raise DataFormatError(path, f"pixel values must be in 0..16, found {pixels.min()} "
                                    f"to {pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise DataFormatError(path, "labels must be in 0..9, "
                                    f"found {labels.min()} to {labels.max()}")
    return pixels.reshape(-1, 8, 8).astype(np.float32), labels

# %% [markdown]
# ## IDX files (MNIST)
#
# MNIST ships as IDX files. The header is big-endian:
#
# | bytes | meaning |
# |---|---|
# | 0-1 | always zero |
# | 2 | element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64 |
# | 3 | number of dimensions `d` |
# | 4 .. 4+4d | each dimension's size, a big-endian uint32 |
#
# So the first four bytes, read as one number, are the *magic number*:
# `0x00000803` for MNIST's images (uint8, 3 dimensions: N x 28 x 28) and
# `0x00000801` for its labels (uint8, 1 dimension: N). The data follow, row by
# row, big-endian; the file must hold exactly as many bytes as the header promises.
# `read_idx` returns a numpy array in the machine's byte order.

# %%
#| export
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array stored in an IDX file (plain or gzipped), e.g. MNIST images or labels."""
    raw = read_bytes(path)
    if len(raw) < 4:
        raise DataFormatError(path, f"too short for an IDX header: {len(raw)} bytes, "
                                    "need at least 4")
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or type_code not in IDX_TYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise DataFormatError(path, f"wrong magic number 0x{magic:08X}: an IDX file starts with "
                                    f"two zero bytes, a type code and the number of dimensions "
                                    f"(MNIST images 0x00000803, labels 0x00000801)")
    data_start = 4 + 4 * ndim
    if len(raw) < data_start:
        raise DataFormatError(path, f"truncated header: {ndim} dimensions need {data_start} "
                                    f"bytes, the file has {len(raw)}")
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[type_code])
    expected = data_start + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "extra bytes after the data"
        raise DataFormatError(path, f"{problem}: the header promises shape {shape} of "
                                    f"{dtype.newbyteorder('=')} ({expected} bytes in all), "
                                    f"the file has {len(raw)} bytes")
    data = np.frombuffer(raw, dtype, offset=data_start).reshape(shape)
    return data.astype(dtype.newbyteorder("="))    # native byte order, a writable copy

# %% [markdown]
# ## CIFAR-10 binary batches
#
# `data_batch_1.bin` ... `test_batch.bin` hold 10,000 records each, and a record
# is 3,073 bytes: one label byte (0..9), then 3,072 pixel bytes: the 1,024 red
# values of the 32x32 image row by row, then the 1,024 green, then the blue. That
# is exactly channel-first order, so the pixels reshape to **(N, 3, 32, 32)** uint8
# directly. A file whose size is not a whole number of records is damaged.

# %%
#| export
CIFAR_IMAGE_SHAPE = (3, 32, 32)
CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32            # label byte + 3,072 pixel bytes


def read_cifar10_batch(path):
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from a CIFAR-10 binary batch."""
    raw = read_bytes(path)
    if not raw:
        raise DataFormatError(path, "empty file: no CIFAR-10 records")
    if len(raw) % CIFAR_RECORD_BYTES:
        raise DataFormatError(path, f"wrong record size: {len(raw)} bytes is not a whole number "
                                    f"of {CIFAR_RECORD_BYTES}-byte records (1 label byte + "
                                    f"3072 pixel bytes)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataFormatError(path, f"record {bad} has label {labels[bad]}, "
                                    f"but CIFAR-10 labels are 0..9")
    images = records[:, 1:].reshape(-1, *CIFAR_IMAGE_SHAPE).copy()
    return images, labels

# %% [markdown]
# ## Trying it out
#
# These cells run in the notebook only; they are not exported.

# %%
images, labels = load_digits()
assert images.shape == (1797, 8, 8) and images.dtype == np.float32
assert labels.shape == (1797,) and labels.dtype == np.int64

dataset = TensorDataset(images / 16, labels)
train, test = random_split(dataset, [1437, 360], seed=0)
loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
assert len(loader) == 23                              # ceil(1437 / 64)
x, y = next(iter(loader))
assert x.shape == (64, 8, 8) and y.shape == (64,) and not x.requires_grad
print(loader, x.dtype, y.dtype)
