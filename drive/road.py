"""The built-in road: a known curvature profile, and what a camera on it sees from any pose.

Both the driving sample (`edgeft sample`, a three-camera log) and the built-in simulator
(`edgeft sim`) draw with this one renderer, so a head trained on the sample is judged in the
loop on the very road it learned from. It is synthetic and says so: curvature, lateral offset and
heading are exact, which is what makes the loop's numbers checkable.

Units: curvature in steering units (1 = the car's full lock: the steering that follows the bend),
lateral offset in lane half-widths (+ = the camera is right of the centre line), heading in
radians (+ = pointing right of the road's direction), travel in metres along the road.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

HEIGHT, WIDTH = 160, 320  # the Udacity simulator's frame size
HORIZON = int(HEIGHT * 0.42)
FOCAL_PX = 180.0  # the camera's focal length: a heading error shifts the whole road by FOCAL_PX * heading
LAP_M = 240.0  # one period of the curvature profile, in metres
LOOKAHEAD_M = 3.0  # a view shows the bend this far ahead of the car
CAMERA_OFFSET = 0.35  # the rig's left/right cameras sit this far (half-widths) off the centre camera
SIDE_CORRECTION = 0.2  # ... so their steering is the centre's +-0.2 (extract's default --correction)
K_LATERAL = SIDE_CORRECTION / CAMERA_OFFSET  # the expert's steering per half-width of offset
K_HEADING = 1.7  # ... and per radian of heading: damps the weave (about 0.7 of critical at 9 mph)
SKY, GRASS, ROAD, PAINT, POST = (235, 200, 130), (60, 140, 70), (95, 95, 100), (230, 230, 230), (40, 70, 110)


def curvature(s: float) -> float:
    """The road's curvature (steering units) at `s` metres along it; periodic over LAP_M."""
    phase = 2 * math.pi * s / LAP_M
    return float(np.clip(0.45 * math.sin(2 * phase) + 0.2 * math.sin(5 * phase + 1.0), -1.0, 1.0))


@dataclass(frozen=True)
class View:
    """Where the camera is: the bend ahead, its offset and heading, and how far it has come."""

    curvature: float
    lateral: float = 0.0
    heading: float = 0.0
    travel: float = 0.0


def expert_steering(view: View) -> float:
    """What the sample's log says for a view: follow the bend, steer back toward the centre line
    and turn the heading error out. Linear and odd, so a mirrored view has the negated label, and
    a side camera's label is the centre's +-SIDE_CORRECTION exactly."""
    return float(np.clip(view.curvature - K_LATERAL * view.lateral - K_HEADING * view.heading, -1.0, 1.0))


_ROWS = np.arange(HORIZON, HEIGHT)
_DEPTH = (HEIGHT - _ROWS) / (HEIGHT - HORIZON)  # 0 at the bottom, 1 at the horizon
_HALF = WIDTH * 0.45 * (1 - 0.92 * _DEPTH)  # the lane's half-width on each row, in pixels
_COLS = np.arange(WIDTH)[None, :]
_SKY = np.linspace(1.0, 0.72, HORIZON)[:, None, None] * np.array(SKY, float)


def render(view: View, rng: np.random.Generator) -> np.ndarray:
    """One BGR frame: sky, grass, the road bending by `view.curvature`, dashed centre line, roadside posts."""
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:HORIZON] = _SKY.astype(np.uint8)
    centre = WIDTH / 2 + WIDTH * 0.55 * view.curvature * _DEPTH**2 - view.lateral * _HALF - FOCAL_PX * view.heading
    offset = np.abs(_COLS - centre[:, None])
    ground = np.empty((len(_ROWS), WIDTH, 3), np.uint8)
    ground[:] = GRASS
    ground[offset < _HALF[:, None]] = ROAD
    edge = np.abs(offset - _HALF[:, None]) < 1.0
    dashed = (np.floor(_DEPTH * 18 + view.travel * 0.5) % 2 == 0)[:, None]
    ground[edge | (dashed & (offset < np.maximum(1.0, _HALF * 0.04)[:, None]))] = PAINT
    image[HORIZON:] = ground
    for k in range(3):  # posts rushing past on both sides
        d = ((k / 3) - view.travel * 0.017) % 1.0
        y = int(HEIGHT - d * (HEIGHT - HORIZON))
        i = min(max(y - HORIZON, 0), len(_ROWS) - 1)
        size = max(2, int(12 * (1 - d)))
        for side in (-1, 1):
            x = int(centre[i] + side * _HALF[i] * 1.25)
            cv2.rectangle(image, (x - size // 3, y - size * 2), (x + size // 3, y), POST, -1)
    # Blotchy texture (8-pixel grain) with a little fine noise: a JPEG keeps most of it, so the
    # features of a frame hardly depend on the encoder's quality (pure pixel noise is erased at q75).
    coarse = rng.normal(0, 10, (HEIGHT // 8, WIDTH // 8)).astype(np.float32)
    texture = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)[..., None]
    noise = texture + rng.normal(0, 2, image.shape).astype(np.float32)
    return np.clip(image + noise, 0, 255).astype(np.uint8)
