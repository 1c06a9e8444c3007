"""The tensors-only PyTorch reader: real legacy file, zip format, and hostile pickles refused."""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgeft.export.errors import ExportError
from edgeft.export.torch_weights import read_state_dict


def test_reads_the_real_legacy_mobilenetv2_state_dict(deepsort_weights: Path) -> None:
    state = read_state_dict(deepsort_weights)
    convs = [k for k, v in state.items() if v.ndim == 4]
    assert len(convs) == 52  # the 52 convolutions of MobileNetV2 without its classifier
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["features.18.1.running_var"].shape == (1280,)
    # trained, not freshly initialised: BN statistics moved away from (0, 1)
    assert not np.allclose(state["features.0.1.running_var"], 1.0)
    assert all(v.flags.c_contiguous for v in state.values())


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of `torch` for pickle to name the globals a real state dict names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise NotImplementedError

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = FloatStorage, _rebuild_tensor_v2, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


def write_zip_state_dict(path: Path, tensors: dict[str, _Tensor], storages: list[_Storage], torch) -> None:
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.array.size)
            return None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(collections.OrderedDict(tensors))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buffer.getvalue())
        for storage in storages:
            zf.writestr(f"archive/data/{storage.key}", storage.array.astype(np.float32).tobytes())


def test_reads_zip_format_with_offsets_and_strides(tmp_path: Path, fake_torch) -> None:
    flat = np.arange(24, dtype=np.float32)
    shared = _Storage("0", flat)
    tensors = {
        "a": _Tensor(shared, 0, (2, 3), (3, 1)),
        "b_transposed": _Tensor(shared, 6, (3, 2), (1, 3)),  # a strided view into the same storage
    }
    path = tmp_path / "zip.pt"
    write_zip_state_dict(path, tensors, [shared], fake_torch)
    state = read_state_dict(path)
    np.testing.assert_array_equal(state["a"], flat[:6].reshape(2, 3))
    np.testing.assert_array_equal(state["b_transposed"], flat[6:12].reshape(2, 3).T)


class _RunsCode:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": _RunsCode()}, protocol=2))
    with pytest.raises(ExportError, match=r"refusing to load .*(posix|os)\.system"):
        read_state_dict(path)


def test_legacy_stream_with_foreign_global_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil_legacy.pt"
    with open(path, "wb") as fh:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}, {"w": _RunsCode()}):
            pickle.dump(obj, fh, protocol=2)
    with pytest.raises(ExportError, match="refusing to load"):
        read_state_dict(path)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x00\x01not a pickle at all")
    with pytest.raises(ExportError, match="not a readable PyTorch state dict"):
        read_state_dict(path)
