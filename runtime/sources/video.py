"""OpenCV capture sources: video files, cameras, and network streams (FFmpeg).

An MJPEG capture (a USB camera's MJPG mode, an IP camera's multipart stream, an MJPEG .avi)
carries one JPEG per frame. When frames are decoded for a model's input, the capture is asked
for those JPEG bytes instead of pixels (FFmpeg's raw mode, V4L2 without conversion) and they are
decoded here with the JPEG rule every other source follows: at the largest DCT reduction that
stays at or above the input (`sources.jpeg`): a third less time than FFmpeg's full-size decode
at 720p, 40% less at 1080p (RESULTS).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .base import Frame, Listed, Source, SourceError, SourceOptions, StreamLost, Tick
from .images import decode_bytes
from .jpeg import Fit
from .refs import video_ref

MJPEG = cv2.VideoWriter_fourcc(*"MJPG")


class _CaptureSource(Source):
    """Shared reading: stride, frame numbering, end-of-stream vs lost-stream."""

    def __init__(self, name: str, spec: str, options: SourceOptions):
        super().__init__(name, spec, options)
        self._cap: cv2.VideoCapture | None = None
        self._index = -1
        self._jpeg = False  # the capture hands over each frame's JPEG bytes, decoded in `_frame`

    def open(self) -> Source:
        if not self._opened:
            self._jpeg = False  # a new capture starts with pixels
        super().open()
        self._ask_for_jpeg()
        return self

    def decode_for(self, fit: Fit | None) -> None:
        super().decode_for(fit)
        self._ask_for_jpeg()

    def _ask_for_jpeg(self) -> None:
        """Switch an MJPEG capture to its JPEG bytes once frames are decoded for a model. A
        capture that cannot (another codec, a backend without a raw mode) keeps its pixels; one
        that did stays switched (with no fit, its JPEGs are decoded in full)."""
        cap = self._cap
        if self._jpeg or cap is None or self.fit is None or int(cap.get(cv2.CAP_PROP_FOURCC)) != MJPEG:
            return
        raw = (cv2.CAP_PROP_CONVERT_RGB, 0) if cap.getBackendName() == "V4L2" else (cv2.CAP_PROP_FORMAT, -1)
        self._jpeg = bool(cap.set(*raw))

    def read(self) -> Tick | None:
        """The next kept frame; with stride N the N-1 frames after each are grabbed, not decoded."""
        if self._cap is None:
            raise StreamLost(f"{self.name} is not open")
        skip = self.options.stride - 1 if self._index >= 0 else 0
        start = time.perf_counter()
        try:
            for _ in range(skip):
                if not self._cap.grab():
                    return self._ended()
            ok, image = self._cap.read()
        finally:
            if not self.live and not self._jpeg:  # a file's read is its decode; a camera's is mostly waiting
                self.decoder.seconds += time.perf_counter() - start
        self._index += skip
        if not ok or image is None:
            return self._ended()
        self._index += 1
        return [self._frame(image)]

    def _frame(self, image: np.ndarray) -> Frame:
        if not self._jpeg:
            return Frame(self.name, self._index, image)
        raw = image.tobytes()
        decoded, cut = self.decoder.map(lambda data: decode_bytes(data, self.fit), [raw])[0]
        if decoded is None:  # as an image file's: a cut JPEG is an invalid frame, never run
            return Frame(self.name, self._index, decoded, invalid=cut or "not a decodable JPEG")
        return Frame(self.name, self._index, decoded, jpeg=raw)

    def _ended(self) -> None:
        if self.live:
            raise StreamLost(f"{self.name} stopped delivering frames")
        return None

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> float | None:
        value = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0.0
        return value if value and value < 1000 else None


class VideoSource(_CaptureSource):
    live = False

    def end_notes(self) -> list[str]:
        """A container that announces more frames than it holds (a cut recording) is said, not hidden."""
        announced = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self._cap is not None else 0
        read = self._index + 1
        if announced > 0 and read + self.options.stride - 1 < announced:
            return [f"{self.name}: the video ended after {read} of the {announced} frames its container announces"]
        return []

    def _open(self) -> None:
        if not Path(self.spec).is_file():
            raise SourceError(f"video '{self.spec}' does not exist")
        self._cap = cv2.VideoCapture(self.spec)
        if not self._cap.isOpened():
            raise SourceError(f"'{self.spec}' is not a video OpenCV can decode")
        self._index = -1

    def listing(self) -> Iterator[list[Listed]]:
        """The frames the file really holds, counted by demuxing it (grab, no colour conversion):
        a container's announced count is a header field, and a cut recording announces frames it lacks."""
        counter = cv2.VideoCapture(self.spec)
        try:
            number = 0
            while counter.grab():
                if number % self.options.stride == 0:
                    yield [Listed(self.name, number, video_ref(self.spec, number))]
                number += 1
        finally:
            counter.release()

    @property
    def total(self) -> int | None:
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self._cap is not None else 0
        return -(-count // self.options.stride) if count > 0 else None


def camera_id(spec: str) -> int | str | None:
    """`camera0`, `0` -> 0; `/dev/video2` -> the path; anything else -> None."""
    match = re.fullmatch(r"(?:camera)?(\d+)", spec)
    if match:
        return int(match.group(1))
    return spec if re.fullmatch(r"/dev/video\d+", spec) else None


class CameraSource(_CaptureSource):
    live = True

    def _open(self) -> None:
        device = camera_id(self.spec)
        if isinstance(device, str) and not Path(device).exists():
            raise SourceError(f"camera '{device}' does not exist (no such device)")
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its own "can't open" noise
        try:
            self._cap = cv2.VideoCapture(device)
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not self._cap.isOpened():
            self._cap = None
            raise SourceError(f"camera '{self.spec}' cannot be opened: no such camera, or it is in use")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.options.width),
                            (cv2.CAP_PROP_FRAME_HEIGHT, self.options.height), (cv2.CAP_PROP_FPS, self.options.fps)):
            if value:
                self._cap.set(prop, value)


class StreamSource(_CaptureSource):
    """rtsp:// and http(s):// streams through FFmpeg, with bounded open/read timeouts."""

    live = True

    def _open(self) -> None:
        timeout_ms = int(self.options.timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self._cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not self._cap.isOpened():
            self._cap = None
            raise SourceError(f"stream '{self.spec}' cannot be opened (unreachable, or not a video stream)")
