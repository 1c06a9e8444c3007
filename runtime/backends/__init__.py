"""Where a bundle runs: onnxruntime (CPU, CUDA, TensorRT) or OpenVINO (CPU), and which precision.

`--device auto` follows one rule, fastest first, and takes the first candidate that runs here
and, when it differs from the bundle as stored, passes verification on the bundle's probes:

1. TensorRT (FP16 kernels), then CUDA, where onnxruntime's GPU providers load;
2. OpenVINO, where installed and the CPU has the instructions that make it pay: BF16 for an FP32
   bundle on a CPU with native BF16 (AVX512_BF16 or AMX); an INT8 bundle on a CPU with an INT8
   dot product (VNNI or AMX). On other CPUs onnxruntime measured as fast, so it keeps the job;
3. onnxruntime on the CPU, the bundle as stored (always available, never needs re-proving).
"""

from __future__ import annotations

from pathlib import Path

from ..cpu import CpuInfo, cpu_info
from ..errors import ProviderError
from ..manifest import Manifest
from ..providers import provider_loads
from . import openvino
from .base import Backend, Port, Target

DEVICES = ("auto", "cpu", "cuda", "tensorrt", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16")


def check_target(device: str, precision: str | None) -> None:
    if device not in DEVICES:
        raise ProviderError(f"unknown device '{device}': choose one of {', '.join(DEVICES)}")
    if precision is not None and precision not in PRECISIONS:
        raise ProviderError(f"unknown precision '{precision}': choose one of {', '.join(PRECISIONS)}")
    if device == "auto" and precision is not None:
        raise ProviderError("--precision goes with a named --device; auto picks the precision itself")


def auto_targets(manifest: Manifest, cpu: CpuInfo | None = None) -> list[Target]:
    """The rule in the module docstring, as a list of candidates, fastest first."""
    cpu = cpu or cpu_info()
    found = [Target(d) for d in ("tensorrt", "cuda") if provider_loads(d)]
    if openvino.available() and manifest.proof is not None:
        if manifest.precision == "fp32" and cpu.native_bf16:
            found.append(Target("openvino", "bf16"))
        elif manifest.precision == "int8" and cpu.int8_dot:
            found.append(Target("openvino"))
    return found + [Target("cpu")]


def needs_proof(target: Target, manifest: Manifest, cpu: CpuInfo | None = None) -> bool:
    """Anything but onnxruntime on the CPU running the bundle as stored must be re-proved first; so
    must an INT8 bundle made for VNNI (8-bit weights) on a CPU without it, where they can saturate."""
    if not (target.device == "cpu" and target.precision in (None, manifest.precision)):
        return True
    made_for = manifest.quantization.target if manifest.quantization else None
    return bool(made_for and made_for.startswith("vnni") and not (cpu or cpu_info()).int8_dot and manifest.proof)


def installed_targets(manifest: Manifest) -> list[Target]:
    """Every backend and precision this machine can run the bundle with (for `bench --device all`)."""
    cpu = cpu_info()
    found = [Target("cpu")] + [Target(d) for d in ("cuda", "tensorrt") if provider_loads(d)]
    if openvino.available() and manifest.precision != "fp16":
        found.append(Target("openvino", "fp32"))
        if cpu.native_bf16 and manifest.precision == "fp32":
            found.append(Target("openvino", "bf16"))
    return found


def open_backend(model: Path | bytes, manifest: Manifest, target: Target, threads: int | None = None,
                 strict: bool = False, cache_dir: Path | None = None, io_binding: bool | None = None) -> Backend:
    if target.device == "openvino":
        return openvino.OpenVinoBackend(model, manifest, target, threads, cache_dir)
    from .onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model, manifest, target, threads, strict, cache_dir, io_binding)


__all__ = ["DEVICES", "PRECISIONS", "Backend", "Port", "Target", "auto_targets", "check_target", "installed_targets",
           "needs_proof", "open_backend"]
