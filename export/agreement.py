"""Run a graph not yet written to a bundle through the runtime's Engine, to compare it with another."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeft.runtime.bundle import Bundle
from edgeft.runtime.engine import Engine, EngineConfig
from edgeft.runtime.manifest import Manifest


def run_model(model: bytes, manifest: Manifest, frames: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Outputs through the runtime's Engine (static batches padded as in use), one session at a
    time: an idle session's spinning threads would steal the cores from the running one."""
    engine = Engine(Bundle(Path(manifest.name), manifest, model), EngineConfig(device=device, strict=True))
    return engine.run(frames)
