"""Turn camera frames of any size and channel count into the model's uint8 NHWC batch.

Scaling and mean/std live inside the ONNX graph; all that is left here is what the graph
cannot know: the frame's size and colour layout. INTER_LINEAR is used because INTER_AREA
costs ~10x more per frame for a difference the backbone does not notice.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .errors import FrameError
from .manifest import InputSpec

_TO_BGR = {1: cv2.COLOR_GRAY2BGR, 4: cv2.COLOR_BGRA2BGR}


def as_frame_list(frames: np.ndarray | Sequence[np.ndarray]) -> tuple[list[np.ndarray], bool]:
    """Split `frames` into single frames; the flag says whether one frame was passed alone.

    A 2-D array is one grey frame, a 3-D array one H x W x C frame, a 4-D array a batch.
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim in (2, 3):
            return [frames], True
        if frames.ndim == 4:
            return list(frames), False
        raise FrameError(f"a frame array must have 2, 3 or 4 dimensions, got shape {frames.shape}")
    frame_list = list(frames)
    if not frame_list:
        raise FrameError("no frames given")
    return frame_list, False


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Any uint8 grey / BGR / BGRA frame as a 3-channel BGR frame."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        kind = frame.dtype if isinstance(frame, np.ndarray) else type(frame).__name__
        raise FrameError(f"frames must be uint8 numpy arrays (BGR, as OpenCV reads them), got {kind}")
    channels = 1 if frame.ndim == 2 else frame.shape[2] if frame.ndim == 3 else 0
    if channels not in (1, 3, 4):
        raise FrameError(f"cannot use a frame of shape {frame.shape}: expected H x W, H x W x 1, 3 or 4")
    if min(frame.shape[:2]) < 1:
        raise FrameError(f"the frame is empty ({frame.shape[1]}x{frame.shape[0]} pixels)")
    return frame if channels == 3 else cv2.cvtColor(frame, _TO_BGR[channels])


def fill_batch(frames: Sequence[np.ndarray], spec: InputSpec, out: np.ndarray) -> None:
    """Resize and colour-convert each frame into `out[i]` (shape N x H x W x 3, uint8)."""
    code = cv2.COLOR_BGR2RGB if spec.color_order == "RGB" else None
    for i, frame in enumerate(frames):
        bgr = to_bgr(frame)
        if bgr.shape[:2] != (spec.height, spec.width):
            bgr = cv2.resize(bgr, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if code is None:
            out[i] = bgr
        else:
            cv2.cvtColor(bgr, code, dst=out[i])


def prepare_batch(frames: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    batch = np.empty((len(frames), spec.height, spec.width, 3), dtype=np.uint8)
    fill_batch(frames, spec, batch)
    return batch
