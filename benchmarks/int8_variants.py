"""Which INT8 settings pay on this CPU, and where INT8 time goes (onnxruntime's profiler).

    .venv/bin/python benchmarks/int8_variants.py [--models inceptionv3:299 mobilenetv2:224:real] [--rounds 3]

Each variant quantizes the same FP32 bundle (static, calibrated on 64 frames of the 720p street
clip, cosine on 32 held-out ones) and is timed at batch 8 round-robin against the FP32 model,
one session alive at a time. "edgeft" is what `export --int8` does; the others change one thing.
The profile splits batch-8 time by operator for FP32, INT8 with the pools left in, and edgeft.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_bundle, timed, video_720p  # noqa: E402
from edgeft.export.agreement import compare, run_model  # noqa: E402
from edgeft.export.pooling import pools_as_convolutions  # noqa: E402
from edgeft.export.quantize import Int8Config, calibration_frames  # noqa: E402
from edgeft.offline import DEEPSORT_MOBILENETV2  # noqa: E402
from edgeft.runtime import read_manifest  # noqa: E402

EDGEFT = dict(quant_format="QDQ", per_channel=True, reduce_range=True, activation_type="QUInt8", weight_type="QInt8")
VARIANTS = {  # name: (rewrite pools, leave depthwise convolutions FP32, quantize_static arguments)
    "edgeft": (True, False, EDGEFT),
    "pools kept": (False, False, EDGEFT),
    "QOperator": (True, False, {**EDGEFT, "quant_format": "QOperator"}),
    "per-tensor weights": (True, False, {**EDGEFT, "per_channel": False}),
    "8-bit weights": (True, False, {**EDGEFT, "reduce_range": False}),
    "U8U8": (True, False, {**EDGEFT, "weight_type": "QUInt8"}),
    "S8S8": (True, False, {**EDGEFT, "activation_type": "QInt8"}),
    "depthwise FP32": (True, True, EDGEFT),
}
PROFILED = ("pools kept", "edgeft")


def quantize(prepared: Path, out: Path, calib: np.ndarray, input_name: str, rewrite: bool, keep_depthwise: bool,
             args: dict) -> bytes:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(prepared))
    if rewrite:
        model = pools_as_convolutions(model)
    source = out.with_suffix(".in.onnx")
    onnx.save(model, str(source))
    exclude = [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul")]
    if keep_depthwise:
        exclude += [n.name for n in model.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._frames = iter(calib[i : i + 1] for i in range(len(calib)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._frames, None)
            return None if frame is None else {input_name: frame}

    quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat[args["quant_format"]],
                    per_channel=args["per_channel"], reduce_range=args["reduce_range"],
                    activation_type=QuantType[args["activation_type"]], weight_type=QuantType[args["weight_type"]],
                    nodes_to_exclude=exclude)
    return out.read_bytes()


def throughput(model: bytes, batch: np.ndarray, input_name: str, runs: int = 8) -> float:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    timed(lambda: session.run(None, {input_name: batch}), 2)
    return len(batch) * 1000 / float(np.median(timed(lambda: session.run(None, {input_name: batch}), runs)))


def op_profile(model: bytes, batch: np.ndarray, input_name: str, folder: Path) -> Counter:
    """Milliseconds per operator type over 5 batch runs."""
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
    from onnxruntime.quantization.shape_inference import quant_pre_process

    bundle = ensure_bundle(name, size, weights)
    manifest = read_manifest(bundle)
    spec = manifest.input
    frames = calibration_frames(spec, Int8Config(str(video_720p(300))))
    calib, holdout, batch = frames[:64], frames[64:96], frames[:8]
    fp32 = (bundle / "model.onnx").read_bytes()
    reference = run_model(fp32, manifest, holdout)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepared = work / "prepared.onnx"
        quant_pre_process(str(bundle / "model.onnx"), str(prepared), skip_symbolic_shape=True)
        models = {v: quantize(prepared, work / f"{i}.onnx", calib, spec.name, *VARIANTS[v]) for i, v in enumerate(VARIANTS)}
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
        profiles = {arm: op_profile(model, batch, spec.name, work) for arm, model in arms.items()}
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
