"""ROS image messages as BGR uint8 frames: sensor_msgs/CompressedImage (jpeg, png) and
sensor_msgs/Image in the common encodings, rows cut to `step` and byte order respected.

Bayer patterns map to OpenCV's four-letter codes, which name the pattern as ROS does
(OpenCV's older two-letter names are offset by one row and column).
"""

from __future__ import annotations

import cv2
import numpy as np

from .images import is_jpeg
from .jpeg import Fit, decode_reduced

_CHANNELS = {"bgr8": (3, np.uint8), "rgb8": (3, np.uint8), "bgra8": (4, np.uint8), "rgba8": (4, np.uint8),
             "mono8": (1, np.uint8), "8UC1": (1, np.uint8), "8UC3": (3, np.uint8), "mono16": (1, np.uint16),
             "16UC1": (1, np.uint16)}
_TO_BGR = {"rgb8": cv2.COLOR_RGB2BGR, "bgra8": cv2.COLOR_BGRA2BGR, "rgba8": cv2.COLOR_RGBA2BGR}
_BAYER = {"rggb": cv2.COLOR_BayerRGGB2BGR, "bggr": cv2.COLOR_BayerBGGR2BGR, "gbrg": cv2.COLOR_BayerGBRG2BGR,
          "grbg": cv2.COLOR_BayerGRBG2BGR}
ENCODINGS = tuple(_CHANNELS) + tuple(f"bayer_{p}{bits}" for p in _BAYER for bits in (8, 16))


class ImageDecodeError(Exception):
    """This message holds no image we can decode (unknown encoding, short data, bad JPEG)."""


def compressed_to_bgr(data: np.ndarray | bytes, fit: Fit | None = None) -> np.ndarray:
    """A CompressedImage payload (jpeg or png; 16-bit png scaled to 8 bits); with `fit`, a JPEG
    is decoded at the largest DCT reduction that stays at or above it (`sources.jpeg`)."""
    buffer = np.frombuffer(data, np.uint8)
    image = decode_reduced(buffer, fit) if fit is not None else None
    if image is None:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageDecodeError("compressed image data cannot be decoded")
    return _as_uint8(image)


def raw_to_bgr(encoding: str, height: int, width: int, step: int, data: np.ndarray | bytes, big_endian: bool) -> np.ndarray:
    """A sensor_msgs/Image payload in one of ENCODINGS."""
    bayer = encoding.startswith("bayer_")
    if bayer:
        pattern, bits = encoding[6:10], encoding[10:]
        if pattern not in _BAYER or bits not in ("8", "16"):
            raise ImageDecodeError(f"unknown encoding '{encoding}'")
        channels, dtype = 1, np.uint8 if bits == "8" else np.uint16
    elif encoding in _CHANNELS:
        channels, dtype = _CHANNELS[encoding]
    else:
        raise ImageDecodeError(f"unknown encoding '{encoding}' (known: {', '.join(ENCODINGS)})")
    row = width * channels * np.dtype(dtype).itemsize
    buffer = np.frombuffer(data, np.uint8)
    if step < row or buffer.size < step * height:
        raise ImageDecodeError(f"{encoding} {width}x{height} needs {step * height} bytes, has {buffer.size}")
    rows = buffer[: step * height].reshape(height, step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(">" if big_endian else "<"))
    image = pixels.astype(dtype, copy=False).reshape(height, width, channels)
    if bayer:
        return _as_uint8(cv2.cvtColor(image[..., 0], _BAYER[pattern]))
    image = image[..., 0] if channels == 1 else image
    return _as_uint8(cv2.cvtColor(image, _TO_BGR[encoding]) if encoding in _TO_BGR else image)


def message_to_bgr(msg: object, fit: Fit | None = None) -> np.ndarray:
    """Either message type, told apart by its fields (`fit` reduces JPEG decoding)."""
    if hasattr(msg, "format"):
        return compressed_to_bgr(msg.data, fit)
    return raw_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def recorded_jpeg(msg: object) -> bytes | None:
    """A CompressedImage's bytes when they are a JPEG: what a recording output can keep as recorded."""
    return bytes(msg.data) if hasattr(msg, "format") and is_jpeg(msg.data) else None


def _as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    raise ImageDecodeError(f"unsupported pixel type {image.dtype}")
