"""Which INT8 settings pay on this CPU, and where INT8 time goes (onnxruntime's profiler).

    .venv/bin/python benchmarks/int8_variants.py [--models inceptionv3:299 mobilenetv2:224:real] [--rounds 3]

Each variant quantizes the same FP32 bundle (static, calibrated on 64 frames of the 720p street
clip, cosine on 32 held-out ones) and is timed at batch 8 round-robin against the FP32 model,
one session alive at a time. "edgeft" is `export --int8 --int8-target avx2` (7-bit weights, bias
correction); the others change one or two things ("8-bit weights" is `--int8-target vnni`).
The profile splits batch-8 time by operator for FP32, INT8 with the pools left in, and edgeft.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_bundle, timed, video_720p  # noqa: E402
from edgeft.export.agreement import run_model  # noqa: E402
from edgeft.runtime.proof import compare  # noqa: E402
from edgeft.export.quantize import Int8Config, QdqSettings, calibration_frames, quantize_graph  # noqa: E402
from edgeft.offline import DEEPSORT_MOBILENETV2  # noqa: E402
from edgeft.runtime import read_manifest  # noqa: E402

EDGEFT = QdqSettings()
VARIANTS = {  # name: (settings, leave depthwise convolutions FP32)
    "edgeft": (EDGEFT, False),
    "no bias correction": (replace(EDGEFT, bias_correction=False), False),
    "pools kept": (replace(EDGEFT, rewrite_pools=False), False),
    "QOperator": (replace(EDGEFT, quant_format="QOperator"), False),
    "per-tensor weights": (replace(EDGEFT, per_channel=False), False),
    "8-bit weights": (replace(EDGEFT, reduce_range=False), False),
    "8-bit weights, no bias correction": (replace(EDGEFT, reduce_range=False, bias_correction=False), False),
    "U8U8": (replace(EDGEFT, weight_type="QUInt8"), False),
    "S8S8": (replace(EDGEFT, activation_type="QInt8"), False),
    "depthwise FP32": (EDGEFT, True),
}
PROFILED = ("pools kept", "edgeft")


def depthwise(node) -> bool:
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def throughput(model: bytes, batch: np.ndarray, input_name: str, runs: int = 8) -> float:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    timed(lambda: session.run(None, {input_name: batch}), 2)
    return len(batch) * 1000 / float(np.median(timed(lambda: session.run(None, {input_name: batch}), runs)))


def op_profile(model: bytes, batch: np.ndarray, input_name: str, folder: Path) -> Counter:
    """Milliseconds per operator type, averaged over 6 batch runs."""
    options = ort.SessionOptions()
    options.enable_profiling, options.profile_file_prefix = True, str(folder / "profile")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    for _ in range(6):
        session.run(None, {input_name: batch})
    events = json.loads(Path(session.end_profiling()).read_text())
    total: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            total[event["args"]["op_name"]] += event["dur"] / 1000 / 6
    return total


def study(name: str, size: int, weights: str, rounds: int) -> None:
    bundle = ensure_bundle(name, size, weights)
    manifest = read_manifest(bundle)
    spec = manifest.input
    frames = calibration_frames(spec, Int8Config(str(video_720p(300))))
    calib, holdout, batch = frames[:64], frames[64:96], frames[:8]
    fp32 = (bundle / "model.onnx").read_bytes()
    reference = run_model(fp32, manifest, holdout)
    models = {v: quantize_graph(fp32, calib, spec, settings, depthwise if fp32_depthwise else lambda node: False)
              for v, (settings, fp32_depthwise) in VARIANTS.items()}
    cosine = {v: compare(reference, run_model(m, manifest, holdout), manifest.task)["feature_cosine_mean"] for v, m in models.items()}
    ratios: dict[str, list[float]] = {v: [] for v in models}
    for _ in range(rounds):
        for variant, model in models.items():
            ratios[variant].append(throughput(model, batch, spec.name) / throughput(fp32, batch, spec.name))
    print(f"\n{name} {size} ({'random' if weights == 'none' else 'real'} weights): INT8 / FP32 throughput at batch 8, "
          f"median of {rounds} rounds\n")
    print("| variant | INT8 / FP32 | feature cosine |\n|---|---|---|")
    for variant in models:
        print(f"| {variant} | {np.median(ratios[variant]):.2f}× | {cosine[variant]:.4f} |")
    arms = {"FP32": fp32, **{f"INT8 {v}": models[v] for v in PROFILED}}
    with tempfile.TemporaryDirectory() as tmp:
        profiles = {arm: op_profile(model, batch, spec.name, Path(tmp)) for arm, model in arms.items()}
    ops = sorted({op for p in profiles.values() for op in p}, key=lambda op: -max(p[op] for p in profiles.values()))[:8]
    print(f"\nbatch-8 time by operator, ms (share):\n\n| op | {' | '.join(arms)} |\n|---|{'---|' * len(arms)}")
    for op in ops:
        cells = [f"{p[op]:.1f} ({p[op] / sum(p.values()):.0%})" if p[op] else "—" for p in profiles.values()]
        print(f"| {op} | {' | '.join(cells)} |")
    print(f"| total | {' | '.join(f'{sum(p.values()):.0f}' for p in profiles.values())} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["inceptionv3:299", "mobilenetv2:224:real"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names = {"inceptionv3": "InceptionV3", "mobilenetv2": "MobileNetV2", "resnet50": "ResNet50"}
    for item in args.models:
        key, size, *real = item.split(":")
        study(names[key], int(size), str(DEEPSORT_MOBILENETV2) if real else "none", args.rounds)


if __name__ == "__main__":
    main()
