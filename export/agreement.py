"""How closely a reduced-precision graph (INT8, FP16) agrees with the FP32 graph it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeft.runtime.bundle import Bundle
from edgeft.runtime.engine import Engine, EngineConfig
from edgeft.runtime.manifest import Manifest


def measure_agreement(reference: bytes, candidate: bytes, manifest: Manifest, frames: np.ndarray,
                      device: str = "cpu") -> dict[str, float]:
    """The reference on the CPU against the candidate on `device`, where it is meant to run."""
    return compare(run_model(reference, manifest, frames), run_model(candidate, manifest, frames, device), manifest.task)


def run_model(model: bytes, manifest: Manifest, frames: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Outputs through the runtime's Engine (static batches padded as in use), one session at a
    time: an idle session's spinning threads would steal the cores from the running one."""
    engine = Engine(Bundle(Path(manifest.name), manifest, model), EngineConfig(device=device, strict=True))
    return engine.run(frames)


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], task: str) -> dict[str, float]:
    """Feature cosine (mean, min), prediction max error and top-1 agreement over the frames."""
    a, b = ref["features"].reshape(len(ref["features"]), -1), got["features"].reshape(len(got["features"]), -1)
    with np.errstate(invalid="ignore"):  # inf features (an FP16 overflow) give NaN, refused downstream
        cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    result = {"feature_cosine_mean": float(cosine.mean()), "feature_cosine_min": float(cosine.min())}
    if "prediction" in ref:
        result["prediction_max_abs_error"] = float(np.abs(ref["prediction"] - got["prediction"]).max())
        if task == "classification":
            result["top1_agreement"] = float((ref["prediction"].argmax(-1) == got["prediction"].argmax(-1)).mean())
    return result


def shortfalls(agreement: dict[str, float], min_cosine: float, min_top1: float) -> list[str]:
    """What falls below the thresholds; NaN (an overflow) falls below anything."""
    low = []
    cosine = agreement["feature_cosine_mean"]
    if not cosine >= min_cosine:
        low.append(f"feature cosine {cosine:.4f} < {min_cosine}")
    if "top1_agreement" in agreement and not agreement["top1_agreement"] >= min_top1:
        low.append(f"top-1 agreement {agreement['top1_agreement']:.3f} < {min_top1}")
    return low
