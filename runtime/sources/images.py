"""Image files, folders and globs: sorted naturally (frame_2 before frame_10), optionally looped."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import cv2

from .base import Frame, Source, SourceError, SourceOptions, Tick

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def read_bgr(path: Path):
    """cv2.imread that also takes grey, 4-channel and 16-bit files; None when unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is not None and image.dtype != "uint8":
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0) if image.dtype == "uint16" else None
    return image


class ImageSource(Source):
    live = False

    def __init__(self, name: str, spec: str, options: SourceOptions):
        super().__init__(name, spec, options)
        self._files: list[Path] = []
        self._position = 0
        self._count = 0  # frame index keeps growing across loops

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
        self._position = 0

    @property
    def total(self) -> int | None:
        return None if self.options.loop else len(self._files)

    def read(self) -> Tick | None:
        while True:
            if self._position >= len(self._files):
                if not self.options.loop:
                    return None
                self._position = 0
            path = self._files[self._position]
            self._position += 1
            image = read_bgr(path)
            if image is not None:
                self._count += 1
                return [Frame(self.name, self._count - 1, image)]
            self.skip(f"image {path}")
            if self.skipped >= len(self._files) and self.options.loop:
                raise SourceError(f"no readable images in '{self.spec}'")
