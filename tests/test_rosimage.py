"""sensor_msgs images to BGR: every encoding edgeft reads, row padding, byte order, Bayer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeft.runtime.sources.rosimage import ImageDecodeError, compressed_to_bgr, raw_to_bgr

Y, X = np.mgrid[0:48, 0:64]
BGR = np.stack([X * 4, Y * 5, (X + Y) * 2], -1).astype(np.uint8)  # smooth, so demosaicing is near exact
OPAQUE = np.full((48, 64, 1), 255, np.uint8)


def padded(pixels: np.ndarray, pad: int = 8, big_endian: bool = False) -> tuple[bytes, int]:
    """Rows of `pixels` with `pad` bytes of row padding, as a ROS driver may send them."""
    data = pixels.astype(pixels.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
    row = len(data) // pixels.shape[0]
    rows = np.zeros((pixels.shape[0], row + pad), np.uint8)
    rows[:, :row] = np.frombuffer(data, np.uint8).reshape(pixels.shape[0], row)
    return rows.tobytes(), row + pad


@pytest.mark.parametrize(("encoding", "pixels", "expected"), [
    ("bgr8", BGR, BGR),
    ("rgb8", BGR[..., ::-1], BGR),
    ("bgra8", np.concatenate([BGR, OPAQUE], -1), BGR),
    ("rgba8", np.concatenate([BGR[..., ::-1], OPAQUE], -1), BGR),
    ("mono8", BGR[..., 0], BGR[..., 0]),
    ("mono16", BGR[..., 0].astype(np.uint16) * 257, BGR[..., 0]),
])
@pytest.mark.parametrize("big_endian", [False, True])
def test_raw_encodings_with_row_padding(encoding, pixels, expected, big_endian) -> None:
    data, step = padded(np.ascontiguousarray(pixels), big_endian=big_endian)
    np.testing.assert_array_equal(raw_to_bgr(encoding, 48, 64, step, data, big_endian), expected)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_patterns_demosaic_to_the_scene(pattern, bits) -> None:
    """Build the mosaic a sensor with this pattern would record, then decode it."""
    channel = {"r": 2, "g": 1, "b": 0}
    mosaic = np.zeros((48, 64), np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            mosaic[dy::2, dx::2] = BGR[dy::2, dx::2, channel[pattern[2 * dy + dx]]]
    pixels = mosaic.astype(np.uint16) * 257 if bits == 16 else mosaic
    data, step = padded(pixels, pad=0)
    out = raw_to_bgr(f"bayer_{pattern}{bits}", 48, 64, step, data, False)
    assert np.abs(out[4:-4, 4:-4].astype(int) - BGR[4:-4, 4:-4]).mean() < 1.0


def test_compressed_jpeg_png_and_garbage() -> None:
    for suffix in (".jpg", ".png"):
        image = compressed_to_bgr(cv2.imencode(suffix, BGR)[1].tobytes())
        assert image.shape == (48, 64, 3) and np.abs(image.astype(int) - BGR).mean() < 3
    with pytest.raises(ImageDecodeError):
        compressed_to_bgr(b"\xff\xd8 not a jpeg")


def test_unknown_encoding_and_short_data_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="unknown encoding 'yuv422'"):
        raw_to_bgr("yuv422", 2, 2, 4, bytes(8), False)
    with pytest.raises(ImageDecodeError, match="needs 576 bytes"):
        raw_to_bgr("bgr8", 4, 48, 144, bytes(100), False)
