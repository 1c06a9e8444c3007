"""The parity proof, carried in the bundle and re-made on the device that runs it.

Export stores `proof.npz`: its probe frames (uint8, model-ready: noise, real photos, and for an
INT8 bundle frames held out from its calibration source) and the FP32 model's outputs on them.
`verify` runs the probes through an engine and holds the agreement to the threshold of the
precision actually running: FP32 by max relative error, BF16 / FP16 / INT8 by feature cosine
(and top-1 agreement for classifiers). Lower precision is only safe where it has been checked.
"""

from __future__ import annotations

import io
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BundleError, EdgeftError
from .verified import record, reusable

PROOF_FILE = "proof.npz"
THRESHOLDS = {"fp32_max_rel": 1e-4, "bf16_min_cosine": 0.999, "fp16_min_cosine": 0.999, "int8_min_cosine": 0.99,
              "min_top1": 0.95}
# The loosest bars a bundle or a caller may set (lower, upper): a manifest is hashed by nothing, so
# a bar lowered until anything passes (cosine 0.5) is refused rather than trusted.
BOUNDS = {"fp32_max_rel": (1e-9, 1e-2), "bf16_min_cosine": (0.99, 1.0), "fp16_min_cosine": (0.99, 1.0),
          "int8_min_cosine": (0.9, 1.0), "min_top1": (0.5, 1.0)}


class VerificationError(EdgeftError):
    """A backend and precision disagree with the bundle's FP32 reference beyond the thresholds."""


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], task: str) -> dict[str, float]:
    """Feature cosine (mean, min), prediction max error and top-1 agreement over the frames."""
    a = ref["features"].reshape(len(ref["features"]), -1).astype(np.float64)
    b = got["features"].reshape(len(got["features"]), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf features (an FP16 overflow) give NaN, refused downstream
        # no absolute epsilon: random-weight backbones give features around 1e-11, and they still have a direction
        cosine = np.where(norms > 0, (a * b).sum(axis=1) / norms, np.where(np.abs(a - b).max(axis=1) == 0, 1.0, 0.0))
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


def max_relative(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> float:
    """max |got - ref| / max |ref| over every output: the export parity measure."""
    worst = 0.0
    for name, expected in ref.items():
        scale = float(np.max(np.abs(expected))) or 1.0
        worst = max(worst, float(np.max(np.abs(got[name].astype(np.float64) - expected))) / scale)
    return worst


def proof_bytes(probes: np.ndarray, reference: dict[str, np.ndarray], holdout: np.ndarray) -> bytes:
    """The proof file: probes, which of them were held out from INT8 calibration, FP32 outputs."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, probes=probes, holdout=holdout, **{f"ref/{k}": v.astype(np.float32) for k, v in reference.items()})
    return buffer.getvalue()


@dataclass(frozen=True)
class ProofData:
    probes: np.ndarray
    holdout: np.ndarray  # bool per probe
    reference: dict[str, np.ndarray]


def check_thresholds(thresholds: dict, where: str, error: type[EdgeftError] = BundleError) -> None:
    """Every bar a known name, a number, and inside BOUNDS."""
    for name, value in thresholds.items():
        if name not in BOUNDS:
            raise error(f"{where}: unknown threshold '{name}' (known: {', '.join(BOUNDS)})")
        low, high = BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and low <= value <= high):
            raise error(f"{where}: {name} {value!r} is refused: it must be a number from {low:g} to {high:g}")


def read_proof(path: Path, manifest) -> ProofData:
    """The probes and references, each checked against the manifest (shapes, outputs), so that a
    proof file that passed its hash yet holds the wrong arrays is one error, not a KeyError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path} cannot be read as probes ({exc}): re-export the bundle") from None
    spec = manifest.input
    probes, holdout = arrays.get("probes"), arrays.get("holdout")
    if probes is None or probes.dtype != np.uint8 or probes.shape[1:] != (spec.height, spec.width, 3):
        raise BundleError(f"{path} holds no uint8 probes of {spec.height}x{spec.width}x3: re-export the bundle")
    if holdout is None or holdout.shape != (len(probes),):
        raise BundleError(f"{path} holds no held-out mask for its {len(probes)} probes: re-export the bundle")
    reference = {k[4:]: v for k, v in arrays.items() if k.startswith("ref/")}
    for name in (o.name for o in manifest.outputs if o.role in ("features", "prediction")):
        if name not in reference or len(reference[name]) != len(probes):
            raise BundleError(f"{path} holds no reference '{name}' outputs for its {len(probes)} probes: re-export the bundle")
    return ProofData(probes, holdout.astype(bool), reference)


@dataclass(frozen=True)
class Verification:
    backend: str  # what ran, as the engine names it (e.g. "OpenVINO CPU bf16", "CPUExecutionProvider fp32")
    precision: str  # fp32 | bf16 | fp16 | int8
    passed: bool
    measure: str  # which check applied
    agreement: dict[str, float]
    thresholds: dict[str, float]
    probes: int
    checked_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    bar: str = ""  # the thresholds that applied, as a reader checks them: "max_rel <= 0.0001"
    reused: bool = False  # a passing record of this very check on this machine, not run again

    def summary(self) -> str:
        numbers = ", ".join(f"{k} {v:.6g}" for k, v in self.agreement.items())
        when = f" (proved on this machine at {self.checked_at}, reused)" if self.reused else ""
        return f"{self.backend} on {self.probes} probes: {numbers}; bar {self.bar} -> {'passed' if self.passed else 'FAILED'}{when}"


def check(precision: str, reference: dict[str, np.ndarray], got: dict[str, np.ndarray], task: str,
          thresholds: dict[str, float]) -> tuple[str, dict[str, float], list[str]]:
    """(measure, agreement, what fell short) for outputs computed at `precision`."""
    if precision == "fp32":
        rel = max_relative(reference, got)
        limit = thresholds["fp32_max_rel"]
        return "max relative error", {"max_rel": rel}, [] if rel <= limit else [f"max relative error {rel:.2e} > {limit:g}"]
    agreement = compare(reference, got, task)
    return "feature cosine", agreement, shortfalls(agreement, thresholds[f"{precision}_min_cosine"], thresholds["min_top1"])


def bar(precision: str, thresholds: dict[str, float], task: str) -> str:
    """The thresholds `check` holds `precision` to, as they are printed."""
    if precision == "fp32":
        return f"max_rel <= {thresholds['fp32_max_rel']:g}"
    text = f"feature cosine >= {thresholds[f'{precision}_min_cosine']:g}"
    return text + (f", top-1 >= {thresholds['min_top1']:g}" if task == "classification" else "")


def verify(engine, thresholds: dict[str, float] | None = None, reuse: bool = False) -> Verification:
    """Run the bundle's probes through `engine`; raise VerificationError when it falls short.
    With `reuse`, a passing record of the same check on this machine stands in for running it."""
    manifest = engine.manifest
    if manifest.proof is None:
        raise VerificationError(f"bundle '{engine.bundle.path}' carries no probes to verify with: re-export it")
    check_thresholds(thresholds or {}, "verification threshold", VerificationError)
    limits = {**THRESHOLDS, **manifest.proof.thresholds, **(thresholds or {})}
    if reuse and (earlier := reusable(manifest.model_sha256, engine.provider, engine.precision, limits, Verification)):
        return earlier
    proof = read_proof(engine.bundle.path / manifest.proof.file, manifest)
    # INT8 is held to frames like the ones it was calibrated for (held out from that source), where there are some.
    select = proof.holdout if engine.precision == "int8" and proof.holdout.any() else slice(None)
    probes, reference = proof.probes[select], {k: v[select] for k, v in proof.reference.items()}
    got = engine.run(probes)
    measure, agreement, low = check(engine.precision, reference, {k: got[k] for k in reference}, manifest.task, limits)
    result = Verification(engine.provider, engine.precision, not low, measure, agreement, limits, len(probes),
                          bar=bar(engine.precision, limits, manifest.task))
    record(manifest.model_sha256, result)
    if low:
        raise VerificationError(f"{engine.provider} disagrees with the bundle's FP32 reference: "
                                f"{'; '.join(low)}; refused")
    return result
