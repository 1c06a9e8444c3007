"""Runs as Foxglove sees them (`foxglove-sdk`, the `foxglove` extra): an MCAP file (`--record`) or
a live WebSocket server (`--foxglove`), with the same channels.

    /edgeft/predictions          every result (JSON: frame, source, stamps, validity, prediction, label/score, truth)
    /edgeft/<camera>/image       the frame, JPEG (foxglove.CompressedImage)
    /edgeft/<camera>/annotations the prediction drawn as --save-video draws it (foxglove.ImageAnnotations)
    /edgeft/telemetry            once a second: frames, fps, latency, drops

Messages are stamped with the frame's recording time (recorded sources) or its capture time.
A frame decoded from a JPEG (a bag's CompressedImage, a .jpg file) goes out as those bytes;
others are JPEG-encoded. Encoding and logging run on the sink's own worker (`worker.py`), so
inference never waits on them: the MCAP file gets every result through a short queue
(back-pressure), the live server per camera only the newest, at a bounded rate (a slow viewer
drops messages, not the pipeline). The file is flushed every second, so a killed run leaves a
file readable up to its last chunk; a worker that fails ends the run with one line.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import first_line
from ..manifest import Manifest
from ..overlay import arrow_points, caption, picture
from ..results import Result, decode, finite_or_none
from ..sources.jpeg import jpeg_size
from .base import SinkError, SinkOptions, check_new_file
from .worker import Latest, Mailbox, SinkWorker

CHUNK_BYTES = 256 * 1024

PREDICTION_SCHEMA = {
    "title": "edgeft.Prediction", "type": "object",
    "properties": {"frame": {"type": "integer"}, "source": {"type": "string"}, "stamp": {"type": ["number", "null"]},
                   "t_capture": {"type": "number"}, "latency_ms": {"type": "number"}, "valid": {"type": "boolean"},
                   "reason": {"type": ["string", "null"]}, "prediction": {"type": "array", "items": {"type": ["number", "null"]}},
                   "label": {"type": ["string", "null"]}, "score": {"type": ["number", "null"]},
                   "steering": {"type": ["number", "null"]}, "truth": {"type": ["number", "null"]}},
}
TELEMETRY_SCHEMA = {
    "title": "edgeft.Telemetry", "type": "object",
    "properties": {"frames": {"type": "integer"}, "fps": {"type": "number"}, "latency_p50_ms": {"type": "number"},
                   "latency_p99_ms": {"type": "number"}, "dropped": {"type": "integer"}, "invalid": {"type": "integer"}},
}


def _foxglove():
    try:
        import foxglove
    except ImportError:
        raise SinkError("MCAP and Foxglove outputs need the foxglove extra: pip install 'edgeft[foxglove]'") from None
    # The SDK logs every failed send (a viewer gone, a full disk) through Python logging; what
    # matters reaches the user as the sink's own one-line error, the rest is noise around it.
    logging.getLogger("foxglove").setLevel(logging.CRITICAL)
    return foxglove


def log_time_ns(result: Result) -> int:
    return int(round((result.stamp if result.stamp is not None else result.t_capture) * 1e9))


class _Channels:
    """The channels of one foxglove Context, camera channels made on first use."""

    def __init__(self, context):
        foxglove = _foxglove()
        from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel

        self._context, self._image, self._annotations = context, CompressedImageChannel, ImageAnnotationsChannel
        self.predictions = foxglove.Channel("/edgeft/predictions", schema=PREDICTION_SCHEMA, context=context)
        self.telemetry = foxglove.Channel("/edgeft/telemetry", schema=TELEMETRY_SCHEMA, context=context)
        self._cameras: dict[str, tuple] = {}

    def camera(self, name: str) -> tuple:
        if name not in self._cameras:
            topic = "/edgeft/" + re.sub(r"[^A-Za-z0-9_/]+", "_", name).strip("/")
            self._cameras[name] = (self._image(f"{topic}/image", context=self._context),
                                   self._annotations(f"{topic}/annotations", context=self._context))
        return self._cameras[name]


@dataclass(frozen=True)
class _Telemetry:
    values: dict
    log_time: int


class FoxgloveSink:
    """The shared body of the MCAP and live-server sinks. The pipeline thread only counts and
    hands results over; every encode and every log call runs on the sink's worker, so neither a
    slow disk nor many viewers reach inference."""

    def __init__(self, manifest: Manifest, what: str, mailbox: Mailbox | Latest, handle):
        self.manifest = manifest
        self._context = _foxglove().Context()
        self.channels = _Channels(self._context)
        self._recent: deque[float] = deque(maxlen=256)
        self._counts = {"frames": 0, "dropped": 0, "invalid": 0}
        self._started = self._last_telemetry = time.monotonic()
        self._image_warned = False
        self._worker = SinkWorker(what, handle, mailbox, name="edgeft-foxglove")

    def write(self, result: Result) -> None:
        self._worker.put(result)
        self._count(result)

    def _count(self, result: Result) -> None:
        """Counted here, for every result, whatever the worker later drops; once a second the
        telemetry message is made here too (the worker would race the counts)."""
        self._counts["frames"] += 1
        self._counts["dropped"] += result.dropped
        self._counts["invalid"] += not result.valid
        self._recent.append(result.latency_ms)
        now = time.monotonic()
        if now - self._last_telemetry >= 1.0:
            self._last_telemetry = now
            p50, p99 = np.percentile(np.fromiter(self._recent, float), [50, 99])
            fps = self._counts["frames"] / max(now - self._started, 1e-9)
            values = {**self._counts, "fps": fps, "latency_p50_ms": float(p50), "latency_p99_ms": float(p99)}
            self._worker.put(_Telemetry(values, log_time_ns(result)))

    def _log_prediction(self, result: Result) -> None:
        self.channels.predictions.log(self._prediction(result), log_time=log_time_ns(result))

    def _log_telemetry(self, telemetry: _Telemetry) -> None:
        self.channels.telemetry.log(telemetry.values, log_time=telemetry.log_time)

    def _prediction(self, result: Result) -> dict:
        decoded = decode(self.manifest, result.outputs)
        return {"frame": result.frame, "source": result.source, "stamp": result.stamp, "t_capture": result.t_capture,
                "latency_ms": result.latency_ms, "valid": result.valid, "reason": result.reason,
                "prediction": [finite_or_none(v) for v in decoded.values], "label": decoded.label,
                "score": finite_or_none(decoded.score) if decoded.score is not None else None,
                "steering": finite_or_none(decoded.steering) if decoded.steering is not None else None,
                "truth": finite_or_none(result.truth) if result.truth is not None else None}

    def _log_image(self, result: Result) -> None:
        """The frame as JPEG plus its annotations; a frame with nothing to show (a 0x0 image) has none."""
        from foxglove.messages import CompressedImage, Timestamp

        image = picture(result)
        jpeg = (result.jpeg or _encoded(image)) if image is not None else None  # a recorded JPEG goes out as recorded
        if jpeg is None:
            return
        when = log_time_ns(result)
        stamp = Timestamp(when // 10**9, when % 10**9)
        image_channel, annotations = self.channels.camera(result.source)
        image_channel.log(CompressedImage(timestamp=stamp, frame_id=result.source, data=jpeg, format="jpeg"), log_time=when)
        annotations.log(self._annotations(result, image, stamp), log_time=when)

    def _annotations(self, result: Result, image: np.ndarray, stamp):
        from foxglove.messages import (Color, ImageAnnotations, Point2, PointsAnnotation, PointsAnnotationType,
                                       TextAnnotation)

        # the image as sent: a recorded JPEG goes out whole even when it was decoded reduced for the model
        height, width = (result.jpeg and jpeg_size(result.jpeg)) or image.shape[:2]
        decoded = decode(self.manifest, result.outputs)
        arrows = [(value, color) for value, color in ((result.truth, Color(r=0, g=0.8, b=0, a=1)),
                                                      (decoded.steering, Color(r=1, g=0, b=0, a=1))) if value is not None]
        points = [PointsAnnotation(timestamp=stamp, type=PointsAnnotationType.LineStrip, outline_color=color,
                                   thickness=max(2.0, width / 160), points=[Point2(x=x, y=y) for x, y in arrow_points(width, height, value)])
                  for value, color in arrows]
        scale = max(0.4, width / 900) * 30
        texts = [TextAnnotation(timestamp=stamp, position=Point2(x=6, y=(i + 1) * scale * 1.15), text=line, font_size=scale,
                                text_color=Color(r=1, g=1, b=1, a=1), background_color=Color(r=0, g=0, b=0, a=0.6))
                 for i, line in enumerate(caption(result, self.manifest))]
        return ImageAnnotations(points=points, texts=texts)

    def close(self) -> None:
        self._worker.close()

    def discard(self) -> None:
        self.close()


class McapSink(FoxgloveSink):
    """`--record FILE.mcap`: every frame and prediction, readable in Foxglove with no set-up.
    Lossless: a short queue makes the pipeline wait for the writer rather than drop."""

    @classmethod
    def check(cls, path: Path, options: SinkOptions) -> None:
        if path.suffix.lower() != ".mcap":
            raise SinkError(f"--record '{path}' must end in .mcap")
        check_new_file(path, "--record", options.force)
        _foxglove()

    def __init__(self, path: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        self.check(path, options)
        from foxglove.mcap import MCAPWriteOptions

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        super().__init__(manifest, f"--record '{path}'", Mailbox(4), self._handle)
        self._writer = _foxglove().open_mcap(path, allow_overwrite=True, context=self._context,
                                             writer_options=MCAPWriteOptions(chunk_size=CHUNK_BYTES))
        self._writer.write_metadata("edgeft", {"bundle": manifest.name, "model_sha256": manifest.model_sha256,
                                               "task": manifest.task})

    def _handle(self, item: Result | _Telemetry) -> None:
        if isinstance(item, _Telemetry):
            self._log_telemetry(item)
            self._flush()  # about once a second: a killed run leaves the file readable up to here
            return
        self._log_prediction(item)
        self._log_image(item)

    def _flush(self) -> None:
        try:
            self._writer.flush()
        except RuntimeError:
            raise SinkError(self._write_failed()) from None

    def _write_failed(self) -> str:
        return (f"cannot write --record '{self.path}' ({write_failure(self.path)}); it holds what was written before, "
                f"readable up to its last whole chunk (`mcap recover` rebuilds its index)")

    def close(self) -> None:
        """The worker drains, then the writer writes the summary; the first failure is raised."""
        failure: SinkError | None = None
        try:
            super().close()
        except SinkError as exc:
            failure = exc
        try:
            self._writer.close()
        except RuntimeError:
            failure = failure or SinkError(self._write_failed())
        if failure is not None:
            raise failure

    def discard(self) -> None:
        try:
            self.close()
        finally:
            self.path.unlink(missing_ok=True)


def write_failure(path: Path) -> str:
    """Why a write into `path` failed, as the OS would say it: the MCAP writer reports only
    "I/O error", so the two usual causes are checked for (a full disk, a file-size limit)."""
    try:
        folder = os.statvfs(path.parent)
        if folder.f_bavail * folder.f_frsize < 2 * CHUNK_BYTES:
            return os.strerror(errno.ENOSPC)
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and path.stat().st_size + 2 * CHUNK_BYTES > limit:
            return os.strerror(errno.EFBIG)
    except (OSError, ImportError):
        pass
    return "the write failed"


def _encoded(image: np.ndarray) -> bytes | None:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpeg.tobytes() if ok else None


def parse_address(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); the host defaults to loopback."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise SinkError(f"--foxglove '{text}' is not [HOST:]PORT (e.g. 8765 or 0.0.0.0:8765)")
    return host or "127.0.0.1", int(port)


class LiveSink(FoxgloveSink):
    """`--foxglove [HOST:]PORT`: a Foxglove WebSocket server streaming the same channels live.

    What viewers get is bounded whatever the pipeline's rate: per camera, the newest prediction
    at most `max_prediction_hz` times a second and its image at most `max_image_hz` (encoded
    once, whatever the number of viewers); each viewer's backlog holds `backlog` messages, the
    oldest dropped when it falls behind. So the work per viewer per second is fixed, and a slow
    viewer, or fifty, drops messages, never the pipeline."""

    max_prediction_hz = 30.0
    max_image_hz = 10.0
    backlog = 128

    @classmethod
    def check(cls, target: Path, options: SinkOptions) -> None:
        parse_address(str(target))
        _foxglove()

    def __init__(self, target: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        host, port = parse_address(str(target))
        mailbox = Latest(lambda item: item.source if isinstance(item, Result) else "/telemetry")
        super().__init__(manifest, f"--foxglove {host}:{port}", mailbox, self._handle)
        self._last_image: dict[str, float] = {}
        try:
            self.server = _foxglove().start_server(name=f"edgeft: {manifest.name}", host=host, port=port,
                                                   context=self._context, message_backlog_size=self.backlog)
        except RuntimeError as exc:
            super().close()
            raise SinkError(f"--foxglove {host}:{port}: cannot start the server ({first_line(exc)})") from None
        self.port = self.server.port

    def _handle(self, items: list[Result | _Telemetry]) -> None:
        began = time.monotonic()
        for item in items:
            if isinstance(item, _Telemetry):
                self._log_telemetry(item)
                continue
            self._log_prediction(item)
            if began - self._last_image.get(item.source, -1e9) >= 1.0 / self.max_image_hz:
                self._last_image[item.source] = began
                self._log_image(item)
        time.sleep(max(0.0, began + 1.0 / self.max_prediction_hz - time.monotonic()))

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.server.stop()
