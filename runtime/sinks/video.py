"""The rig's first camera with the prediction drawn: an mp4 file, or a window where a display exists."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import cv2

from ..manifest import Manifest
from ..overlay import annotate, picture
from ..results import Result
from .base import SinkError, SinkOptions, check_new_file

SUFFIXES = (".mp4", ".avi", ".mkv")
FOURCC = "mp4v"
log = logging.getLogger("edgeft")


def _probe_encoder(folder: Path, suffix: str) -> bool:
    """Can this OpenCV build encode FOURCC into `suffix` files? Tried on a scratch file."""
    fd, scratch = tempfile.mkstemp(prefix=".edgeft-probe-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(scratch, cv2.VideoWriter_fourcc(*FOURCC), 10.0, (64, 48))
        opened = writer.isOpened()
        writer.release()
        return opened
    finally:
        Path(scratch).unlink(missing_ok=True)


class VideoSink:
    """`--save-video FILE`: the first camera of the rig, annotated, as mp4v."""

    @classmethod
    def check(cls, path: Path, options: SinkOptions) -> None:
        if path.suffix.lower() not in SUFFIXES:
            raise SinkError(f"--save-video '{path}' must end in {', '.join(SUFFIXES)}")
        check_new_file(path, "--save-video", options.force)
        folder = next(p for p in path.parents if p.exists())
        if not _probe_encoder(folder, path.suffix):
            raise SinkError(f"cannot write video '{path}': this OpenCV has no {FOURCC} encoder for {path.suffix} files")

    def __init__(self, path: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        self.check(path, options)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.manifest, self.fps = path, manifest, options.fps
        self._writer: cv2.VideoWriter | None = None
        self._camera: str | None = None
        self._size: tuple[int, int] | None = None

    def write(self, result: Result) -> None:
        self._camera = self._camera or result.source
        image = picture(result) if result.source == self._camera else None
        if image is None:  # another camera, or a frame with nothing to show (a 0x0 image): no made-up picture
            return
        frame = annotate(image, result, self.manifest)
        if self._writer is None:
            self._size = (frame.shape[1], frame.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC), self.fps, self._size)
            if not self._writer.isOpened():
                raise SinkError(f"cannot write video '{self.path}'")
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class WindowSink:
    """`--show`: an OpenCV window of the first camera."""

    @staticmethod
    def available() -> bool:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self._camera: str | None = None

    def write(self, result: Result) -> None:
        self._camera = self._camera or result.source
        image = picture(result) if result.source == self._camera else None
        if image is not None:
            cv2.imshow("edgeft", annotate(image, result, self.manifest))
            cv2.waitKey(1)

    def close(self) -> None:
        cv2.destroyAllWindows()

    def discard(self) -> None:
        self.close()
