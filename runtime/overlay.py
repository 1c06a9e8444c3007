"""Drawing predictions on frames: steering gauge, class label, class activation map."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .errors import FrameError
from .manifest import Manifest
from .preprocess import to_bgr
from .results import Result, decode


def caption(result: Result, manifest: Manifest) -> list[str]:
    """The text drawn on a frame (video, window, Foxglove annotations): the prediction, then where from."""
    decoded = decode(manifest, result.outputs)
    if not result.valid:
        first = f"invalid: {result.reason}"
    elif decoded.steering is not None:
        first = f"steer {decoded.steering:+.3f}" + (f"  truth {result.truth:+.3f}" if result.truth is not None else "")
    elif decoded.label is not None:
        first = f"{decoded.label} {decoded.score:.2f}"
    else:
        first = f"features {tuple(result.outputs[manifest.output('features').name].shape)}"
    return [first, f"{result.source} #{result.frame}  {result.latency_ms:.0f} ms"]


def arrow_points(width: int, height: int, steering: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """Steering in [-1, 1] (Udacity: +-25 degrees) as an arrow from the bottom centre: (base, tip)."""
    angle = math.radians(25.0 * max(-1.0, min(1.0, steering)))
    base = (width // 2, height - 5)
    length = height * 0.35
    return base, (int(base[0] + length * math.sin(angle)), int(base[1] - length * math.cos(angle)))


def picture(result: Result) -> np.ndarray | None:
    """The result's frame as a 3-channel BGR image, or None when it has none to show (an invalid
    frame may carry a 0x0 or 2-channel array): what every image-writing sink draws from."""
    try:
        return to_bgr(result.image) if result.image is not None else None
    except FrameError:
        return None


def annotate(image: np.ndarray, result: Result, manifest: Manifest) -> np.ndarray:
    """Draw the prediction: a steering gauge for regression, label + score (and the class
    activation map) for classification."""
    canvas = to_bgr(image).copy()
    h, w = canvas.shape[:2]
    decoded = decode(manifest, result.outputs)
    if result.valid and decoded.steering is not None:
        for value, color in ((result.truth, (0, 200, 0)), (decoded.steering, (0, 0, 255))):
            if value is not None:
                base, tip = arrow_points(w, h, value)
                cv2.arrowedLine(canvas, base, tip, color, max(2, w // 160), cv2.LINE_AA, tipLength=0.2)
    cam = manifest.output("cam")
    if result.valid and decoded.index is not None and cam is not None:
        canvas = cam_overlay(canvas, result.outputs[cam.name][..., decoded.index])
    scale = max(0.4, w / 900)  # Hershey font scale: legible from 320-px frames up
    for i, text in enumerate(caption(result, manifest)):
        y = int((i + 1) * 34 * scale)
        cv2.putText(canvas, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def cam_overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a class activation map (h x w, any scale) over a BGR frame as a JET heat map."""
    span = float(cam.max() - cam.min())
    norm = ((cam - cam.min()) / span if span > 0 else np.zeros_like(cam)) * 255
    heat = cv2.applyColorMap(cv2.resize(norm.astype(np.uint8), (image.shape[1], image.shape[0]),
                                        interpolation=cv2.INTER_CUBIC), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 1 - alpha, heat, alpha, 0)
