"""Frames of any size and channel layout become the model's uint8 RGB batch; bad ones are refused."""

import cv2
import numpy as np
import pytest

from edgeft.runtime.errors import FrameError
from edgeft.runtime.manifest import InputSpec
from edgeft.runtime.preprocess import as_frame_list, prepare_batch

SPEC = InputSpec("image", 32, 48)


def test_bgr_frame_is_resized_and_converted_to_rgb() -> None:
    frame = np.zeros((100, 60, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    batch = prepare_batch([frame], SPEC)
    assert batch.shape == (1, 32, 48, 3) and batch.dtype == np.uint8
    assert (batch[0, ..., 2] == 200).all() and (batch[0, ..., :2] == 0).all()  # blue is last in RGB


def test_bgr_spec_keeps_channel_order() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    batch = prepare_batch([frame], InputSpec("image", 32, 48, color_order="BGR"))
    np.testing.assert_array_equal(batch[0], frame)


@pytest.mark.parametrize("shape", [(37, 51), (37, 51, 1), (37, 51, 4), (1, 1, 3), (1000, 3, 3)])
def test_grey_bgra_and_odd_sizes_are_converted(shape) -> None:
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    batch = prepare_batch([frame], SPEC)
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 or shape[-1] == 1 else frame[..., :3]
    expected = cv2.cvtColor(cv2.resize(np.ascontiguousarray(bgr), (48, 32), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(batch[0], expected)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "must be uint8"),
        (np.zeros((10, 10, 2), np.uint8), "cannot use a frame of shape"),
        (np.zeros((0, 10, 3), np.uint8), r"the frame is empty \(10x0 pixels\)"),
        ("not an image", "must be uint8 numpy arrays"),
    ],
)
def test_unusable_frames_are_refused(frame, message) -> None:
    with pytest.raises(FrameError, match=message):
        prepare_batch([frame], SPEC)


def test_array_dimensions_decide_single_or_batch() -> None:
    assert as_frame_list(np.zeros((4, 4), np.uint8))[1] is True
    assert as_frame_list(np.zeros((4, 4, 3), np.uint8))[1] is True
    frames, single = as_frame_list(np.zeros((2, 4, 4, 3), np.uint8))
    assert len(frames) == 2 and single is False
    with pytest.raises(FrameError):
        as_frame_list(np.zeros((1, 2, 4, 4, 3), np.uint8))
    with pytest.raises(FrameError, match="no frames"):
        as_frame_list([])
