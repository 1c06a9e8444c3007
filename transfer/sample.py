"""The built-in driving sample: the built-in road (`edgeft.drive.road`) seen by a three-camera rig.

It is synthetic, and says so. Each tick is a moment on the road with a known pose: the car
weaves about the centre line (offset and heading), as a human does when recording recovery
data, and the log's steering is what the road's expert would command from that pose (follow the
bend, steer back, turn the heading error out). The side cameras sit CAMERA_OFFSET off the centre,
so extract's default `--correction 0.2` gives their views the expert's label exactly. That makes
it a fair smoke test of the whole path, and a head trained on it can be judged in the loop on the
same road by `edgeft sim`; it is not a benchmark of driving skill.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from edgeft.drive.road import CAMERA_OFFSET, HEIGHT, LAP_M, LOOKAHEAD_M, WIDTH, View, curvature, expert_steering, render

LATERAL_WEAVE, HEADING_WEAVE = 0.3, 0.07  # amplitudes of the recorded weave (half-widths, radians)
JPEG_QUALITY = 75  # what the simulators' Texture2D.EncodeToJPG writes, and so what `edgeft sim` sends


def pose_at(t: int, rng: np.random.Generator) -> tuple[float, float]:
    """Lateral offset and heading of tick t: two slow incommensurate weaves plus a little noise,
    so the poses cover the offsets and headings a closed loop visits."""
    lateral = LATERAL_WEAVE * math.sin(2 * math.pi * t / 37 + 0.3) + 0.1 * rng.standard_normal()
    heading = HEADING_WEAVE * math.sin(2 * math.pi * t / 23 + 1.0) + 0.02 * rng.standard_normal()
    return lateral, heading


def make_driving_sample(folder: Path, frames: int = 120, seed: int = 0) -> Path:
    """Write IMG/*.jpg for three cameras, driving_log.csv and center.mp4; return the log's path.
    The ticks are spread evenly over one lap of the road."""
    images = folder / "IMG"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    log_path = folder / "driving_log.csv"
    video = cv2.VideoWriter(str(folder / "center.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (WIDTH, HEIGHT))
    with open(log_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["center", "left", "right", "steering", "throttle", "brake", "speed"])
        for t in range(frames):
            s = t * LAP_M / frames
            lateral, heading = pose_at(t, rng)
            view = View(curvature(s + LOOKAHEAD_M), lateral, heading, travel=s)
            steering = expert_steering(view)
            names = []
            for camera, shift in (("center", 0.0), ("left", -CAMERA_OFFSET), ("right", CAMERA_OFFSET)):
                frame = render(replace(view, lateral=lateral + shift), rng)
                name = f"IMG/{camera}_{t:05d}.jpg"
                cv2.imwrite(str(folder / name), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if camera == "center":
                    video.write(frame)
                names.append(name)
            speed = 9.0 - 3.0 * abs(steering)
            writer.writerow([*names, f"{steering:.4f}", f"{0.3 + 0.2 * (1 - abs(steering)):.3f}", "0", f"{speed:.2f}"])
    video.release()
    return log_path
