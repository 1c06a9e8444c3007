"""Put weights into a backbone: ImageNet (Keras download/cache), none (seeded random), or a file.

A weights file is first offered to Keras (`model.load_weights`, strict about structure). If
Keras cannot place it - a state dict from PyTorch, or an h5 written by another model that
shares the backbone's layers - its tensors are assigned in order, and every shape must agree.
Either way the manifest records how the weights were loaded and a hash of the tensors.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np

from edgeft.runtime.bundle import sha256_file
from edgeft.runtime.manifest import WeightsInfo

from .errors import ExportError
from .torch_weights import read_state_dict

TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def build_with_weights(construct: Callable[..., keras.Model], name: str, weights: str, seed: int) -> tuple[keras.Model, WeightsInfo]:
    """Call a keras.applications constructor (`construct(weights=...)`) and load `weights` into it."""
    keras.utils.set_random_seed(seed)
    if weights == "none":
        model = construct(weights=None)
        return model, WeightsInfo("none", None, tensors_sha256(model), f"random init, seed {seed}")
    if weights == "imagenet":
        model = _imagenet(construct, name)
        return model, WeightsInfo("imagenet", None, tensors_sha256(model), "keras.applications download/cache")
    model = construct(weights=None)
    return model, load_weights_file(model, Path(weights))


def _imagenet(construct: Callable[..., keras.Model], name: str) -> keras.Model:
    try:
        return construct(weights="imagenet")
    except Exception as exc:  # noqa: BLE001 - keras wraps every download failure in a bare Exception
        if "fetch" not in str(exc).lower():
            raise
        url = re.search(r"https?://\S+", str(exc))
        fname = url.group(0).rstrip(":").rsplit("/", 1)[-1] if url else "the weights file"
        raise ExportError(
            f"ImageNet weights for {name} are not cached and cannot be downloaded (offline?): "
            f"put {fname} in ~/.keras/models/ (or $KERAS_HOME/models/), pass --weights PATH to a "
            "local weights file, or use --weights none for random weights"
        ) from None


def load_weights_file(model: keras.Model, path: Path) -> WeightsInfo:
    if not path.is_file():
        raise ExportError(f"weights file '{path}' does not exist (use --weights imagenet|none|PATH)")
    digest = sha256_file(path)
    if path.suffix in TORCH_SUFFIXES:
        arrays = list(read_state_dict(path).items())
        how = _assign_in_order(model, arrays, path, torch_layout=True)
    elif path.suffix in (".h5", ".hdf5"):
        how = _keras_or_in_order(model, path)
    else:
        raise ExportError(f"weights file '{path}': unsupported type (expected .h5 / .weights.h5 or a PyTorch .pt)")
    return WeightsInfo(str(path), digest, tensors_sha256(model), how)


def tensors_sha256(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _keras_or_in_order(model: keras.Model, path: Path) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(str(path))
        return "keras load_weights"
    except ValueError:
        return _assign_in_order(model, list(_h5_arrays(path)), path, torch_layout=False)


def _h5_arrays(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    import h5py

    found: list[tuple[str, np.ndarray]] = []
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: found.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None)
    yield from sorted(found, key=lambda item: _natural_key(item[0]))


def _natural_key(text: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _assign_in_order(model: keras.Model, arrays: list[tuple[str, np.ndarray]], path: Path, torch_layout: bool) -> str:
    """Give the model's variables, in layer order, the file's float tensors in file order."""
    tensors = [(n, a) for n, a in arrays if a.dtype.kind == "f" and a.ndim > 0]
    targets = [(layer, var) for layer in model.layers for var in layer.weights]
    if len(tensors) < len(targets):
        raise ExportError(
            f"weights file '{path}' has {len(tensors)} tensors but {model.name} needs {len(targets)}: "
            "it is for a different network"
        )
    values = []
    for (layer, var), (name, array) in zip(targets, tensors):
        if torch_layout:
            array = _from_torch_layout(array, depthwise=isinstance(layer, keras.layers.DepthwiseConv2D))
        if tuple(array.shape) != tuple(var.shape):
            raise ExportError(
                f"weights file '{path}' does not fit {model.name}: '{name}' has shape {tuple(array.shape)} "
                f"where {layer.name}/{var.name} needs {tuple(var.shape)}"
            )
        values.append(array)
    for (_, var), value in zip(targets, values):
        var.assign(value.astype(np.float32))
    return f"in order ({len(targets)} of {len(tensors)} tensors)"


def _from_torch_layout(array: np.ndarray, depthwise: bool) -> np.ndarray:
    """OIHW conv / (C,1,kh,kw) depthwise / (out,in) dense kernels to Keras' HWIO / HWC1 / (in,out)."""
    if array.ndim == 4:
        return array.transpose(2, 3, 0, 1) if depthwise else array.transpose(2, 3, 1, 0)
    if array.ndim == 2:
        return array.T
    return array
