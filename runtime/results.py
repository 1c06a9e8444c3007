"""What comes out of the model for one frame, and what it means: one `decode` for every reader.

Sinks, the overlay, the console and steering scoring all need "which label, what score, which
steering angle"; `decode` answers that once from the manifest, so they cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .manifest import Manifest


@dataclass(frozen=True)
class Result:
    """One frame's outcome. `valid` False means no outputs, with `reason` saying why.

    Telemetry as openpilot's modeld keeps it: `dropped` counts this source's frames replaced by
    newer ones since its previous result (live sources), and `age_ms` is how old the frame was
    when inference started.
    """

    source: str
    frame: int
    t_capture: float  # wall clock at capture, seconds since the epoch
    latency_ms: float  # capture to result
    outputs: dict[str, np.ndarray] = field(repr=False)
    truth: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)  # the frame as captured (BGR)
    valid: bool = True
    reason: str | None = None
    stamp: float | None = None  # recording time (seconds since the epoch) for recorded sources
    dropped: int = 0
    age_ms: float = 0.0
    jpeg: bytes | None = field(default=None, repr=False)  # the frame's recorded JPEG, when it was one
    stamp_ns: int | None = None  # `stamp` exactly, in nanoseconds (a ROS header's), where known
    frame_id: str | None = None  # the camera's coordinate frame (a ROS header's)


@dataclass(frozen=True)
class Decoded:
    """The prediction read the manifest's way: values, and label/score or steering by task."""

    values: tuple[float, ...] = ()  # the prediction output, flattened
    label: str | None = None  # classifiers: the best class's label (its index when there are no labels)
    index: int | None = None  # ... and its index
    score: float | None = None
    steering: float | None = None


def decode(manifest: Manifest, outputs: dict[str, np.ndarray]) -> Decoded:
    """Label and score for classifiers, steering for regression heads, nothing for features."""
    spec = manifest.output("prediction")
    if spec is None or spec.name not in outputs:
        return Decoded()
    values = np.asarray(outputs[spec.name], np.float64).reshape(-1)
    flat = tuple(float(v) for v in values)
    if manifest.task == "classification" and values.size > 1:
        best = int(values.argmax())
        label = manifest.labels[best] if manifest.labels else str(best)
        return Decoded(flat, label, best, flat[best])
    if manifest.task == "regression" and values.size >= 1:
        return Decoded(flat, steering=flat[0])
    return Decoded(flat)


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: such a value is written as null."""
    return value if math.isfinite(value) else None
