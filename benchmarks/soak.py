"""Soak: `edgeft run` over a looped image folder with every file sink on, RSS sampled each second.

    .venv/bin/python benchmarks/soak.py [--frames 100000] [--size 96]

A real process (`edgeft run --loop --max-frames N --output --features --save-video`) on
MobileNetV2 (random weights, SIZE x SIZE, exported once into benchmarks/.work) over 64 real
video frames written as 320x240 JPEGs. Memory must stay flat: telemetry is fixed-size, sinks stream to
disk. Prints start / peak / end RSS and the slope over the second half of the run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_line, ensure_bundle, source_clip  # noqa: E402


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def write_frames(folder: Path, count: int = 64) -> None:
    """Real frames at 320x240: the soak is about memory over time, not decode cost."""
    capture = cv2.VideoCapture(str(source_clip()))
    for i in range(count):
        ok, frame = capture.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--device", default="auto", help="as for `edgeft run` (auto picks OpenVINO BF16 where it can)")
    args = parser.parse_args()
    bundle = ensure_bundle("MobileNetV2", args.size)
    work = Path(tempfile.mkdtemp(prefix="edgeft-soak-"))
    try:
        (work / "frames").mkdir()
        write_frames(work / "frames")
        command = [sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(work / "frames"), "--loop",
                   "--max-frames", str(args.frames), "--output", str(work / "p.jsonl"), "--features", str(work / "feat"),
                   "--save-video", str(work / "v.mp4"), "--device", args.device, "--quiet"]
        start = time.monotonic()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, float]] = []
        while proc.poll() is None:
            value = rss_mb(proc.pid)
            if value is not None:
                samples.append((time.monotonic() - start, value))
            time.sleep(1.0)
        out, errors = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"edgeft run failed ({proc.returncode}): {errors[-500:]}")
        rows = sum(1 for _ in open(work / "p.jsonl"))
        shards = len(list((work / "feat").glob("shard-*.npy")))
        video_mb = (work / "v.mp4").stat().st_size / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)
    values = [v for t, v in samples if t >= 3.0]  # from 3 s on: the process has imported and loaded the bundle
    second_half = samples[len(samples) // 2 :]
    slope = (second_half[-1][1] - second_half[0][1]) / max(second_half[-1][0] - second_half[0][0], 1e-9) * 60
    print(f"CPU: {cpu_line()}")
    print(f"{args.frames} frames in {samples[-1][0]:.0f} s ({args.frames / samples[-1][0]:.0f} frames/s), "
          f"{rows} prediction rows, {shards} feature shards, {video_mb:.0f} MB of video")
    print("| RSS MB | start (3 s in) | peak | end (last sample) | slope, 2nd half |")
    print("|---|---|---|---|---|")
    print(f"| edgeft run --device {args.device}, every sink | {values[0]:.0f} | {max(values):.0f} | {values[-1]:.0f} | {slope:+.2f} MB/min |")


if __name__ == "__main__":
    main()
