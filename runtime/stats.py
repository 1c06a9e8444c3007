"""Run statistics: throughput, latency percentiles, drops, and steering error against truth."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Stats:
    provider: str = ""
    frames: int = 0  # results produced (valid or not)
    invalid: int = 0
    drops: int = 0  # live frames replaced by a newer one before inference
    skipped: int = 0  # unreadable frames in files / logs
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    steering_errors: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, amount: int = 1) -> None:
        """Thread-safe increment for counters updated by capture threads."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_percentiles(self, recent: int | None = None) -> dict[str, float]:
        values = self.latencies_ms[-recent:] if recent else self.latencies_ms
        if not values:
            return {}
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}

    def steering(self) -> dict[str, float]:
        if not self.steering_errors:
            return {}
        errors = np.asarray(self.steering_errors)
        return {"mae": float(np.abs(errors).mean()), "rmse": float(np.sqrt((errors**2).mean())), "n": len(errors)}

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames, "invalid": self.invalid, "elapsed_s": round(self.elapsed_s, 3),
            "fps": round(self.fps, 2), "latency_ms": self.latency_percentiles(), "drops": self.drops,
            "skipped": self.skipped, "reconnects": self.reconnects, "provider": self.provider,
            "steering": self.steering(), "errors": self.errors,
        }
