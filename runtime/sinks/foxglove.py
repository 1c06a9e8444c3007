"""Runs as Foxglove sees them (`foxglove-sdk`, the `foxglove` extra): an MCAP file (`--record`) or
a live WebSocket server (`--foxglove`), with the same channels.

    /edgeft/predictions          every result (JSON: frame, source, stamps, validity, prediction, label/score, truth)
    /edgeft/<camera>/image       the frame, JPEG (foxglove.CompressedImage)
    /edgeft/<camera>/annotations the prediction drawn as --save-video draws it (foxglove.ImageAnnotations)
    /edgeft/telemetry            once a second: frames, fps, latency, drops

Messages are stamped with the frame's recording time (recorded sources) or its capture time.
A frame decoded from a JPEG (a bag's CompressedImage, a .jpg file) goes out as those bytes;
others are JPEG-encoded on a thread of the sink's own, so inference never waits on it: the MCAP
file gets every frame through a short queue (back-pressure), the live server only the newest
frame at most `max_image_hz` per camera (a slow viewer drops frames, not the pipeline). The
file is flushed every second, so a killed run leaves a file readable up to its last chunk.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from ..errors import first_line
from ..manifest import Manifest
from ..overlay import arrow_points, caption
from ..results import Result, decode, finite_or_none
from ..sources.jpeg import jpeg_size
from .base import SinkError, SinkOptions, check_new_file

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


class _Newest:
    """Per camera, the newest frame not yet encoded: a frame the viewer has not had yet is
    replaced by a newer one of the same camera; `put` never waits. None ends the stream."""

    def __init__(self) -> None:
        self._waiting: dict[str, Result] = {}
        self._ended = False
        self._ready = threading.Condition()

    def put(self, result: Result | None) -> None:
        with self._ready:
            if result is None:
                self._ended = True
            else:
                self._waiting[result.source] = result
            self._ready.notify()

    def get(self) -> Result | None:
        with self._ready:
            while not self._waiting and not self._ended:
                self._ready.wait()
            return self._waiting.pop(next(iter(self._waiting))) if self._waiting else None


class FoxgloveSink:
    """The shared body of the MCAP and live-server sinks."""

    def __init__(self, manifest: Manifest, lossless: bool, max_image_hz: float | None):
        self.manifest, self.lossless, self.max_image_hz = manifest, lossless, max_image_hz
        self._context = _foxglove().Context()
        self.channels = _Channels(self._context)
        self._frames: queue.Queue | _Newest = queue.Queue(maxsize=4) if lossless else _Newest()
        self._last_image: dict[str, float] = {}
        self._recent: deque[float] = deque(maxlen=256)
        self._counts = {"frames": 0, "dropped": 0, "invalid": 0}
        self._started = self._last_telemetry = time.monotonic()
        self._encoder = threading.Thread(target=self._encode_loop, name="edgeft-foxglove-encoder", daemon=True)
        self._encoder.start()

    def write(self, result: Result) -> None:
        self.channels.predictions.log(self._prediction(result), log_time=log_time_ns(result))
        self._count(result)
        if result.image is not None and self._wants_image(result):
            self._frames.put(result)

    def _prediction(self, result: Result) -> dict:
        decoded = decode(self.manifest, result.outputs)
        return {"frame": result.frame, "source": result.source, "stamp": result.stamp, "t_capture": result.t_capture,
                "latency_ms": result.latency_ms, "valid": result.valid, "reason": result.reason,
                "prediction": [finite_or_none(v) for v in decoded.values], "label": decoded.label,
                "score": finite_or_none(decoded.score) if decoded.score is not None else None,
                "steering": finite_or_none(decoded.steering) if decoded.steering is not None else None,
                "truth": finite_or_none(result.truth) if result.truth is not None else None}

    def _count(self, result: Result) -> None:
        self._counts["frames"] += 1
        self._counts["dropped"] += result.dropped
        self._counts["invalid"] += not result.valid
        self._recent.append(result.latency_ms)
        now = time.monotonic()
        if now - self._last_telemetry >= 1.0:
            self._last_telemetry = now
            p50, p99 = np.percentile(np.fromiter(self._recent, float), [50, 99])
            fps = self._counts["frames"] / max(now - self._started, 1e-9)
            self.channels.telemetry.log({**self._counts, "fps": fps, "latency_p50_ms": float(p50), "latency_p99_ms": float(p99)},
                                        log_time=log_time_ns(result))
            self.tick()

    def _wants_image(self, result: Result) -> bool:
        if self.max_image_hz is None:
            return True
        last = self._last_image.get(result.source, -1e9)
        if time.monotonic() - last < 1.0 / self.max_image_hz:
            return False
        self._last_image[result.source] = time.monotonic()
        return True

    def _encode_loop(self) -> None:
        from foxglove.messages import CompressedImage, Timestamp

        while (result := self._frames.get()) is not None:
            jpeg = result.jpeg or _encoded(result.image)  # a recorded JPEG goes out as it was recorded
            if jpeg is None:
                continue
            when = log_time_ns(result)
            stamp = Timestamp(when // 10**9, when % 10**9)
            image, annotations = self.channels.camera(result.source)
            image.log(CompressedImage(timestamp=stamp, frame_id=result.source, data=jpeg, format="jpeg"), log_time=when)
            annotations.log(self._annotations(result, stamp), log_time=when)

    def _annotations(self, result: Result, stamp):
        from foxglove.messages import (Color, ImageAnnotations, Point2, PointsAnnotation, PointsAnnotationType,
                                       TextAnnotation)

        # the image as sent: a recorded JPEG goes out whole even when it was decoded reduced for the model
        height, width = (result.jpeg and jpeg_size(result.jpeg)) or result.image.shape[:2]
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

    def tick(self) -> None:
        """Called about once a second; the MCAP sink flushes its chunk here."""

    def close(self) -> None:
        self._frames.put(None)
        self._encoder.join(30)

    def discard(self) -> None:
        self.close()


class McapSink(FoxgloveSink):
    """`--record FILE.mcap`: every frame and prediction, readable in Foxglove with no set-up."""

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
        super().__init__(manifest, lossless=True, max_image_hz=None)
        self._writer = _foxglove().open_mcap(path, allow_overwrite=True, context=self._context,
                                             writer_options=MCAPWriteOptions(chunk_size=256 * 1024))
        self._writer.write_metadata("edgeft", {"bundle": manifest.name, "model_sha256": manifest.model_sha256,
                                               "task": manifest.task})

    def tick(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        super().close()
        self._writer.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


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
    """`--foxglove [HOST:]PORT`: a Foxglove WebSocket server streaming the same channels live."""

    max_image_hz = 10.0

    @classmethod
    def check(cls, target: Path, options: SinkOptions) -> None:
        parse_address(str(target))
        _foxglove()

    def __init__(self, target: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        host, port = parse_address(str(target))
        super().__init__(manifest, lossless=False, max_image_hz=self.max_image_hz)
        try:
            self.server = _foxglove().start_server(name=f"edgeft: {manifest.name}", host=host, port=port, context=self._context)
        except RuntimeError as exc:
            super().close()
            raise SinkError(f"--foxglove {host}:{port}: cannot start the server ({first_line(exc)})") from None
        self.port = self.server.port

    def close(self) -> None:
        super().close()
        self.server.stop()
