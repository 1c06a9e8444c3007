"""Read image files as BGR uint8 frames, with a clear error instead of OpenCV's silent None."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeft.runtime.errors import FrameError
from edgeft.runtime.sources.images import read_bgr


def read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FrameError(f"image '{path}' does not exist")
    frame = read_bgr(path)  # the decode rule image sources use, so predict and run agree
    if frame is None:
        raise FrameError(f"'{path}' is not an image OpenCV can read")
    return frame
