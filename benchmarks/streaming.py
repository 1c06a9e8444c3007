"""Pure inference vs end-to-end streaming from a 720p video, side by side in one run.

    .venv/bin/python benchmarks/streaming.py [--frames 300] [--models mobilenetv2:224 inceptionv3:299] [--batches 1 8]
                                             [--device openvino --precision bf16]

Pure inference: the same frames, already decoded and resized in memory, through Engine.run in
batches of B. Streaming (same B, `--batch` in the CLI): `Pipeline(open_source(video), engine)`: decode + resize in the capture
thread, inference in the main thread, results with capture-to-result latency. Random weights
(timing does not depend on them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_line, ensure_bundle, pct, timed, video_720p  # noqa: E402

from edgeft.runtime import Engine, Pipeline, PipelineConfig, open_source  # noqa: E402
from edgeft.runtime.preprocess import prepare_batch  # noqa: E402


def decoded_frames(video: Path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def measure(bundle: Path, video: Path, frames: list[np.ndarray], batch: int, threads: int | None, device: str,
            precision: str | None) -> dict[str, float]:
    engine = Engine.load(bundle, threads=threads, device=device, precision=precision)
    inputs = [prepare_batch(frames[i : i + batch], engine.manifest.input) for i in range(0, len(frames) - batch + 1, batch)]
    for x in inputs[:3]:
        engine.run(x)  # warm-up
    it = iter(inputs)
    pure = timed(lambda: engine.run(next(it)), len(inputs))
    pipeline = Pipeline(open_source(str(video)), engine, PipelineConfig(batch=batch))
    count = sum(1 for _ in pipeline)
    stats = pipeline.stats
    lat = stats.latency_percentiles()
    return {
        "frames": count,
        "pure_fps": 1000 * batch / np.mean(pure), "pure_p50": pct(pure, 50), "pure_p99": pct(pure, 99),
        "stream_fps": stats.fps, "lat_p50": lat["p50"], "lat_p90": lat["p90"], "lat_p99": lat["p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--models", nargs="+", default=["mobilenetv2:224", "inceptionv3:299"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu (onnxruntime FP32) | openvino | auto")
    parser.add_argument("--precision", default=None, help="fp32 | bf16 with a named device")
    args = parser.parse_args()
    video = video_720p(args.frames)
    frames = decoded_frames(video)
    capture = cv2.VideoCapture(str(video))
    decode = timed(lambda: capture.read(), min(len(frames), 200))
    print(f"CPU: {cpu_line()}; device {args.device} {args.precision or ''}")
    print(f"video: {video.name}, {len(frames)} frames 1280x720 mp4v; decode alone p50 {pct(decode, 50):.2f} ms/frame")
    print()
    header = f"{'model':<18}{'batch':>6}{'pure fps':>10}{'stream fps':>12}{'stream/pure':>13}{'infer p50':>11}{'infer p99':>11}{'e2e p50':>10}{'e2e p90':>10}{'e2e p99':>10}"
    print(header)
    print("-" * len(header))
    for item in args.models:
        name, size = item.split(":")
        for batch in args.batches:
            r = measure(ensure_bundle(name, int(size)), video, frames, batch, args.threads, args.device, args.precision)
            print(f"{name + ' ' + size:<18}{batch:>6}{r['pure_fps']:>10.1f}{r['stream_fps']:>12.1f}{r['stream_fps'] / r['pure_fps']:>12.0%}"
                  f"{r['pure_p50']:>9.1f}ms{r['pure_p99']:>9.1f}ms{r['lat_p50']:>8.1f}ms{r['lat_p90']:>8.1f}ms{r['lat_p99']:>8.1f}ms")
    print("\ninfer p50/p99: one Engine.run call of B frames. e2e latency = capture (frame decoded) to result, through the pipeline's decode-ahead queue")


if __name__ == "__main__":
    main()
