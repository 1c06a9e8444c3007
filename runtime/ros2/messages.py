"""One result as ROS 2 messages, per camera under a prefix (`/edgeft`, or `/edgeft/<camera>` in a rig):

    steering            std_msgs/Float32            regression heads
    label, score        std_msgs/String, Float32    classifiers
    prediction          std_msgs/String             JSON: header, validity, values, label/score/steering, timing
    features            std_msgs/Float32MultiArray  opt-in (--ros-features): large
    drive               ackermann_msgs/AckermannDriveStamped   --ros-types ackermann (where installed)
    classification      vision_msgs/Classification             --ros-types vision (where installed)

std_msgs types have no header, so the source image's header (stamp and frame_id) travels in the
JSON and in the stamped richer types; every topic of a camera gets its messages in frame order.
An invalid result publishes only its JSON (valid false, with the reason): never a made-up value.
"""

from __future__ import annotations

import array
import importlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..manifest import Manifest
from ..results import Decoded, Result, finite_or_none
from .env import ros
from .options import RosError

RICHER = {  # --ros-types name: (module, message, the task it fits, where to get it)
    "ackermann": ("ackermann_msgs.msg", "AckermannDriveStamped", "regression", "ros-<distro>-ackermann-msgs"),
    "vision": ("vision_msgs.msg", "Classification", "classification", "ros-<distro>-vision-msgs"),
}


def header_of(result: Result) -> Any:
    """The source image's header: its exact stamp and frame_id when it came from ROS; otherwise
    the recording time (or capture time) and the camera's name."""
    stamp_ns = result.stamp_ns
    if stamp_ns is None:
        stamp_ns = int(round((result.stamp if result.stamp is not None else result.t_capture) * 1e9))
    header = ros().Header(frame_id=result.frame_id or result.source)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def prediction_json(result: Result, decoded: Decoded, header: Any, model: str) -> str:
    body = {"header": {"stamp": {"sec": header.stamp.sec, "nanosec": header.stamp.nanosec}, "frame_id": header.frame_id},
            "camera": result.source, "frame": result.frame, "valid": result.valid, "reason": result.reason, "model": model,
            "prediction": [finite_or_none(v) for v in decoded.values], "label": decoded.label,
            "score": _finite(decoded.score), "steering": _finite(decoded.steering), "truth": _finite(result.truth),
            "latency_ms": round(result.latency_ms, 3), "age_ms": round(result.age_ms, 3), "dropped": result.dropped}
    return json.dumps(body, allow_nan=False)


def _finite(value: float | None) -> float | None:
    return None if value is None else finite_or_none(value)


def features_message(values: np.ndarray, name: str) -> Any:
    r = ros()
    flat = np.ascontiguousarray(values, np.float32).reshape(-1)
    msg = r.Float32MultiArray(data=array.array("f", flat.tobytes()))
    msg.layout.dim = [r.MultiArrayDimension(label=name, size=flat.size, stride=flat.size)]
    return msg


@dataclass(frozen=True)
class Richer:
    name: str
    topic: str  # under the camera's prefix
    msg_type: Any


def richer_types(names: tuple[str, ...], manifest: Manifest | None = None) -> list[Richer]:
    """The richer stamped types asked for, imported; one that is missing, or (given the
    manifest) does not fit the bundle's task, is one line."""
    found = []
    for name in names:
        module, message, task, package = RICHER[name]
        if manifest is not None and manifest.task != task:
            raise RosError(f"--ros-types {name} publishes {message}, which needs a {task} bundle; '{manifest.name}' is {manifest.task}")
        try:
            msg_type = getattr(importlib.import_module(module), message)
        except ImportError:
            raise RosError(f"--ros-types {name} needs {module.split('.')[0]}, which is not installed "
                           f"(no PyPI wheel: install {package} with your ROS 2)") from None
        found.append(Richer(name, "drive" if name == "ackermann" else "classification", msg_type))
    return found


def richer_message(kind: Richer, decoded: Decoded, header: Any) -> Any:
    if kind.name == "ackermann":
        msg = kind.msg_type(header=header)
        msg.drive.steering_angle = float(decoded.steering)
        return msg
    hypothesis = importlib.import_module("vision_msgs.msg").ObjectHypothesis(class_id=decoded.label, score=float(decoded.score))
    return kind.msg_type(header=header, results=[hypothesis])
