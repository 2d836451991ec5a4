"""Read a legacy (non-zip) PyTorch state-dict file with the standard library and numpy.

The format is five pickles in a row: magic number, protocol version, system info, the object
(tensors refer to storages through persistent ids), the list of storage keys; then each
storage's raw bytes, prefixed by its element count. No torch is needed at run time.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFormatError(ValueError):
    """The file is not a legacy torch pickle this reader understands."""


class _StorageType:
    def __init__(self, name: str) -> None:
        if name not in _DTYPES:
            raise TorchFormatError(f"unsupported storage type {name}")
        self.dtype = np.dtype(_DTYPES[name])


class _Storage:
    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype, self.numel = dtype, numel
        self.data: np.ndarray | None = None


class _TensorRef:
    """A view into a storage: offset, shape and strides in elements, as torch keeps them."""

    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchFormatError("tensor refers to a storage that was never read")
        if not self.shape:
            return np.array(data[self.offset])
        reach = sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        extent = self.offset + reach + 1
        if extent > data.size:
            raise TorchFormatError("tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:],
            shape=self.shape,
            strides=tuple(s * data.itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, stream: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(stream)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise TorchFormatError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, numel, *_view = pid
        if kind != "storage":
            raise TorchFormatError(f"unknown persistent id kind {kind!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, int(numel))
        return self._storages[key]


# What the pickle and struct modules raise on a file cut short or damaged past its header.
_DAMAGED = (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, KeyError,
            AttributeError, IndexError)


def load_state_dict(path: Path) -> collections.OrderedDict[str, np.ndarray]:
    """Tensors of a legacy torch checkpoint as contiguous numpy arrays, in file order; a
    file that is not one, or is cut short, is a TorchFormatError."""
    with open(path, "rb") as stream:
        try:
            magic = pickle.load(stream)
        except Exception as exc:
            raise TorchFormatError(f"not a torch pickle: {exc}") from None
        if magic != LEGACY_MAGIC:
            raise TorchFormatError("not a legacy torch pickle (zip-format files need torch)")
        try:
            obj = _read_body(stream)
        except TorchFormatError:
            raise
        except _DAMAGED as exc:
            raise TorchFormatError(f"the file is truncated or damaged ({type(exc).__name__}: "
                                   f"{exc})") from None
    if not isinstance(obj, dict):
        raise TorchFormatError("the file does not hold a state dict")
    return collections.OrderedDict(
        (name, value.to_numpy()) for name, value in obj.items() if isinstance(value, _TensorRef)
    )


def _read_body(stream: BinaryIO) -> Any:
    """After the magic number: the pickled object, then each storage's bytes."""
    pickle.load(stream)  # protocol version
    pickle.load(stream)  # system info (endianness, type sizes)
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(stream, storages).load()
    for key in pickle.load(stream):
        storage = storages[key]
        (numel,) = struct.unpack("<q", stream.read(8))
        if numel != storage.numel:
            raise TorchFormatError(f"storage {key}: {numel} elements, expected {storage.numel}")
        raw = stream.read(numel * storage.dtype.itemsize)
        if len(raw) != numel * storage.dtype.itemsize:
            raise TorchFormatError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return obj
