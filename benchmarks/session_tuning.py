"""Which onnxruntime session settings pay on this machine: threads, graph optimisation, spinning.

    .venv/bin/python benchmarks/session_tuning.py [--models mobilenetv2:224 inceptionv3:299] [--runs 20]

Each setting's batch-1 median latency and session-creation time, in one run, as ratios to
edgeft's defaults (all cores, ORT_ENABLE_ALL, spinning on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_bundle, pct, timed  # noqa: E402

from edgeft.runtime import load_bundle  # noqa: E402

LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
SETTINGS = [  # (label, threads, level, spinning)
    ("default: all cores, all, spin", None, "all", True),
    ("1 thread", 1, "all", True),
    ("no spinning", None, "all", False),
    ("optimisation: extended", None, "extended", True),
    ("optimisation: basic", None, "basic", True),
]


def session(model: Path, threads: int | None, level: str, spin: bool) -> tuple[ort.InferenceSession, float]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = LEVELS[level]
    if threads:
        options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    start = time.perf_counter()
    created = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return created, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenetv2:224", "inceptionv3:299"])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"{'model':<17}{'setting':<32}{'b1 p50 ms':>10}{'vs default':>11}{'session s':>10}")
    for item in args.models:
        name, size = item.split(":")
        bundle = load_bundle(ensure_bundle(name, int(size)))
        x = np.random.default_rng(0).integers(0, 256, (1, int(size), int(size), 3), dtype=np.uint8)
        base = None
        for label, threads, level, spin in SETTINGS:
            sess, created = session(bundle.model, threads, level, spin)
            for _ in range(3):
                sess.run(None, {"image": x})
            p50 = pct(timed(lambda: sess.run(None, {"image": x}), args.runs), 50)
            base = base or p50
            print(f"{item:<17}{label:<32}{p50:>10.1f}{p50 / base:>10.2f}x{created:>10.2f}")


if __name__ == "__main__":
    main()
