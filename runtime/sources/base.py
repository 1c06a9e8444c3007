"""What every source yields: ticks of frames, one frame per camera of the rig.

A single camera gives ticks of one frame; a driving log gives center/left/right together.
`read()` returns the next tick, or None at the end of a finite stream; a live source that
loses its feed raises `StreamLost` so the pipeline can reconnect it, and one that has nothing
new yet may return an empty tick (read again), so that a stop is never kept waiting.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import EdgeftError
from ..ros2.options import RosOptions
from .decoding import DecodePool
from .jpeg import Fit

log = logging.getLogger("edgeft")


class SourceError(EdgeftError):
    """A source cannot be opened (missing file, absent camera, unreachable URL)."""


class StreamLost(Exception):
    """A live source stopped delivering frames; reconnecting may bring it back."""


@dataclass(frozen=True)
class BagOptions:
    """Recorded ROS bags: how cameras are paired, where truth comes from, which window to read."""

    tolerance_s: float | None = None  # camera pairing window; None: half the median frame period
    skip_incomplete: bool = False  # a tick missing a camera: skip it (True) or run the cameras present
    truth_topic: str | None = None  # default: Udacity's /vehicle/steering_report, when the bag has it
    truth_field: str | None = None  # dotted path in the truth message, e.g. steering_wheel_angle
    start_s: float | None = None  # window, in seconds from the bag's start
    end_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("tolerance_s", "start_s", "end_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise SourceError(f"--{name[:-2].replace('_', '-')} must be a number of seconds, 0 or more, got {value}")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise SourceError(f"--end ({self.end_s:g} s) must come after --start ({self.start_s:g} s)")


@dataclass(frozen=True)
class SourceOptions:
    width: int | None = None  # camera capture size request
    height: int | None = None
    fps: float | None = None  # camera capture rate request
    loop: bool = False  # image folders / globs: start over at the end
    rate: float | None = None  # pace a file source like a camera: ticks per second (bags: x recorded speed)
    stride: int = 1  # keep every Nth frame
    cameras: tuple[str, ...] = ("center", "left", "right")  # driving log cameras to use
    correction: float | None = None  # driving log: steering offset for left (+) / right (-) cameras
    timeout_s: float = 10.0  # network streams: open/read timeout
    decode_workers: int | None = None  # threads decoding a multi-camera tick side by side (None: the cores inference leaves, at least 1)
    bag: BagOptions = BagOptions()  # also how a ROS 2 rig pairs its cameras (tolerance, incomplete ticks)
    ros: RosOptions = RosOptions()

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SourceError(f"--{name} must be at least 1, got {value}")
        for name in ("fps", "rate", "timeout_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise SourceError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if self.stride < 1:
            raise SourceError(f"--stride must be at least 1, got {self.stride}")
        if self.decode_workers is not None and self.decode_workers < 1:
            raise SourceError(f"--decode-workers must be at least 1, got {self.decode_workers}")


@dataclass
class Frame:
    source: str  # camera name within the run (e.g. "center", "camera0")
    index: int  # frame number in the source's own numbering (gaps = stride or drops)
    image: np.ndarray  # BGR uint8 as captured
    t_capture: float = field(default_factory=time.time)  # wall clock, seconds since the epoch
    t_mono: float = field(default_factory=time.monotonic)  # for latency; immune to clock changes
    truth: float | None = None  # ground-truth steering, where the source has it
    stamp: float | None = None  # recording time, seconds since the epoch (recorded sources that know it)
    invalid: str | None = None  # why this frame cannot be used (say, a truncated file); the image is not run
    jpeg: bytes | None = field(default=None, repr=False)  # the JPEG it was decoded from, which outputs pass on as is
    stamp_ns: int | None = None  # `stamp` exactly, in nanoseconds, where the source has it (a ROS header)
    frame_id: str | None = None  # the camera's coordinate frame, as its ROS header names it
    dropped: int = 0  # ticks the source itself let go (newest wins) since the one before this


Tick = list[Frame]


@dataclass(frozen=True)
class Listed:
    """A frame a recorded source will give, named before it is decoded (`Source.listing`)."""

    source: str  # camera name within the run, as the frame will carry it
    index: int  # the frame's number in its source
    ref: str
    stamp: float | None = None


class Source(ABC):
    """Base class: subclasses set `live` and implement `_open`, `read`, `_close`.

    Reading and closing exclude each other (`next_tick` and `close` share a lock), so a source
    is never released under a thread that is inside a read, whatever order callers use.
    """

    live: bool = False

    def __init__(self, name: str, spec: str, options: SourceOptions):
        self.name, self.spec, self.options = name, spec, options
        self.skipped = 0  # frames that could not be read (counted, warned once)
        self._warned = False
        self._opened = False
        self._lock = threading.RLock()
        self.fit: Fit | None = None  # decode JPEG frames for this model input (height, width); None: full size
        self.decoder = DecodePool(options.decode_workers)

    def decode_for(self, fit: Fit | None) -> None:
        """Decode JPEG frames at the largest DCT reduction that stays at or above `fit`, the
        model's (height, width) (`sources.jpeg`); None decodes them at full size. Set it before
        reading starts: the pipeline does, with its engine's input size."""
        self.fit = fit

    @property
    def total(self) -> int | None:
        """Ticks this source will give, when known (for progress bars)."""
        return None

    @property
    def camera_names(self) -> list[str]:
        """The cameras its frames will name (an open rig's, for outputs named per camera)."""
        return [self.name]

    def open(self) -> Source:
        if not self._opened:
            self._open()
            self._opened = True
        return self

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self._close()
                self._opened = False
            self.decoder.close()

    def next_tick(self) -> Tick | None:
        """`read()` under the source's lock; None once the source is closed."""
        with self._lock:
            return self.read() if self._opened else None

    def end_notes(self) -> list[str]:
        """Said in the summary after the end: what was announced but never came (a video shorter
        than its header says), how a rig was paired."""
        return []

    def listing(self) -> Iterator[list[Listed]]:
        """The ticks a read would give, as references (`sources.refs`) and without decoding: what
        lets a cluster split a recorded source. Live sources have nothing to list in advance."""
        raise SourceError(f"'{self.spec}' is live: its frames can only be read as they come")

    def replay_offset(self, tick: Tick) -> float | None:
        """Seconds into the recording at which `tick` happened, for sources that know (bags):
        `--rate` then replays at that pace; otherwise ticks are paced evenly at `rate` Hz."""
        return None

    def reopen(self) -> None:
        self.close()
        self.open()

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def read(self) -> Tick | None: ...

    def _close(self) -> None:
        return None

    def skip(self, what: str) -> None:
        """Count an unreadable frame; warn the first time only, so a bad log does not flood."""
        self.skipped += 1
        if not self._warned:
            log.warning("edgeft: %s: skipping unreadable %s (further ones are counted, not shown)", self.name, what)
            self._warned = True

    def __enter__(self) -> Source:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
