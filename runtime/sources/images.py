"""Image files, folders and globs: sorted naturally (frame_2 before frame_10), optionally looped."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .base import Frame, Listed, Source, SourceError, SourceOptions, Tick
from .jpeg import Fit, decode_reduced
from .storage import read_bytes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def is_jpeg(data: np.ndarray | bytes) -> bool:
    return bytes(data[:2]) == b"\xff\xd8"


def truncation(data: np.ndarray) -> str | None:
    """Why a JPEG or PNG file is cut short, judged by its end marker, or None.

    Checked before decoding: OpenCV decodes a truncated JPEG partly (grey below the cut) and
    libjpeg/libpng print their own warning for every such file."""
    head, tail = data[:8].tobytes(), data[-64:].tobytes()
    if is_jpeg(head) and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if head.startswith(b"\x89PNG") and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def decode_image(path: Path, fit: Fit | None = None) -> tuple[np.ndarray | None, str | None]:
    """(BGR uint8 image, None); (None, why) for a truncated file; (None, None) when unreadable.
    Grey, 4-channel and 16-bit files are taken as well. With `fit` (a model's height, width), a
    JPEG is decoded at the largest DCT reduction that stays at or above it (`sources.jpeg`)."""
    return decode_bytes(read_bytes(path), fit)


def decode_bytes(raw: bytes | None, fit: Fit | None = None) -> tuple[np.ndarray | None, str | None]:
    """`decode_image` of a file's bytes (None: there was no file)."""
    if not raw:
        return None, None
    data = np.frombuffer(raw, np.uint8)
    if data.size == 0:
        return None, None
    cut = truncation(data)
    if cut is not None:
        return None, cut
    image = decode_reduced(data, fit) if fit is not None else None
    if image is None:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is not None and image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0) if image.dtype == np.uint16 else None
    return image, None


def read_bgr(path: Path, fit: Fit | None = None) -> np.ndarray | None:
    """The image at `path`, or None when it is unreadable or truncated."""
    return decode_image(path, fit)[0]


def read_image(path: Path) -> np.ndarray:
    """One image file for `predict` and `visualize`: the decode rule sources use, or a clear error."""
    if not path.is_file():
        raise SourceError(f"image '{path}' does not exist")
    image, cut = decode_image(path)
    if image is None:
        raise SourceError(f"'{path}' is {cut}" if cut else f"'{path}' is not an image OpenCV can read")
    return image


def decode_files(source: Source, raws: list[bytes | None]) -> list[tuple[np.ndarray | None, str | None]]:
    """`decode_bytes` of a tick's files at the source's fit, side by side on its decode pool."""
    return source.decoder.map(lambda raw: decode_bytes(raw, source.fit), raws)


def image_frame(source: Source, camera: str, raw: bytes | None, decoded: tuple[np.ndarray | None, str | None], index: int,
                what: str, truth: float | None = None) -> Frame | None:
    """A frame from an image file's bytes and their decoding: marked invalid (with the reason)
    when the file is cut short, None (counted by `source`, warned once) when it cannot be read."""
    image, cut = decoded
    if image is None and cut is None:
        source.skip(what)
        return None
    return Frame(camera, index, image, truth=truth, invalid=cut, jpeg=raw if image is not None and is_jpeg(raw) else None)


class ImageSource(Source):
    live = False

    def __init__(self, name: str, spec: str, options: SourceOptions):
        super().__init__(name, spec, options)
        self._files: list[Path] = []
        self._position = 0
        self._lap = 0  # times round a looped folder

    def _open(self) -> None:
        path = Path(self.spec)
        if is_glob(self.spec):
            files = [Path(p) for p in glob.glob(self.spec, recursive=True)]
        elif path.is_dir():
            files = [p for p in path.iterdir()]
        elif path.is_file():
            files = [path]
        else:
            raise SourceError(f"source '{self.spec}' does not exist")
        self._files = sorted((p for p in files if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not self._files:
            raise SourceError(f"no images in '{self.spec}' (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self._files = self._files[:: self.options.stride]
        self._position = self._lap = 0

    @property
    def total(self) -> int | None:
        return None if self.options.loop else len(self._files)

    def read(self) -> Tick | None:
        """The next readable image; its index is its place in the listing (laps continue the count),
        so an unreadable file leaves a gap, as a dropped frame does."""
        while True:
            if self._position >= len(self._files):
                if not self.options.loop:
                    return None
                self._position, self._lap = 0, self._lap + 1
            position, path = self._position, self._files[self._position]
            self._position += 1
            raw = read_bytes(path)
            frame = image_frame(self, self.name, raw, decode_files(self, [raw])[0], self._lap * len(self._files) + position,
                                f"image {path}")
            if frame is not None:
                return [frame]
            if self.skipped >= len(self._files) and self.options.loop:
                raise SourceError(f"no readable images in '{self.spec}'")

    def listing(self) -> Iterator[list[Listed]]:
        if self.options.loop:
            raise SourceError(f"'{self.spec}' is looped, so it never ends: list it without --loop")
        for position, path in enumerate(self._files):
            yield [Listed(self.name, position, str(path))]
