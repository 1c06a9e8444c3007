"""FP16 bundles and IO binding: agreement with FP32, size, and speed side by side on this machine.

    .venv/bin/python benchmarks/precision.py [--device auto] [--runs 20]

Per model: the FP16 bundle's two recorded checks (the FP16 graph as run here, and the FP16
storage emulation), model size, and batch-1 latency of FP32 plain, FP32 with IO binding and FP16
plain, measured round-robin in one process (one session alive at a time: idle sessions spin).
On a CPU this says what FP16 and binding cost there; on a GPU (`--device cuda`) what they buy.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_bundle, timed  # noqa: E402
from edgeft.offline import DEEPSORT_MOBILENETV2, HED_VGG16  # noqa: E402
from edgeft.runtime import Engine, read_manifest  # noqa: E402

MODELS = [("InceptionV3", 299, "none"), ("ResNet50", 224, "none"), ("MobileNetV2", 224, str(DEEPSORT_MOBILENETV2)),
          ("VGG16", 224, str(HED_VGG16))]
ARMS = (("FP32", False, False), ("FP32 + IO binding", False, True), ("FP16", True, False))


def latencies(bundles: dict[bool, Path], device: str, runs: int, rounds: int = 5) -> tuple[dict[str, float], str]:
    """Median batch-1 ms per arm, and the provider that ran them."""
    spec = read_manifest(bundles[False]).input
    frame = np.random.default_rng(0).integers(0, 256, (1, spec.height, spec.width, 3), dtype=np.uint8)
    samples: dict[str, list[float]] = {label: [] for label, _, _ in ARMS}
    for _ in range(rounds):
        for label, half, binding in ARMS:
            engine = Engine.load(bundles[half], device=device, io_binding=binding)
            run = partial(engine.run, frame)
            timed(run, 3)
            samples[label] += timed(run, runs)
            provider = engine.provider
            del engine, run
    return {label: float(np.median(values)) for label, values in samples.items()}, provider


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for name, size, weights in MODELS:
        bundles = {half: ensure_bundle(name, size, weights, fp16=half) for half in (False, True)}
        ms, provider = latencies(bundles, args.device, args.runs)
        mb = {half: (bundles[half] / "model.onnx").stat().st_size / 1e6 for half in (False, True)}
        rows.append((f"{name} {size} ({'random' if weights == 'none' else 'real'})", read_manifest(bundles[True]).fp16, mb, ms))
    print(f"provider: {provider}; FP16 checks vs FP32 on the 6 parity probes (2 noise + 4 photos)\n")
    print("| model | 1 − cosine min: FP16 graph | 1 − cosine min: storage emulation | MB FP32 / FP16 | FP32 ms | FP32 + binding | FP16 |")
    print("|---|---|---|---|---|---|---|")
    for label, half, mb, ms in rows:
        base = ms["FP32"]
        print(f"| {label} | {1 - half.agreement['feature_cosine_min']:.1e} (on {half.checked_on}) | "
              f"{1 - half.storage_emulation['feature_cosine_min']:.1e} | {mb[False]:.0f} / {mb[True]:.0f} | {base:.1f} | "
              f"{ms['FP32 + IO binding']:.1f} ({base / ms['FP32 + IO binding']:.2f}×) | {ms['FP16']:.1f} ({base / ms['FP16']:.2f}×) |")


if __name__ == "__main__":
    main()
