"""Recorded cameras paired by header stamp, and ground truth interpolated onto frame stamps.

Both work on a stream in record order with bounded buffers: a frame waits only until every
camera (and the truth topic) has moved past the window it could still be paired in.

Pairing: the earliest waiting frame anchors a tick; each other camera contributes its frame
nearest the anchor within `tolerance` (default: half the median frame period, measured on the
first frames). A camera with no frame in the window makes the tick incomplete: it is skipped or
run on the cameras present, by policy, and counted. A far frame is never paired.

Live cameras (ROS 2 topics) use the same rule `eager`ly: a tick that already has a frame of every
camera inside its window is given at once, instead of when the window closes (up to a frame
period later), since a frame still to come can only be later, so farther from the anchor.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WARMUP_FRAMES = 16  # per camera, to measure the frame period when no tolerance is given
STALL_S = 1.0  # a camera (or truth) this far behind the others is not waited for


@dataclass(order=True)
class Waiting:
    stamp: float
    camera: str = field(compare=False)
    payload: Any = field(compare=False)


@dataclass(frozen=True)
class Tick:
    frames: list[Waiting]
    missing: tuple[str, ...]  # cameras without a frame inside the tolerance

    @property
    def skew(self) -> float:
        stamps = [f.stamp for f in self.frames]
        return max(stamps) - min(stamps)


class Synchroniser:
    def __init__(self, cameras: list[str], tolerance: float | None = None, skip_incomplete: bool = False, eager: bool = False):
        self.cameras, self.tolerance, self.skip_incomplete, self.eager = cameras, tolerance, skip_incomplete, eager
        self._waiting: dict[str, list[Waiting]] = {c: [] for c in cameras}
        self._latest = {c: float("-inf") for c in cameras}  # newest stamp seen per camera
        self._warmup: dict[str, list[float]] = {c: [] for c in cameras}
        self.finished = False
        self.incomplete = 0

    def add(self, camera: str, stamp: float, payload: Any) -> None:
        bisect.insort(self._waiting[camera], Waiting(stamp, camera, payload))  # stamps may jitter out of record order
        self._latest[camera] = max(self._latest[camera], stamp)
        if self.tolerance is None:
            self._warmup[camera].append(stamp)

    def finish(self) -> None:
        self.finished = True

    @property
    def now(self) -> float:
        return max(self._latest.values())

    def pop(self) -> Tick | None:
        """The next tick whose window is closed, or None until more frames arrive (or none are left)."""
        while True:
            if not self._measure_tolerance():
                return None
            heads = [w[0] for w in self._waiting.values() if w]
            if not heads:
                return None
            anchor = min(heads)
            if not self._window_closed(anchor.stamp) and not (self.eager and self._complete(anchor.stamp)):
                return None
            tick = self._take(anchor)
            if tick.missing:
                self.incomplete += 1
                if self.skip_incomplete and len(self.cameras) > 1:
                    continue
            return tick

    def _measure_tolerance(self) -> bool:
        """Half the median frame period, once every camera has shown a few frames (or the input ended)."""
        if self.tolerance is not None:
            return True
        if not self.finished:
            if self.now == float("-inf"):  # no frame yet (another topic's message came first): nothing to measure
                return False
            if any(len(s) < WARMUP_FRAMES for c, s in self._warmup.items() if self._latest[c] > self.now - STALL_S):
                return False
        periods = [statistics.median(b - a for a, b in zip(s, s[1:])) for s in self._warmup.values() if len(s) > 2]
        self.tolerance = 0.5 * statistics.median(periods) if periods else 0.05
        self._warmup.clear()
        return True

    def _window_closed(self, anchor: float) -> bool:
        edge = anchor + self.tolerance
        return self.finished or all(latest > edge or latest < self.now - STALL_S for latest in self._latest.values())

    def _near(self, waiting: list[Waiting], anchor: float) -> list[Waiting]:
        return [w for w in waiting[:4] if abs(w.stamp - anchor) <= self.tolerance]

    def _complete(self, anchor: float) -> bool:
        return all(self._near(waiting, anchor) for waiting in self._waiting.values())

    def _take(self, anchor: Waiting) -> Tick:
        frames, missing = [], []
        for camera, waiting in self._waiting.items():
            near = self._near(waiting, anchor.stamp)
            if near:
                best = min(near, key=lambda w: abs(w.stamp - anchor.stamp))
                waiting.remove(best)
                frames.append(best)
            else:
                missing.append(camera)
        order = {c: i for i, c in enumerate(self.cameras)}
        return Tick(sorted(frames, key=lambda w: order[w.camera]), tuple(missing))


class TruthTrack:
    """A scalar signal (say, steering) sampled at its own rate, read at any stamp by linear
    interpolation; None outside the samples' time range. Old samples are let go. A sample that
    is not finite (NaN, infinity) is no measurement: it is left out and counted, so it cannot
    spread into the frames around it."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self.finished = False
        self.seen = 0
        self.not_finite = 0

    def add(self, stamp: float, value: float) -> None:
        if not math.isfinite(value):
            self.not_finite += 1
            return
        if self._samples and stamp < self._samples[-1][0]:
            return  # out of order: keep the signal monotonic in time
        self._samples.append((stamp, value))
        self.seen += 1

    def ready(self, stamp: float, now: float) -> bool:
        """Whether `value_at(stamp)` is final: a later sample exists, or none will come in time."""
        return self.finished or (bool(self._samples) and self._samples[-1][0] >= stamp) or now > stamp + STALL_S

    def value_at(self, stamp: float) -> float | None:
        samples = self._samples
        if not samples or stamp < samples[0][0] or stamp > samples[-1][0]:
            return None
        times = [s[0] for s in samples]
        i = bisect.bisect_left(times, stamp)
        if times[i] == stamp:
            return samples[i][1]
        (t0, v0), (t1, v1) = samples[i - 1], samples[i]
        return v0 + (v1 - v0) * (stamp - t0) / (t1 - t0)

    def release_before(self, stamp: float) -> None:
        """Forget samples no frame at or after `stamp` can need (one is kept before it)."""
        while len(self._samples) > 1 and self._samples[1][0] <= stamp:
            self._samples.popleft()
