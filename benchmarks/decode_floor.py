"""The least a frame's decode can cost on this CPU, against what issue 21's targets allow it.

    .venv/bin/python benchmarks/decode_floor.py [--ticks 100] [--device auto]
        [--models mobilenetv2:160x320:real mobilenetv2:224:real inceptionv3:299] [--video-model mobilenetv2:224:real]

End to end on N cores gets at most N core-ms per N ms, and each frame needs its inference's CPU
time plus its decode's, however the two overlap; nor can it beat inference alone, since the
pipeline makes one inference call at a time. So for a thread setting with pure rate P and
inference CPU I ms a frame, end to end is at most min(N x 1000 / (I + decode), P) frames/s, and
the bound is the best of the default threads and one thread (one may spend less CPU a frame).
A target of r times the pure rate allows the decode N x 1000 / (r x pure) - I CPU-ms a frame,
under a setting whose own rate reaches r x pure. Measured side by side in one run: pure
inference (`--device auto`, one rig tick of 3 frames per call, as pipeline_speed.py) and the
single-threaded decode of the same bag's 720p JPEGs (OpenCV's libjpeg-turbo, timed in this
process after an engine has run, as in a run: a bare process decodes full size slower), in full
(`--decode full`), at the model's default reduction, and at 1/8, the floor: an 8x8 block becomes one pixel, so what is left is mostly the entropy decoding of
every coefficient, which no DCT scaling avoids. For video the floor is FFmpeg's whole H.264
decode (process CPU per frame, its threads included): H.264 has no reduced decode.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bags import write_bag  # noqa: E402
from common import cpu_line  # noqa: E402
from decode_agreement import bundle_for  # noqa: E402
from pipeline_speed import _video_frames, pure_fps  # noqa: E402
from video_threads import decode_alone, make_clip  # noqa: E402

from edgeft.runtime import Engine, open_source  # noqa: E402
from edgeft.runtime.sources.jpeg import decode_reduced, reduction  # noqa: E402

CORES = len(os.sched_getaffinity(0))
TARGETS = {"mobilenetv2:160x320:real": 0.90, "mobilenetv2:224:real": 0.80, "inceptionv3:299": 0.95, "video": 0.85}


def bag_jpegs(bag: Path, ticks: int) -> tuple[list[bytes], list[np.ndarray]]:
    """The bag's first `ticks` ticks as recorded (JPEG bytes) and decoded in full."""
    jpegs: list[bytes] = []
    with open_source(str(bag)) as source:
        while len(jpegs) < 3 * ticks and (tick := source.read()) is not None:
            jpegs += [f.jpeg for f in tick]
    return jpegs, [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_UNCHANGED) for j in jpegs]


def cpu_ms(decode: Callable[[np.ndarray], object], jpegs: list[bytes], passes: int = 3) -> float:
    """Single-thread CPU ms per frame, the least of `passes` passes (the least disturbed)."""
    data = [np.frombuffer(j, np.uint8) for j in jpegs]
    best = float("inf")
    for _ in range(passes):
        start = time.thread_time()
        for d in data:
            decode(d)
        best = min(best, (time.thread_time() - start) * 1000 / len(data))
    return best


def pure_arms(bundle: Path, device: str, frames: list, per_call: int) -> list[tuple[float, float]]:
    """(frames/s, CPU ms/frame) of pure inference at the default threads, then at one thread."""
    return [pure_fps(Engine.load(bundle, device=device, threads=threads), frames, per_call) for threads in (None, 1)]


def at_most(arms: list[tuple[float, float]], decode: float) -> float:
    """Frames/s end to end can reach: for each thread setting, no more than the cores' time over the
    inference and decode CPU a frame takes, nor more than inference alone (one call at a time)."""
    return max(min(CORES * 1000 / (cpu + decode), fps) for fps, cpu in arms)


def budget(arms: list[tuple[float, float]], rate: float) -> float:
    """The most decode CPU ms a frame may take for end to end to reach `rate` frames/s (< 0: none)."""
    return max((CORES * 1000 / rate - cpu for fps, cpu in arms if fps >= rate), default=-1.0)


def row(label: str, arms: list[tuple[float, float]], decoders: dict[str, float], target: float) -> None:
    pure, allowed = arms[0][0], budget(arms, target * arms[0][0])
    cells = " | ".join(f"{ms:.2f}" for ms in decoders.values())
    over = f"{decoders['floor'] / allowed:.1f}x" if allowed > 0 else "no decode fits"
    print(f"| {label} | {pure:.0f} / {arms[1][0]:.0f} | {arms[0][1]:.2f} / {arms[1][1]:.2f} | {cells} "
          f"| {at_most(arms, decoders['default']) / pure:.0%} | {at_most(arms, decoders['floor']) / pure:.0%} | {target:.0%} "
          f"| {max(allowed, 0):.2f} | {over} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", default=["mobilenetv2:160x320:real", "mobilenetv2:224:real", "inceptionv3:299"])
    parser.add_argument("--video-model", default="mobilenetv2:224:real")
    args = parser.parse_args()
    bag = write_bag(0.15)
    jpegs, frames = bag_jpegs(bag, args.ticks)
    height, width = frames[0].shape[:2]
    print(f"CPU: {cpu_line()}; {CORES} usable; load average before: {os.getloadavg()[0]:.2f}")
    print(f"bag: {bag.name}, {len(jpegs)} frames of {width}x{height}, {np.mean([len(j) for j in jpegs]) / 1024:.0f} KB each\n")
    warm = Engine.load(bundle_for(args.models[0])[1], device=args.device)
    warm.run(np.zeros((1, warm.manifest.input.height, warm.manifest.input.width, 3), np.uint8))
    full = cpu_ms(lambda d: cv2.imdecode(d, cv2.IMREAD_UNCHANGED), jpegs)
    eighth = cpu_ms(lambda d: decode_reduced(d, (1, 1), largest=8), jpegs)
    print("| input, model | pure frames/s: default threads / one | inference CPU ms/frame: default / one | decode CPU ms/frame: "
          "full | at the model's reduction | 1/8 (the floor) | end to end / pure at most: at the model's reduction | at the "
          "floor | target | decode the target allows, CPU ms/frame | floor / allowed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in args.models:
        bundle = bundle_for(item)[1]
        spec = Engine.load(bundle, device=args.device).manifest.input
        default = cpu_ms(lambda d: decode_reduced(d, (spec.height, spec.width)), jpegs)
        decoders = {"full": full, "default": default, "floor": eighth}
        factor = reduction((height, width), (spec.height, spec.width))
        row(f"bag, {item} (1/{factor})", pure_arms(bundle, args.device, frames, 3), decoders, TARGETS[item])
    video = make_clip("h264", 720, 3 * args.ticks)
    h264 = min(decode_alone(video, 0)[1] for _ in range(3))
    arms = pure_arms(bundle_for(args.video_model)[1], args.device, _video_frames(video, 3 * args.ticks), 1)
    print(f"| 720p H.264, {args.video_model} | {arms[0][0]:.0f} / {arms[1][0]:.0f} | {arms[0][1]:.2f} / {arms[1][1]:.2f} | - "
          f"| FFmpeg (all its threads): {h264:.2f} | - | {at_most(arms, h264) / arms[0][0]:.0%} | - | {TARGETS['video']:.0%} "
          f"| {max(budget(arms, TARGETS['video'] * arms[0][0]), 0):.2f} | - |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
