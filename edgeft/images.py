"""Read image files as BGR uint8 frames, with a clear error instead of OpenCV's silent None."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeft.runtime.errors import FrameError


def read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FrameError(f"image '{path}' does not exist")
    frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if frame is None:
        raise FrameError(f"'{path}' is not an image OpenCV can read")
    if frame.dtype != np.uint8:  # 16-bit PNG/TIFF: keep the top 8 bits
        frame = (frame >> 8).astype(np.uint8) if frame.dtype == np.uint16 else cv2.convertScaleAbs(frame)
    return frame
