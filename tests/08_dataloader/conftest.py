"""Writers for small data files in the exact on-disk formats the readers parse.

They are written here from the format specifications, independently of the
module's readers, so a round trip checks the reader against the format."""
import gzip
import struct

import numpy as np
import pytest

IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
                  np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def encode_idx(array):
    """The IDX encoding of `array`: 0, 0, type code, ndim, big-endian uint32 dims,
    big-endian data."""
    array = np.asarray(array)
    header = struct.pack(">BBBB", 0, 0, IDX_TYPE_CODES[array.dtype], array.ndim)
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def encode_cifar(images, labels):
    """CIFAR-10 binary records: one label byte, then 1024 R, 1024 G, 1024 B pixel bytes."""
    records = b""
    for image, label in zip(images, labels):
        records += bytes([int(label)]) + np.asarray(image, np.uint8).tobytes()
    return records


@pytest.fixture
def write_file(tmp_path):
    """write_file('name', data_bytes, gz=False) -> the path of a new file holding them."""
    def write(name, data, gz=False):
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if gz else data)
        return path
    return write


@pytest.fixture
def idx_bytes():
    """idx_bytes(array) -> the bytes of an IDX file holding it."""
    return encode_idx


@pytest.fixture
def cifar_bytes():
    """cifar_bytes(images (N, 3, 32, 32), labels) -> the bytes of a CIFAR-10 binary batch."""
    return encode_cifar
