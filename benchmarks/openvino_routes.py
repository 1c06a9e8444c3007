"""Two ways to OpenVINO, side by side on the same model.onnx: the `openvino` runtime (what
`--device openvino` uses) and onnxruntime-openvino's execution provider.

    .venv/bin/python benchmarks/openvino_routes.py BUNDLE --ort-openvino-python /path/to/other/venv/bin/python

onnxruntime-openvino replaces the `onnxruntime` module (it cannot share an environment with
onnxruntime-gpu), so its arm runs in the interpreter of a separate virtualenv that has it
(`python -m venv V && V/bin/pip install onnxruntime-openvino numpy`). Each arm: FP32 and BF16,
batch 8, ms per frame (median of 15 after warm-up), and cosine against onnxruntime's CPU FP32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ARM = r"""
import json, sys, time
import numpy as np
route, model, name, precision = sys.argv[1:5]
x = np.random.default_rng(0).integers(0, 256, (8, *json.loads(sys.argv[5]), 3), dtype=np.uint8)
if route == "openvino":
    import openvino as ov
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                                                      "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    run, running = (lambda: request.infer({name: x})["features"]), "openvino " + compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
else:
    import onnxruntime as ort
    options = {"device_type": "CPU"} if route == "ort-cpu" else {"device_type": "CPU", "load_config": json.dumps(
        {"CPU": {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}})}
    provider = "CPUExecutionProvider" if route == "ort-cpu" else "OpenVINOExecutionProvider"
    session = ort.InferenceSession(model, providers=[(provider, {} if route == "ort-cpu" else options)])
    run, running = (lambda: session.run(["features"], {name: x})[0]), session.get_providers()[0] + " " + ort.__version__
for _ in range(3):
    run()
times = []
for _ in range(15):
    start = time.perf_counter(); out = run(); times.append((time.perf_counter() - start) * 1000 / len(x))
print(json.dumps({"running": running, "ms": float(np.median(times)), "features": np.asarray(out).reshape(len(x), -1).tolist()}))
"""


def arm(python: str, route: str, model: Path, name: str, precision: str, size: list[int]) -> dict:
    proc = subprocess.run([python, "-c", ARM, route, str(model), name, precision, json.dumps(size)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"running": f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import cpu_line

    from edgeft.runtime import read_manifest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--ort-openvino-python", required=True)
    args = parser.parse_args()
    manifest = read_manifest(args.bundle)
    model, name, size = args.bundle / "model.onnx", manifest.input.name, [manifest.input.height, manifest.input.width]
    base = arm(sys.executable, "ort-cpu", model, name, "fp32", size)
    reference = np.array(base["features"])
    print(f"CPU: {cpu_line()}\n\n| route | asked | running | b8 ms/frame | vs onnxruntime CPU | cosine |\n|---|---|---|---|---|---|")
    print(f"| onnxruntime CPU | fp32 | {base['running']} | {base['ms']:.2f} | 1.00x | 1.00000 |")
    for route, python in (("openvino", sys.executable), ("ort-openvino", args.ort_openvino_python)):
        for precision in ("fp32", "bf16"):
            result = arm(python, route, model, name, precision, size)
            if "ms" not in result:
                print(f"| {route} | {precision} | {result['running']} | | | |")
                continue
            got = np.array(result["features"])
            cosine = float(((got * reference).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))).mean())
            print(f"| {route} | {precision} | {result['running']} | {result['ms']:.2f} | {base['ms'] / result['ms']:.2f}x | {cosine:.5f} |")


if __name__ == "__main__":
    main()
