"""Drive telemetry in fixed-size structures: what a summary and the live line show.

Round trip is telemetry in (read off the socket) to command out (written to it), per answer;
decode and inference are per frame run. Percentiles come from log-spaced histograms, the live
line from a short window; safe stops are counted per reason of a fixed set. Nothing grows with
the number of ticks.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edgeft.runtime import Histogram

from .safety import REASONS

MESSAGES_KEPT = 20


def _ms(histogram: Histogram) -> dict[str, float]:
    if not histogram.count:
        return {}
    p50, p90, p99 = histogram.percentiles((50, 90, 99))
    return {"p50": round(p50, 3), "p90": round(p90, 3), "p99": round(p99, 3)}


@dataclass
class Score:
    """The closed-loop score a simulator reports itself (Donkey's cte and hit)."""

    frames: int = 0
    sum_abs_cte: float = 0.0
    max_abs_cte: float = 0.0
    hits: int = 0  # frames that reported a collision

    def add(self, cte: float | None, hit: str | None) -> None:
        if cte is not None and math.isfinite(cte):
            self.frames += 1
            self.sum_abs_cte += abs(cte)
            self.max_abs_cte = max(self.max_abs_cte, abs(cte))
        if hit not in (None, "", "none"):
            self.hits += 1

    def as_dict(self) -> dict[str, float]:
        if not self.frames and not self.hits:
            return {}
        mean = self.sum_abs_cte / self.frames if self.frames else float("nan")
        return {"mean_abs_cte": round(mean, 4), "max_abs_cte": round(self.max_abs_cte, 4), "hits": self.hits,
                "frames": self.frames}


@dataclass
class DriveStats:
    simulator: str = ""
    provider: str = ""
    sessions: int = 0  # simulator connections
    telemetry: int = 0  # frames received
    ticks: int = 0  # commands sent (safe stops included)
    manual: int = 0  # null telemetries answered with `manual` (Udacity)
    drops: int = 0  # frames replaced by a newer one before they were run (Donkey)
    outputs_dropped: int = 0  # ticks the outputs could not keep up with
    safe_stops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    round_trip: Histogram = field(default_factory=Histogram)
    decode: Histogram = field(default_factory=Histogram)
    inference: Histogram = field(default_factory=Histogram)
    recent_ms: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    score: Score = field(default_factory=Score)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=MESSAGES_KEPT))
    notes: deque[str] = field(default_factory=lambda: deque(maxlen=MESSAGES_KEPT))
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def answered(self, round_trip_ms: float, stop: str | None) -> None:
        with self._lock:
            self.ticks += 1
            self.round_trip.add(round_trip_ms)
            self.recent_ms.append(round_trip_ms)
            if stop in self.safe_stops:
                self.safe_stops[stop] += 1

    def stopped_for(self, reason: str) -> None:
        """A safe stop sent on the driver's own initiative (no frame to answer)."""
        with self._lock:
            self.ticks += 1
            self.safe_stops[reason] += 1

    def ran(self, decode_ms: float, inference_ms: float | None) -> None:
        with self._lock:
            self.decode.add(decode_ms)
            if inference_ms is not None:
                self.inference.add(inference_ms)

    def scored(self, cte: float | None, hit: str | None) -> None:
        with self._lock:
            self.score.add(cte, hit)

    @property
    def stopped(self) -> int:
        return sum(self.safe_stops.values())

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def recent(self) -> dict[str, float]:
        with self._lock:
            if not self.recent_ms:
                return {}
            p50, p99 = np.percentile(np.fromiter(self.recent_ms, float), [50, 99])
        return {"p50": float(p50), "p99": float(p99)}

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            return {
                "simulator": self.simulator, "provider": self.provider, "sessions": self.sessions, "telemetry": self.telemetry,
                "ticks": self.ticks, "manual": self.manual, "drops": self.drops, "elapsed_s": round(self.elapsed_s, 3),
                "ticks_per_s": round(self.rate, 2), "round_trip_ms": _ms(self.round_trip), "decode_ms": _ms(self.decode),
                "inference_ms": _ms(self.inference), "safe_stops": {k: v for k, v in self.safe_stops.items() if v},
                "score": self.score.as_dict(), "outputs_dropped": self.outputs_dropped, "errors": list(self.errors),
                "notes": list(self.notes),
            }
