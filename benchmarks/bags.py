"""ROS bags end to end, side by side in one run: pure inference vs streaming from a bag of 720p
JPEG frames (three cameras, synced by stamp), peak RSS replaying a bag of over 1 GB, and the
cost of --record (MCAP) and --foxglove (live server, no viewer) on the same run.

    .venv/bin/python benchmarks/bags.py [--gigabytes 1.1] [--ticks 150] [--models mobilenetv2:224 inceptionv3:299]

The bag is written by this script (rosbags' ROS 1 writer) from real footage upscaled to 720p,
once, into benchmarks/.work. Random weights (timing does not depend on them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import WORK, clip_frames, cpu_line, ensure_bundle  # noqa: E402

from edgeft.runtime import Engine, Pipeline, PipelineConfig, open_source  # noqa: E402
from edgeft.runtime.preprocess import prepare_batch  # noqa: E402


def write_bag(gigabytes: float) -> Path:
    """Three 720p JPEG cameras at 20 Hz plus a 50 Hz steering report, until the bag holds `gigabytes`."""
    from bagfiles import T0, steering_at, typestore
    from rosbags.rosbag1 import Writer

    path = WORK / f"rig-720p-{gigabytes:g}GB.bag"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    store = typestore(ros1=True)
    types, frames = store.types, clip_frames()
    image_type, steer_type = "sensor_msgs/msg/CompressedImage", "dbw_mkz_msgs/msg/SteeringReport"

    def header(t: float):
        return types["std_msgs/msg/Header"](seq=0, stamp=types["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int((t % 1) * 1e9)),
                                            frame_id="base_link")

    written, tick = 0, 0
    with Writer(path) as writer:
        cameras = {c: writer.add_connection(f"/{c}_camera/image_color/compressed", image_type, typestore=store)
                   for c in ("left", "center", "right")}
        steering = writer.add_connection("/vehicle/steering_report", steer_type, typestore=store)
        while written < gigabytes * 1e9:
            frame = next(frames)
            t = T0 + tick * 0.05
            for shift, (camera, connection) in zip((-40, 0, 40), cameras.items()):
                view = cv2.resize(np.roll(frame, shift, axis=1), (1280, 720), interpolation=cv2.INTER_CUBIC)
                jpeg = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, 92])[1]
                msg = types[image_type](header=header(t), format="jpeg", data=jpeg.reshape(-1))
                writer.write(connection, int((t + 0.002) * 1e9), store.serialize_ros1(msg, image_type))
                written += jpeg.size
            for k in range(2 if tick % 2 else 3):
                ts = t + k * 0.02
                msg = types[steer_type](header=header(ts), steering_wheel_angle=np.float32(steering_at(ts)), speed=np.float32(10))
                writer.write(steering, int(ts * 1e9), store.serialize_ros1(msg, steer_type))
            tick += 1
    return path


def first_frames(bag: Path, ticks: int) -> list[np.ndarray]:
    frames = []
    with open_source(str(bag)) as source:
        while len(frames) < 3 * ticks and (tick := source.read()) is not None:
            frames += [f.image for f in tick]
    return frames


def pure_vs_stream(bundle: Path, bag: Path, frames: list[np.ndarray], ticks: int) -> tuple[float, float]:
    """Frames per second: Engine.run on decoded frames (one rig tick of 3 per call) vs the pipeline."""
    engine = Engine.load(bundle, device="cpu")  # onnxruntime FP32 on the CPU: the streaming cost, not a backend choice
    batches = [prepare_batch(frames[i : i + 3], engine.manifest.input) for i in range(0, len(frames), 3)]
    for batch in batches[:3]:
        engine.run(batch)
    start = time.perf_counter()
    for batch in batches:
        engine.run(batch)
    pure = len(frames) / (time.perf_counter() - start)
    with open_source(str(bag)) as source:
        pipeline = Pipeline(source, engine, PipelineConfig(max_ticks=ticks))
        for _ in pipeline:
            pass
    return pure, pipeline.stats.fps


def cli_run(bundle: Path, bag: Path, ticks: int | None, *extra: str) -> tuple[float, float]:
    """A real `edgeft run` process: (wall seconds, peak RSS MB from VmHWM)."""
    code = ("import resource, runpy, sys; sys.argv = ['edgeft'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('edgeft', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], file=sys.stderr)\n")
    args = ["run", "--model", str(bundle), "--source", str(bag), "--device", "cpu", "--quiet", *extra]
    if ticks:
        args += ["--max-frames", str(ticks)]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if "error:" in proc.stderr:
        raise SystemExit(proc.stderr[-400:])
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.1)
    parser.add_argument("--ticks", type=int, default=150)
    parser.add_argument("--models", nargs="+", default=["mobilenetv2:224", "inceptionv3:299"])
    args = parser.parse_args()
    bag = write_bag(args.gigabytes)
    print(f"CPU: {cpu_line()}")
    print(f"bag: {bag.name}, {bag.stat().st_size / 1e9:.2f} GB, 3 x 1280x720 JPEG at 20 Hz + steering\n")
    frames = first_frames(bag, args.ticks)
    print("| model | pure inference, frames/s | from the bag end to end, frames/s | end to end / pure |")
    print("|---|---|---|---|")
    for item in args.models:
        name, size = item.split(":")
        pure, stream = pure_vs_stream(ensure_bundle(name, int(size)), bag, frames, args.ticks)
        print(f"| {name} {size} | {pure:.1f} | {stream:.1f} | {stream / pure:.0%} |")
    small = ensure_bundle("MobileNetV2", 224)
    work = WORK / "bag-outputs"
    work.mkdir(exist_ok=True)
    print(f"\n| `edgeft run` MobileNetV2 224, {args.ticks} ticks | wall s | vs plain | peak RSS MB |")
    print("|---|---|---|---|")
    plain, rss = cli_run(small, bag, args.ticks)
    print(f"| plain | {plain:.1f} | 1.00x | {rss:.0f} |")
    for label, extra in (("--record run.mcap", ["--record", str(work / "run.mcap"), "--force"]),
                         ("--foxglove 127.0.0.1:0 (no viewer)", ["--foxglove", "127.0.0.1:0"])):
        wall, rss = cli_run(small, bag, args.ticks, *extra)
        print(f"| {label} | {wall:.1f} | {wall / plain:.2f}x | {rss:.0f} |")
    wall, rss = cli_run(small, bag, None)
    print(f"\nwhole {bag.stat().st_size / 1e9:.2f} GB bag through MobileNetV2 224: {wall:.0f} s, peak RSS {rss:.0f} MB (VmHWM)")


if __name__ == "__main__":
    main()
