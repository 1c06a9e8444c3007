"""The built-in driving sample: a procedurally drawn road seen by a three-camera rig.

It is synthetic, and says so: the road curves by a known steering signal, so the log's
steering column is exactly the curvature that was drawn. That makes it a fair smoke test of
the whole pipeline (and learnable by a steering head), not a benchmark of driving skill.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np

HEIGHT, WIDTH = 160, 320  # the Udacity simulator's frame size
CAMERA_OFFSET = 0.35  # left/right cameras sit this far (in lane half-widths) off the centre line


def steering_at(t: int, frames: int) -> float:
    phase = 2 * math.pi * t / max(frames, 1)
    return float(np.clip(0.45 * math.sin(2 * phase) + 0.2 * math.sin(5 * phase + 1.0), -1.0, 1.0))


def render(steering: float, t: int, lateral: float, rng: np.random.Generator) -> np.ndarray:
    """One BGR frame: sky, grass, a road bending by `steering`, dashed centre line, roadside posts."""
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    horizon = int(HEIGHT * 0.42)
    sky = np.linspace(235, 170, horizon)[:, None]
    image[:horizon] = np.dstack([sky, sky * 0.85, sky * 0.55]).astype(np.uint8)[:, :1].repeat(WIDTH, axis=1)
    image[horizon:] = (60, 140, 70)
    rows = np.arange(horizon, HEIGHT)
    depth = (HEIGHT - rows) / (HEIGHT - horizon)  # 0 at the bottom, 1 at the horizon
    half = WIDTH * 0.45 * (1 - 0.92 * depth)
    centre = WIDTH / 2 + WIDTH * 0.55 * steering * depth**2 - lateral * half
    for y, c, hw, d in zip(rows, centre, half, depth):
        left, right = int(c - hw), int(c + hw)
        image[y, max(left, 0):max(min(right, WIDTH), 0)] = (95, 95, 100)
        if int((d * 18 + t * 0.6)) % 2 == 0:
            dash = max(1, int(hw * 0.04))
            image[y, max(int(c) - dash, 0):max(min(int(c) + dash, WIDTH), 0)] = (230, 230, 230)
        for edge in (left, right):
            image[y, max(edge - 1, 0):max(min(edge + 1, WIDTH), 0)] = (245, 245, 245)
    for k in range(3):  # posts rushing past on both sides
        d = ((k / 3) - t * 0.02) % 1.0
        y = int(HEIGHT - d * (HEIGHT - horizon))
        i = min(max(y - horizon, 0), len(rows) - 1)
        size = max(2, int(12 * (1 - d)))
        for side in (-1, 1):
            x = int(centre[i] + side * half[i] * 1.25)
            cv2.rectangle(image, (x - size // 3, y - size * 2), (x + size // 3, y), (40, 70, 110), -1)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def make_driving_sample(folder: Path, frames: int = 120, seed: int = 0) -> Path:
    """Write IMG/*.jpg for three cameras, driving_log.csv and center.mp4; return the log's path."""
    images = folder / "IMG"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    log_path = folder / "driving_log.csv"
    video = cv2.VideoWriter(str(folder / "center.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (WIDTH, HEIGHT))
    with open(log_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["center", "left", "right", "steering", "throttle", "brake", "speed"])
        for t in range(frames):
            steering = steering_at(t, frames)
            names = []
            for camera, lateral in (("center", 0.0), ("left", -CAMERA_OFFSET), ("right", CAMERA_OFFSET)):
                frame = render(steering, t, lateral, rng)
                name = f"IMG/{camera}_{t:05d}.jpg"
                cv2.imwrite(str(folder / name), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
                if camera == "center":
                    video.write(frame)
                names.append(name)
            speed = 25.0 - 8.0 * abs(steering)
            writer.writerow([*names, f"{steering:.4f}", f"{0.3 + 0.2 * (1 - abs(steering)):.3f}", "0", f"{speed:.2f}"])
    video.release()
    return log_path
