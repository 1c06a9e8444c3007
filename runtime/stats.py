"""Run statistics in fixed-size structures, so a day-long run costs the same memory as a minute.

Latencies go into a log-spaced histogram (percentiles within about 1%) plus a short window of
recent values for the live display; errors against ground truth are running sums; messages
are capped. Nothing here grows with the number of frames.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .histogram import Histogram
from .profile import Profile

MESSAGES_KEPT = 20


@dataclass
class ErrorSummary:
    """Prediction minus truth, as running sums: MAE and RMSE without keeping the errors."""

    n: int = 0
    sum_abs: float = 0.0
    sum_sq: float = 0.0

    def add(self, error: float) -> None:
        if math.isfinite(error):
            self.n += 1
            self.sum_abs += abs(error)
            self.sum_sq += error * error

    def as_dict(self) -> dict[str, float]:
        if not self.n:
            return {}
        return {"mae": self.sum_abs / self.n, "rmse": math.sqrt(self.sum_sq / self.n), "n": self.n}


@dataclass
class Stats:
    provider: str = ""
    frames: int = 0  # results produced (valid or not)
    invalid: int = 0
    drops: int = 0  # live frames replaced by a newer one before inference
    skipped: int = 0  # unreadable frames in files / logs
    reconnects: int = 0
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=MESSAGES_KEPT))
    notes: deque[str] = field(default_factory=lambda: deque(maxlen=MESSAGES_KEPT))  # e.g. a video shorter than announced
    latency: Histogram = field(default_factory=Histogram)
    recent_ms: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    steering_error: ErrorSummary = field(default_factory=ErrorSummary)
    profile: Profile = field(default_factory=Profile)  # per-stage time: where the run's time went
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, amount: int = 1) -> None:
        """Thread-safe increment for counters updated by capture threads."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def observe(self, result) -> None:
        """Count one result (a `Result`) and its latency."""
        self.frames += 1
        self.invalid += not result.valid
        self.latency.add(result.latency_ms)
        self.recent_ms.append(result.latency_ms)

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_percentiles(self, recent: bool = False) -> dict[str, float]:
        """p50/p90/p99 over the whole run, or over the last few hundred results."""
        if recent:
            if not self.recent_ms:
                return {}
            values = np.percentile(np.fromiter(self.recent_ms, float), [50, 90, 99])
        elif self.latency.count:
            values = self.latency.percentiles((50, 90, 99))
        else:
            return {}
        return {"p50": float(values[0]), "p90": float(values[1]), "p99": float(values[2])}

    def steering(self) -> dict[str, float]:
        return self.steering_error.as_dict()

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames, "invalid": self.invalid, "elapsed_s": round(self.elapsed_s, 3),
            "fps": round(self.fps, 2), "latency_ms": self.latency_percentiles(), "drops": self.drops,
            "skipped": self.skipped, "reconnects": self.reconnects, "provider": self.provider,
            "steering": self.steering(), "profile": self.profile.as_dict(), "errors": list(self.errors),
            "notes": list(self.notes),
        }


def steering_scorer(manifest, stats: Stats):
    """An observer adding prediction - truth to `stats` for regression results that carry truth."""
    from .results import decode

    def observe(result) -> None:
        if manifest.task == "regression" and result.valid and result.truth is not None:
            steering = decode(manifest, result.outputs).steering
            if steering is not None:
                stats.steering_error.add(steering - result.truth)

    return observe
