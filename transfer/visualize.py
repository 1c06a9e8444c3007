"""What a backbone "sees": its feature activations tiled into one mosaic, and the class
activation map of the predicted class over the image (bundles exported with --cam)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from edgeft.runtime import Engine, cam_overlay


def grid_shape(count: int) -> tuple[int, int]:
    """Rows x columns for `count` tiles: the squarest exact factorisation (2048 -> 32 x 64)."""
    rows = max(d for d in range(1, int(math.isqrt(count)) + 1) if count % d == 0)
    if rows * 4 < math.isqrt(count):  # a near-prime count: accept a few blank tiles instead
        rows = math.isqrt(count)
    return rows, -(-count // rows)


def activation_mosaic(features: np.ndarray, tile: int = 8) -> np.ndarray:
    """A feature vector becomes one pixel per channel; a feature map (h x w x C) one tile per
    channel, each normalised on its own so weak channels still show their pattern."""
    maps = features.reshape(1, 1, -1) if features.ndim == 1 else features
    h, w, channels = maps.shape
    rows, cols = grid_shape(channels)
    if features.ndim == 1:
        lo, hi = float(maps.min()), float(maps.max())
        norm = (maps - lo) / (hi - lo) if hi > lo else np.zeros_like(maps)
    else:
        lo, hi = maps.min(axis=(0, 1)), maps.max(axis=(0, 1))
        norm = (maps - lo) / np.where(hi > lo, hi - lo, 1)
    canvas = np.zeros((rows * h, cols * w), np.float32)
    for c in range(channels):
        r, k = divmod(c, cols)
        canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = norm[..., c]
    scale = max(1, tile if features.ndim == 1 else 48 // max(h, 1))
    image = cv2.resize((canvas * 255).astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return cv2.applyColorMap(image, cv2.COLORMAP_VIRIDIS)


def visualize(engine: Engine, image: np.ndarray, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    result = engine.predict(image)
    written = [out / f"{stem}-activations.png"]
    cv2.imwrite(str(written[0]), activation_mosaic(result["features"]))
    cam = engine.manifest.output("cam")
    if cam is not None:
        probs = result[engine.manifest.output("prediction").name].reshape(-1)
        best = int(probs.argmax())
        label = engine.manifest.labels[best] if engine.manifest.labels else f"class {best}"
        overlay = cam_overlay(image if image.ndim == 3 and image.shape[2] == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), result[cam.name][..., best])
        cv2.putText(overlay, f"{label} {probs[best]:.2f}", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
        written.append(out / f"{stem}-cam-{label}.png")
        cv2.imwrite(str(written[-1]), overlay)
    return written
