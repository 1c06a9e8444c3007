"""Source(s) -> engine -> results: the streaming core, shared by the CLI and embedding code.

Each source gets a capture thread that reads, decodes and resizes, so that work overlaps
inference. JPEG frames are decoded at the size the model needs (`decode="reduced"`, the default:
libjpeg-turbo's DCT scaling, `sources.jpeg`), and a source with several cameras decodes a tick's
frames side by side (`sources.decoding`). Every stage's time goes into `stats.profile`. Live sources keep only their newest tick (a stale frame is worse than a dropped
one; replaced ticks are counted as drops, per result) and reconnect with bounded back-off when
the feed is lost. Finite sources never drop: a bounded queue applies back-pressure. One tick of
every source (the rig) goes through the model in one call; `batch` groups ticks of finite sources.

The pipeline owns its threads. However the loop ends (end of stream, `break`, an exception,
`stop()`, `max_ticks`), they are stopped and joined before the pipeline lets go, so a source is
never released while a thread is still reading it.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .engine import Engine
from .errors import EdgeftError, FrameError
from .preprocess import prepare_batch
from .results import Result
from .sources import Frame, Source, SourceError, StreamLost
from .sources.jpeg import check_mode, fit_for
from .stats import Stats, steering_scorer

log = logging.getLogger("edgeft")


@dataclass(frozen=True)
class PipelineConfig:
    batch: int = 1  # ticks per inference call for finite sources
    queue_ticks: int = 2  # finite sources: ticks decoded ahead (at least `batch`); more only adds latency
    reconnect_first_s: float = 0.5  # first back-off; doubles up to reconnect_max_s
    reconnect_max_s: float = 5.0
    reconnect_timeout_s: float | None = 60.0  # give up on a lost live source (None: never)
    max_ticks: int | None = None
    join_timeout_s: float = 10.0  # how long stopping waits for a capture thread inside a read
    decode: str = "reduced"  # JPEG frames: "reduced" (DCT-scaled to the model's input) or "full" (then resized)

    def __post_init__(self) -> None:
        check_mode(self.decode)
        if self.batch < 1 or self.queue_ticks < 1:
            raise EdgeftError("batch and queue_ticks must be at least 1")
        if self.max_ticks is not None and self.max_ticks < 0:
            raise EdgeftError(f"max_ticks (--max-frames) must be 0 or more, got {self.max_ticks}")
        for name in ("reconnect_first_s", "reconnect_max_s", "join_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise EdgeftError(f"{name} must be a positive number of seconds, got {value}")


@dataclass
class _Prepared:
    frame: Frame
    tensor: np.ndarray | None  # model-ready H x W x 3, or None when the frame is unusable
    reason: str | None = None
    dropped: int = 0  # this source's ticks replaced by newer ones just before this one


_END = object()


class _Latest:
    """A one-item slot: put replaces what is unread, counting it as dropped. The end of the
    stream does not replace the last tick: it is taken after it."""

    def __init__(self, stats: Stats):
        self._item: object = None
        self._ended = False
        self._dropped = 0
        self._cond = threading.Condition()
        self._stats = stats

    def put(self, item: object, stop: threading.Event) -> None:
        with self._cond:
            if item is _END:
                self._ended = True
            else:
                if isinstance(self._item, list):
                    self._stats.count("drops", len(self._item))
                    self._dropped += 1
                self._item = item
            self._cond.notify()

    def get(self, timeout: float) -> object:
        with self._cond:
            if self._item is None and not self._ended:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            if item is None and self._ended:
                return _END
            if isinstance(item, list):
                for prepared in item:
                    prepared.dropped += self._dropped
                self._dropped = 0
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
    def __init__(self, source: Source, engine: Engine, config: PipelineConfig, stats: Stats, stop: threading.Event,
                 skip: Callable[[Frame], bool] | None):
        super().__init__(name=f"edgeft-capture-{source.name}", daemon=True)
        self.source, self.engine, self.config, self.stats, self.stop, self.skip = source, engine, config, stats, stop, skip
        self.live = source.live or source.options.rate is not None
        self.channel = _Latest(stats) if self.live else _Queue(max(config.queue_ticks, config.batch))

    def run(self) -> None:
        try:
            self._loop()
        except EdgeftError as exc:
            self.stats.errors.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a capture thread must always end the stream it feeds
            log.exception("edgeft: capture of %s failed", self.source.name)
            self.stats.errors.append(f"{self.source.name}: capture failed ({type(exc).__name__}: {exc})")
        finally:
            self.channel.put(_END, self.stop)

    def _loop(self) -> None:
        period = 1.0 / self.source.options.rate if self.source.options.rate else 0.0
        started = next_at = time.monotonic()
        decoder, profile = self.source.decoder, self.stats.profile
        while not self.stop.is_set():
            t_read, decoded_before = time.perf_counter(), decoder.seconds
            try:
                tick = self.source.next_tick()
            except StreamLost as lost:
                if self._reconnect(str(lost)):
                    continue
                return
            decode_ms = (decoder.seconds - decoded_before) * 1000.0
            read_ms = (time.perf_counter() - t_read) * 1000.0 - decode_ms
            if tick is None:
                self.stats.notes.extend(self.source.end_notes())
                return
            if not tick:  # a live source with nothing new yet
                continue
            if self.skip is not None and all(self.skip(frame) for frame in tick):
                profile.add(read=read_ms, decode=decode_ms)
                continue
            t_pace = time.perf_counter()
            if period:
                offset = self.source.replay_offset(tick)
                next_at = started + offset / self.source.options.rate if offset is not None else next_at + period
                self.stop.wait(max(0.0, next_at - time.monotonic()))
                for frame in tick:  # a paced file frame is "captured" when the camera would deliver it
                    frame.t_capture, frame.t_mono = time.time(), time.monotonic()
            t_resize = time.perf_counter()
            prepared = [self._prepare(frame) for frame in tick]
            t_hand_off = time.perf_counter()
            self.channel.put(prepared, self.stop)
            stages = dict(read=read_ms, decode=decode_ms, resize=(t_hand_off - t_resize) * 1000.0,
                          hand_off=(time.perf_counter() - t_hand_off) * 1000.0)
            profile.add(**stages, **({"pace": (t_resize - t_pace) * 1000.0} if period else {}))
        if self.source.live:  # a live feed has no end of its own: what it has to say is said when the run stops
            self.stats.notes.extend(self.source.end_notes())

    def _prepare(self, frame: Frame) -> _Prepared:
        if frame.dropped:  # ticks the source let go before this one: counted as the pipeline's own are
            self.stats.count("drops", frame.dropped)
        if frame.invalid is not None:
            return _Prepared(frame, None, frame.invalid, frame.dropped)
        try:
            return _Prepared(frame, prepare_batch([frame.image], self.engine.manifest.input)[0], dropped=frame.dropped)
        except FrameError as exc:
            return _Prepared(frame, None, str(exc), frame.dropped)

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
    """Iterate results: `for result in Pipeline(source, engine): ...`, or as a context manager.

    `stop()` ends the loop from any thread (or a signal handler); `close()` also joins the
    capture threads, and runs by itself when the loop ends however it ends.
    """

    def __init__(self, sources: Source | Sequence[Source], engine: Engine, config: PipelineConfig = PipelineConfig(),
                 skip: Callable[[Frame], bool] | None = None):
        self.sources = [sources] if isinstance(sources, Source) else list(sources)
        if not self.sources:
            raise SourceError("a pipeline needs at least one source")
        self.engine, self.config, self.skip = engine, config, skip
        self.stats = Stats(provider=engine.provider)
        self.observers: list[Callable[[Result], None]] = [self.stats.observe, steering_scorer(engine.manifest, self.stats)]
        self.ticks = 0  # rig ticks taken from the sources so far
        self._stop = threading.Event()
        self._captures: list[_Capture] = []
        self._started = False

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop and join the capture threads (bounded: a thread stuck in a read is reported)."""
        self._stop.set()
        deadline = time.monotonic() + self.config.join_timeout_s
        for capture in self._captures:
            capture.join(max(0.0, deadline - time.monotonic()))
            if capture.is_alive():
                log.warning("edgeft: capture of %s did not stop within %g s", capture.source.name, self.config.join_timeout_s)
        if self.stats.ended is None:
            self.stats.skipped = sum(s.skipped for s in self.sources)
            self.stats.ended = time.monotonic()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Result]:
        if self._started:
            raise EdgeftError("a pipeline runs once: make a new one to run again")
        self._started = True
        try:
            if self.config.max_ticks != 0:
                fit = fit_for(self.engine.manifest.input, self.config.decode)
                for source in self.sources:
                    source.open()
                    source.decode_for(fit)
                    source.decoder.beside(self.engine.backend.cpu_threads)
                self._captures = [_Capture(s, self.engine, self.config, self.stats, self._stop, self.skip) for s in self.sources]
                for capture in self._captures:
                    capture.start()
                yield from self._loop()
        finally:
            self.close()

    def _loop(self) -> Iterator[Result]:
        batch = self.config.batch if not any(c.live for c in self._captures) else 1
        while not self._stop.is_set():
            group = []
            waited = time.perf_counter()
            while len(group) < batch and not self._reached(self.ticks + len(group)):
                tick = self._next_rig_tick()
                if tick is None:
                    self._stop.set()
                    break
                group.append(tick)
            wait_ms = (time.perf_counter() - waited) * 1000.0
            if group:
                self.ticks += len(group)
                yield from self._infer([p for tick in group for p in tick], wait_ms)
            else:
                self.stats.profile.add(wait=wait_ms)  # waiting for the end of the stream
            if self._reached(self.ticks):
                break

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

    def _infer(self, prepared: list[_Prepared], wait_ms: float) -> Iterator[Result]:
        usable = [p for p in prepared if p.tensor is not None]
        t_infer, started = time.perf_counter(), time.monotonic()
        outputs = self.engine.run(np.stack([p.tensor for p in usable])) if usable else {}
        done = time.monotonic()
        inference_ms, results_s, sinks_s = (time.perf_counter() - t_infer) * 1000.0, 0.0, 0.0
        row = 0
        for p in prepared:
            t_result = time.perf_counter()
            f = p.frame
            common = dict(source=f.source, frame=f.index, t_capture=f.t_capture, latency_ms=(done - f.t_mono) * 1000.0,
                          truth=f.truth, image=f.image, stamp=f.stamp, dropped=p.dropped, age_ms=(started - f.t_mono) * 1000.0,
                          jpeg=f.jpeg, stamp_ns=f.stamp_ns, frame_id=f.frame_id)
            if p.tensor is None:
                result = Result(outputs={}, valid=False, reason=p.reason, **common)
            else:
                result = Result(outputs={k: v[row] for k, v in outputs.items()}, **common)
                row += 1
            for observe in self.observers:
                observe(result)
            t_sinks = time.perf_counter()
            results_s += t_sinks - t_result
            yield result  # the consumer (sinks, display, the caller's loop) has the result until it asks for the next
            sinks_s += time.perf_counter() - t_sinks
        self.stats.profile.add(wait=wait_ms, inference=inference_ms, results=results_s * 1000.0, sinks=sinks_s * 1000.0)
