"""extract in one process vs on Ray with one node and with two nodes, at equal total cores (2).

    .venv/bin/python benchmarks/ray_extract.py [--frames inceptionv3:1200 mobilenetv2:4800]

Real footage (vtest / carphone) written as 640x480 JPEGs into class folders; random-weight bundles
exported once into benchmarks/.work. Each mode runs `edgeft extract` as a real process: wall time
includes Ray's connect and actor start (the cluster itself is started before the clock). Ray:
1 node x 2 CPUs (2 actors x 1 thread) and 2 nodes x 1 CPU (2 actors x 1 thread), on loopback,
512 MB of object store per node. Give a model twice (inceptionv3:1200 inceptionv3:4800) to see the
fixed cost of a job (connect, Ray Data's helper actors, actor start) amortise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import WORK, clip_frames, cpu_line, ensure_bundle  # noqa: E402
from raycluster import LoopbackCluster  # noqa: E402


def dataset(frames: int) -> Path:
    root = WORK / f"frames-{frames}"
    if root.exists():
        return root
    for i, frame in zip(range(frames), clip_frames()):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), cv2.resize(frame, (640, 480)))
    return root


def extract(bundle: Path, data: Path, *extra: str) -> float:
    out = WORK / "ray-bench-out"
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgeft", "extract", str(data), "--model", str(bundle), "--out", str(out),
                           "--device", "cpu", *extra], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-800:])
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", nargs="+", default=["inceptionv3:1200", "mobilenetv2:4800"])
    args = parser.parse_args()
    print(f"CPU: {cpu_line()}\n")
    print("| model | frames | one process s | Ray 1 node x 2 CPU s | overhead | Ray 2 nodes x 1 CPU s | overhead |")
    print("|---|---|---|---|---|---|---|")
    for item in args.frames:
        name, count = item.split(":")
        size = 299 if name == "inceptionv3" else 224
        bundle, data = ensure_bundle({"inceptionv3": "InceptionV3", "mobilenetv2": "MobileNetV2"}[name], size), dataset(int(count))
        single = extract(bundle, data)
        row = [f"{name} {size}", count, f"{single:.1f}"]
        for nodes in (1, 2):
            with LoopbackCluster(object_store_mb=512) as cluster:  # room for an InceptionV3 bundle, as any real node has
                cluster.start(workers=nodes - 1, cpus=2 // nodes)
                wall = extract(bundle, data, "--ray", cluster.address)
            row += [f"{wall:.1f}", f"{wall / single - 1:+.0%}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
