"""Read a PyTorch state dict (legacy stream or zip format) as numpy arrays, without torch.

A `.pt` file is a pickle, and unpickling can run arbitrary code; this reader resolves only
the handful of globals a plain tensor state dict needs and refuses anything else.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
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


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass(frozen=True)
class _TensorRef:
    key: str
    dtype: type
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _TensorsOnly(pickle.Unpickler):
    def __init__(self, fh: io.BufferedIOBase, origin: Path):
        super().__init__(fh)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise ExportError(f"refusing to load {self.origin}: it references {module}.{name}, not only tensors")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise ExportError(f"refusing to load {self.origin}: unexpected persistent object {pid!r:.60}")
        return (str(pid[2]), pid[1].dtype)


def _rebuild_tensor(storage: tuple[str, type], offset: int, size: tuple, stride: tuple, *_: Any) -> _TensorRef:
    key, dtype = storage
    return _TensorRef(key, dtype, offset, tuple(size), tuple(stride))


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Name -> array, in the file's order."""
    try:
        if zipfile.is_zipfile(path):
            refs, storages = _read_zip(path)
        else:
            refs, storages = _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, KeyError) as exc:
        raise ExportError(f"{path} is not a readable PyTorch state dict ({exc})") from None
    if not isinstance(refs, dict):
        raise ExportError(f"{path} holds a {type(refs).__name__}, not a state dict of tensors")
    return {name: _materialise(ref, storages, path) for name, ref in refs.items()}


def _read_legacy(path: Path) -> tuple[Any, dict[str, bytes]]:
    """The pre-1.6 stream: magic, protocol, sys info, the object pickle, keys, then raw storages."""
    with open(path, "rb") as fh:
        if _TensorsOnly(fh, path).load() != _LEGACY_MAGIC:
            raise ValueError("not a PyTorch file (bad magic number)")
        _TensorsOnly(fh, path).load()  # protocol version
        _TensorsOnly(fh, path).load()  # sys info
        refs = _TensorsOnly(fh, path).load()
        keys = _TensorsOnly(fh, path).load()
        storages = {}
        for key in keys:
            (numel,) = struct.unpack("<q", fh.read(8))
            dtype = _dtype_of(refs, str(key))
            storages[str(key)] = fh.read(numel * np.dtype(dtype).itemsize)
    return refs, storages


def _read_zip(path: Path) -> tuple[Any, dict[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        pkl = next((n for n in zf.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ValueError("zip has no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        refs = _TensorsOnly(io.BytesIO(zf.read(pkl)), path).load()
        keys = {ref.key for ref in refs.values()} if isinstance(refs, dict) else set()
        storages = {key: zf.read(f"{prefix}data/{key}") for key in keys}
    return refs, storages


def _dtype_of(refs: Any, key: str) -> type:
    for ref in refs.values() if isinstance(refs, dict) else ():
        if isinstance(ref, _TensorRef) and ref.key == key:
            return ref.dtype
    raise ValueError(f"storage {key} is not used by any tensor")


def _materialise(ref: Any, storages: dict[str, bytes], path: Path) -> np.ndarray:
    if not isinstance(ref, _TensorRef):
        raise ExportError(f"{path}: entry of type {type(ref).__name__} is not a tensor")
    flat = np.frombuffer(storages[ref.key], dtype=ref.dtype)
    itemsize = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.size, strides=[s * itemsize for s in ref.stride]
    )
    return np.array(view)  # own the memory, C-contiguous
