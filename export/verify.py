"""The parity proof: Keras and onnxruntime on the same uint8 probes, random and real photos.

Keras gets the probes through Keras' own `preprocess_input`; onnxruntime gets the raw uint8
through the runtime's `Engine` - the same path users run - so the folded preprocessing, the
conversion and the runtime's batching are all under test.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from edgeft.runtime.engine import Engine
from edgeft.runtime.manifest import ParityRecord

from .errors import ExportError

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")  # ship inside scikit-image's wheel


def probe_frames(height: int, width: int, seed: int = 0, random_count: int = 2) -> np.ndarray:
    """uint8 RGB probes at model resolution: seeded noise plus real photos."""
    from skimage import data

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(random_count, height, width, 3), dtype=np.uint8)
    photos = [cv2.resize(getattr(data, name)(), (width, height), interpolation=cv2.INTER_AREA) for name in PHOTOS]
    return np.concatenate([noise, np.stack(photos)])


def measure_parity(
    engine: Engine, reference: Callable[[np.ndarray], dict[str, np.ndarray]], probes: np.ndarray
) -> tuple[tuple[ParityRecord, ...], dict[str, np.ndarray]]:
    """Keras vs the runtime per output, and the runtime's outputs (the reference the bundle carries)."""
    expected = reference(probes)
    actual = engine.run(probes)
    records = []
    for name, ref in expected.items():
        got = actual[name]
        if got.shape != ref.shape:
            raise ExportError(f"output '{name}': onnx shape {got.shape} != keras shape {ref.shape}")
        max_abs = float(np.max(np.abs(got.astype(np.float64) - ref)))
        scale = float(np.max(np.abs(ref)))
        records.append(ParityRecord(name, max_abs, max_abs / scale if scale > 0 else max_abs, len(probes)))
    return tuple(records), actual


def failures(records: tuple[ParityRecord, ...], tolerance: float) -> list[str]:
    return [f"{r.output}: rel {r.max_rel:.2e} (abs {r.max_abs:.2e})" for r in records if r.max_rel > tolerance]
