"""How closely a reduced-precision graph (INT8, FP16) agrees with the FP32 graph it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeft.runtime.bundle import Bundle
from edgeft.runtime.engine import Engine, EngineConfig
from edgeft.runtime.manifest import Manifest
from edgeft.runtime.proof import compare


def measure_agreement(reference: bytes, candidate: bytes, manifest: Manifest, frames: np.ndarray,
                      device: str = "cpu") -> dict[str, float]:
    """The reference on the CPU against the candidate on `device`, where it is meant to run."""
    return compare(run_model(reference, manifest, frames), run_model(candidate, manifest, frames, device), manifest.task)


def run_model(model: bytes, manifest: Manifest, frames: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Outputs through the runtime's Engine (static batches padded as in use), one session at a
    time: an idle session's spinning threads would steal the cores from the running one."""
    engine = Engine(Bundle(Path(manifest.name), manifest, model), EngineConfig(device=device, strict=True))
    return engine.run(frames)
