"""Source(s) -> engine -> results: the streaming core, shared by the CLI and embedding code.

Each source gets a capture thread that reads, decodes and resizes, so that work overlaps
inference. Live sources keep only their newest tick (a stale frame is worse than a dropped
one; replaced ticks are counted as drops) and reconnect with bounded back-off when the feed
is lost. Finite sources never drop: a bounded queue applies back-pressure. One tick of every
source (the rig) goes through the model in one call; `batch` groups ticks of finite sources.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .engine import Engine
from .errors import EdgeftError, FrameError
from .preprocess import prepare_batch
from .sources import Frame, Source, SourceError, StreamLost
from .stats import Stats

log = logging.getLogger("edgeft")


@dataclass(frozen=True)
class PipelineConfig:
    batch: int = 1  # ticks per inference call for finite sources
    queue_ticks: int = 2  # finite sources: ticks decoded ahead (at least `batch`); more only adds latency
    reconnect_first_s: float = 0.5  # first back-off; doubles up to reconnect_max_s
    reconnect_max_s: float = 5.0
    reconnect_timeout_s: float | None = 60.0  # give up on a lost live source (None: never)
    max_ticks: int | None = None


@dataclass(frozen=True)
class Result:
    """One frame's outcome; `valid` False means no outputs, with `reason` saying why."""

    source: str
    frame: int
    t_capture: float  # wall clock at capture, seconds since the epoch
    latency_ms: float  # capture to result
    outputs: dict[str, np.ndarray] = field(repr=False)
    truth: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)  # the frame as captured (BGR)
    valid: bool = True
    reason: str | None = None


@dataclass
class _Prepared:
    frame: Frame
    tensor: np.ndarray | None  # model-ready H x W x 3, or None when the frame is unusable
    reason: str | None = None


_END = object()


class _Latest:
    """A one-item slot: put replaces what is unread (counting it as dropped)."""

    def __init__(self, stats: Stats):
        self._item: object = None
        self._cond = threading.Condition()
        self._stats = stats

    def put(self, item: object, stop: threading.Event) -> None:
        with self._cond:
            if isinstance(self._item, list):
                self._stats.count("drops", len(self._item))
            self._item = item
            self._cond.notify()

    def get(self, timeout: float) -> object:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class _Queue:
    def __init__(self, size: int):
        self._queue: queue.Queue = queue.Queue(maxsize=size)

    def put(self, item: object, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self, timeout: float) -> object:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class _Capture(threading.Thread):
    def __init__(self, source: Source, engine: Engine, config: PipelineConfig, stats: Stats, stop: threading.Event):
        super().__init__(name=f"edgeft-capture-{source.name}", daemon=True)
        self.source, self.engine, self.config, self.stats, self.stop = source, engine, config, stats, stop
        self.live = source.live or source.options.rate is not None
        self.channel = _Latest(stats) if self.live else _Queue(max(config.queue_ticks, config.batch))

    def run(self) -> None:
        period = 1.0 / self.source.options.rate if self.source.options.rate else 0.0
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                tick = self.source.read()
            except StreamLost as lost:
                if self._reconnect(str(lost)):
                    continue
                break
            except EdgeftError as exc:
                self.stats.errors.append(str(exc))
                break
            if tick is None:
                break
            if period:
                next_at += period
                self.stop.wait(max(0.0, next_at - time.monotonic()))
                for frame in tick:  # a paced file frame is "captured" when the camera would deliver it
                    frame.t_capture, frame.t_mono = time.time(), time.monotonic()
            self.channel.put([self._prepare(frame) for frame in tick], self.stop)
        self.channel.put(_END, self.stop)

    def _prepare(self, frame: Frame) -> _Prepared:
        try:
            return _Prepared(frame, prepare_batch([frame.image], self.engine.manifest.input)[0])
        except FrameError as exc:
            return _Prepared(frame, None, str(exc))

    def _reconnect(self, why: str) -> bool:
        log.warning("edgeft: %s; reconnecting", why)
        delay = self.config.reconnect_first_s
        deadline = None if self.config.reconnect_timeout_s is None else time.monotonic() + self.config.reconnect_timeout_s
        while not self.stop.is_set():
            self.stats.count("reconnects")
            try:
                self.source.reopen()
                log.warning("edgeft: %s reconnected", self.source.name)
                return True
            except SourceError:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                self.stats.errors.append(f"{self.source.name}: gave up reconnecting after {self.config.reconnect_timeout_s:g} s")
                return False
            self.stop.wait(delay)
            delay = min(delay * 2, self.config.reconnect_max_s)
        return False


class Pipeline:
    """Iterate results: `for result in Pipeline(source, engine): ...`. Call `stop()` to end early."""

    def __init__(self, sources: Source | Sequence[Source], engine: Engine, config: PipelineConfig = PipelineConfig()):
        self.sources = [sources] if isinstance(sources, Source) else list(sources)
        if not self.sources:
            raise SourceError("a pipeline needs at least one source")
        self.engine, self.config = engine, config
        self.stats = Stats(provider=engine.provider)
        self.ticks = 0  # rig ticks taken from the sources so far
        self._stop = threading.Event()
        self._captures: list[_Capture] = []

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[Result]:
        self._captures = [_Capture(s, self.engine, self.config, self.stats, self._stop) for s in self.sources]
        for capture in self._captures:
            capture.start()
        batch = self.config.batch if not any(c.live for c in self._captures) else 1
        try:
            while not self._stop.is_set():
                group = []
                while len(group) < batch and not self._reached(self.ticks + len(group)):
                    tick = self._next_rig_tick()
                    if tick is None:
                        self._stop.set()
                        break
                    group.append(tick)
                if group:
                    self.ticks += len(group)
                    yield from self._infer([p for tick in group for p in tick])
                if self._reached(self.ticks):
                    break
        finally:
            self._stop.set()
            self.stats.skipped = sum(s.skipped for s in self.sources)
            self.stats.ended = time.monotonic()

    def _reached(self, ticks: int) -> bool:
        return self.config.max_ticks is not None and ticks >= self.config.max_ticks

    def _next_rig_tick(self) -> list[_Prepared] | None:
        """One tick from every source; None once any source has ended."""
        rig: list[_Prepared] = []
        for capture in self._captures:
            item = None
            while item is None and not self._stop.is_set():
                item = capture.channel.get(timeout=0.1)
            if item is None or item is _END:
                return None
            rig.extend(item)
        return rig

    def _infer(self, prepared: list[_Prepared]) -> Iterator[Result]:
        usable = [p for p in prepared if p.tensor is not None]
        outputs = self.engine.run(np.stack([p.tensor for p in usable])) if usable else {}
        done = time.monotonic()
        row = 0
        for p in prepared:
            f = p.frame
            latency = (done - f.t_mono) * 1000.0
            if p.tensor is None:
                result = Result(f.source, f.index, f.t_capture, latency, {}, f.truth, f.image, False, p.reason)
            else:
                result = Result(f.source, f.index, f.t_capture, latency, {k: v[row] for k, v in outputs.items()}, f.truth, f.image)
                row += 1
            self._record(result)
            yield result

    def _record(self, result: Result) -> None:
        stats = self.stats
        stats.frames += 1
        stats.latencies_ms.append(result.latency_ms)
        if not result.valid:
            stats.invalid += 1
            return
        prediction = self.engine.manifest.output("prediction")
        if result.truth is not None and prediction is not None and self.engine.manifest.task == "regression":
            stats.steering_errors.append(float(result.outputs[prediction.name].reshape(-1)[0]) - result.truth)
