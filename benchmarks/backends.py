"""Every backend and precision side by side in one run, on the same bundles and real frames.

    .venv/bin/python benchmarks/backends.py [--models inceptionv3:299 resnet50:224 mobilenetv2:224] [--runs 20]

Per model, an FP32 bundle and an INT8 bundle (calibrated on 64 frames of 720p street footage,
for this CPU's target) run on: onnxruntime FP32 / INT8, OpenVINO FP32 / BF16 / INT8, and what
`--device auto` picks for each. Columns: batch-1 and batch-8 milliseconds per frame, batch-8
throughput relative to onnxruntime FP32, mean feature cosine against onnxruntime FP32 on 16 real
frames, and start-up (a fresh process: import, verify, compile or session, first frame).
Random weights, except MobileNetV2 (the real ImageNet weights that ship offline).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_line, ensure_bundle, int8_bundle, video_720p  # noqa: E402

from edgeft.runtime import EdgeftError, Engine  # noqa: E402
from edgeft.runtime.bench import cold_start  # noqa: E402
from edgeft.runtime.preprocess import prepare_batch  # noqa: E402
from edgeft.runtime.proof import compare  # noqa: E402

ARMS = [  # (label, bundle kind, device, precision)
    ("onnxruntime FP32", "fp32", "cpu", None), ("OpenVINO FP32", "fp32", "openvino", "fp32"),
    ("OpenVINO BF16", "fp32", "openvino", "bf16"), ("auto, FP32 bundle", "fp32", "auto", None),
    ("onnxruntime INT8", "int8", "cpu", None), ("OpenVINO INT8", "int8", "openvino", None), ("auto, INT8 bundle", "int8", "auto", None),
]


def frames_of(video: Path, count: int) -> list[np.ndarray]:
    capture, out = cv2.VideoCapture(str(video)), []
    while len(out) < count and (frame := capture.read()[1]) is not None:
        out.append(frame)
    return out


def ms_per_frame(engine: Engine, batch: np.ndarray, runs: int) -> float:
    for _ in range(3):
        engine.run(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.run(batch)
        times.append((time.perf_counter() - start) * 1000 / len(batch))
    return float(np.median(times))


def measure(bundle: Path, device: str, precision: str | None, frames: list[np.ndarray], runs: int,
            reference: dict[str, np.ndarray] | None) -> dict:
    engine = Engine.load(bundle, device=device, precision=precision)
    spec = engine.manifest.input
    batch = prepare_batch(frames[:8], spec)
    row = {"running": engine.provider, "b1": ms_per_frame(engine, batch[:1], runs), "b8": ms_per_frame(engine, batch, max(5, runs // 2))}
    features = engine.run(prepare_batch(frames[:16], spec))
    row["cosine"] = compare(reference, features, engine.manifest.task)["feature_cosine_mean"] if reference else 1.0
    del engine
    gc.collect()
    row["startup"] = cold_start(bundle, device, precision)["to_first_result_s"]
    return row, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["inceptionv3:299", "resnet50:224", "mobilenetv2:224"])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    video = video_720p(300)
    frames = frames_of(video, 16)
    print(f"CPU: {cpu_line()}\n")
    print("| model | backend and precision | running | b1 ms | b8 ms/frame | b8 vs ORT FP32 | cosine vs ORT FP32 | start-up s |")
    print("|---|---|---|---|---|---|---|---|")
    from edgeft.offline import DEEPSORT_MOBILENETV2

    for item in args.models:
        name, size = item.split(":")
        backbone = {"inceptionv3": "InceptionV3", "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2"}[name]
        weights = str(DEEPSORT_MOBILENETV2) if name == "mobilenetv2" and DEEPSORT_MOBILENETV2 else "none"
        bundles = {"fp32": ensure_bundle(backbone, int(size), weights), "int8": int8_bundle(backbone, int(size), video, weights)}
        reference, base = None, None
        for label, kind, device, precision in ARMS:
            try:
                row, features = measure(bundles[kind], device, precision, frames, args.runs, reference)
            except EdgeftError as exc:
                print(f"| {name} {size} | {label} | not run: {exc} | | | | | |")
                continue
            reference = reference or features
            base = base or row["b8"]
            print(f"| {name} {size} | {label} | {row['running']} | {row['b1']:.2f} | {row['b8']:.2f} | {base / row['b8']:.2f}x "
                  f"| {row['cosine']:.5f} | {row['startup']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
