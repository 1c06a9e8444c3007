"""IO binding: frames go to the device once, into buffers that live as long as the engine.

With a plain `session.run` onnxruntime allocates a device buffer for the input and every output
on every call. Bound, each thread keeps one device input buffer per batch size (the uint8 batch
is copied into it in place: a quarter of the bytes a float batch would move, since
preprocessing runs on the device inside the graph) and outputs are allocated where the model
runs, then copied back once. On the CPU provider there is no copy to save, so the engine binds
only on GPU providers unless asked; binding on the CPU is how the path is tested off-GPU.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

DEVICE_OF_PROVIDER = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda", "CPUExecutionProvider": "cpu"}


def wants_binding(provider: str, setting: bool | None) -> bool:
    """The user's choice, else bind exactly when the model runs on a GPU."""
    return DEVICE_OF_PROVIDER.get(provider) == "cuda" if setting is None else setting


@dataclass
class _Bound:
    binding: ort.IOBinding
    frames: ort.OrtValue  # the device buffer the batch is copied into


class BoundRunner:
    """`session.run` through per-thread IO bindings (a binding is not safe to share between threads)."""

    def __init__(self, session: ort.InferenceSession, input_name: str, output_names: list[str], provider: str):
        self._session, self._input, self._outputs = session, input_name, output_names
        self._device = DEVICE_OF_PROVIDER.get(provider, "cpu")
        self._local = threading.local()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        bound = self._bound(batch)
        bound.frames.update_inplace(np.ascontiguousarray(batch))
        self._session.run_with_iobinding(bound.binding)
        return bound.binding.copy_outputs_to_cpu()

    def _bound(self, batch: np.ndarray) -> _Bound:
        cache: dict[tuple[int, ...], _Bound] = self._local.__dict__.setdefault("cache", {})
        if batch.shape not in cache:
            binding = self._session.io_binding()
            frames = ort.OrtValue.ortvalue_from_shape_and_type(batch.shape, np.uint8, self._device, 0)
            binding.bind_ortvalue_input(self._input, frames)
            for name in self._outputs:
                binding.bind_output(name, self._device, 0)
            cache[batch.shape] = _Bound(binding, frames)
        return cache[batch.shape]
