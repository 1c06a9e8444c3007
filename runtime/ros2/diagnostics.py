"""What `/diagnostics` says once a second: one status per camera and one for the pipeline.

Levels, as diagnostic_msgs means them and a diagnostic aggregator shows them:
    OK     predictions flowing
    WARN   flowing, but frames are old by the time they are published (`max_age_s`), some could
           not be used, or a publisher with an incompatible QoS is being ignored
    ERROR  every recent frame was unusable, a camera's only publishers can never match (QoS),
           or the pipeline reported an error
    STALE  no prediction for `stale_s` (a camera driver that stopped), or none yet
Everything here is kept in fixed-size windows: a day-long run costs what a minute does.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .options import RosOptions

OK, WARN, ERROR, STALE = 0, 1, 2, 3
WINDOW_S = 2.0  # rates and percentiles cover the last this many seconds


@dataclass
class CameraWindow:
    """One camera's recent results: (arrival, latency ms, stamp age ms at publish, valid)."""

    recent: deque = field(default_factory=lambda: deque(maxlen=512))
    frames: int = 0
    invalid: int = 0
    dropped: int = 0
    last_mono: float | None = None
    last_reason: str | None = None

    def add(self, latency_ms: float, age_ms: float, valid: bool, dropped: int, reason: str | None) -> None:
        now = time.monotonic()
        self.recent.append((now, latency_ms, age_ms, valid))
        self.frames, self.invalid, self.dropped = self.frames + 1, self.invalid + (not valid), self.dropped + dropped
        self.last_mono, self.last_reason = now, reason or self.last_reason

    def window(self, now: float) -> list[tuple[float, float, float, bool]]:
        return [r for r in self.recent if r[0] >= now - WINDOW_S]


@dataclass(frozen=True)
class Status:
    name: str
    hardware_id: str
    level: int
    message: str
    values: dict[str, str]


def camera_status(prefix: str, camera: str, window: CameraWindow | None, health: Any | None, options: RosOptions,
                  now: float, common: dict[str, str]) -> Status:
    """One camera's status; `health` is its ROS 2 source's `CameraHealth`, when it has one."""
    window = window or CameraWindow()
    recent = window.window(now)
    valid = [r for r in recent if r[3]]
    span = recent[-1][0] - recent[0][0] if len(recent) > 1 else 0.0
    fps = (len(recent) - 1) / span if span > 0 else 0.0
    latency = np.percentile([r[1] for r in valid], [50, 99]) if valid else None
    age = float(np.median([r[2] for r in valid])) if valid else None
    values = {"fps": f"{fps:.2f}", "latency_p50_ms": _ms(latency, 0), "latency_p99_ms": _ms(latency, 1),
              "age_ms": "-" if age is None else f"{age:.1f}", "frames": str(window.frames), "invalid": str(window.invalid),
              "dropped": str(window.dropped), **common}
    if health is not None:
        values.update(topic=health.topic, type=health.msgtype, qos=health.qos, publishers=str(health.publishers),
                      received=str(health.received))
    level, message = _level(window, recent, valid, health, options, now)
    if level == OK:
        message = f"{fps:.1f} fps, latency p50 {values['latency_p50_ms']} ms"
    return Status(f"{prefix}: {camera}", health.topic if health is not None else camera, level, message, values)


def _level(window: CameraWindow, recent: list, valid: list, health: Any | None, options: RosOptions,
           now: float) -> tuple[int, str]:
    silent = None if window.last_mono is None else now - window.last_mono
    incompatible = health.incompatible if health is not None else None
    if silent is None or silent >= options.stale_s:
        if incompatible:
            return ERROR, incompatible
        gone = " (no publisher)" if health is not None and not health.publishers else ""
        return STALE, ("waiting for the first frame" if silent is None else f"no frame for {silent:.1f} s") + gone
    if recent and not valid:
        return ERROR, f"frames cannot be used: {window.last_reason}"
    age = float(np.median([r[2] for r in valid])) / 1000 if valid else 0.0
    if age > options.max_age_s:
        return WARN, f"frames are {age * 1000:.0f} ms old when published (a slow link, or clocks apart?)"
    if len(valid) < len(recent):
        return WARN, f"{len(recent) - len(valid)} of the last {len(recent)} frames unusable: {window.last_reason}"
    if incompatible:
        return WARN, incompatible
    return OK, ""


def pipeline_status(prefix: str, cameras: list[Status], stats: Any | None, engine: Any | None, model: str) -> Status:
    """The run as a whole: the model, what runs it, throughput; as bad as its worst camera, ERROR
    when the pipeline itself reported an error."""
    values = {"model": model}
    if engine is not None:
        values.update(backend=engine.provider, precision=engine.precision)
    level, message = max(((s.level, s.message) for s in cameras), default=(STALE, "no camera yet"))
    if stats is not None:
        lat = stats.latency_percentiles()
        values.update(frames=str(stats.frames), fps=f"{stats.fps:.2f}", drops=str(stats.drops), invalid=str(stats.invalid),
                      latency_p50_ms=f"{lat['p50']:.1f}" if lat else "-", latency_p99_ms=f"{lat['p99']:.1f}" if lat else "-")
        if stats.errors:
            level, message = ERROR, stats.errors[-1]
    if level == OK:
        message = f"{len(cameras)} camera{'s' * (len(cameras) != 1)} OK on {values.get('backend', 'this backend')}"
    return Status(f"{prefix}: pipeline", model, level, message, values)


def to_message(statuses: list[Status], header: Any) -> Any:
    """A diagnostic_msgs/DiagnosticArray of `statuses`."""
    from .env import ros

    r = ros()
    array = r.DiagnosticArray(header=header)
    array.status = [r.DiagnosticStatus(level=bytes([s.level]), name=s.name, hardware_id=s.hardware_id, message=s.message,
                                       values=[r.KeyValue(key=k, value=v) for k, v in s.values.items()]) for s in statuses]
    return array


def _ms(values: Any, i: int) -> str:
    return "-" if values is None else f"{values[i]:.1f}"
