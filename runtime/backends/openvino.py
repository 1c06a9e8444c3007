"""OpenVINO (the `openvino` extra) on the CPU: the bundle's model.onnx read directly, FP32 or BF16
(where the CPU has it natively: AVX512_BF16 or AMX), INT8 QDQ bundles as they are.

The precision is always asked for explicitly and read back after compiling: OpenVINO's own
default on BF16-capable CPUs is BF16, and a BF16 request on a CPU without it silently stays FP32.
Compiled models are cached in a folder keyed by the model's sha256 and OpenVINO's version (its
cache is keyed by path alone, so a replaced file would meet a stale blob). Each thread gets its
own infer request: a compiled model shared across threads returns other threads' results.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..cpu import cpu_info
from ..errors import BundleError, ProviderError, first_line
from ..manifest import Manifest
from .base import Port, Target

_DTYPE = {"u8": "tensor(uint8)", "f32": "tensor(float)", "f16": "tensor(float16)", "i64": "tensor(int64)"}


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _openvino():
    try:
        import openvino as ov
    except ImportError:
        raise ProviderError("--device openvino needs the openvino extra: pip install 'edgeft[openvino]'") from None
    return ov


class OpenVinoBackend:
    def __init__(self, model: Path | bytes, manifest: Manifest, target: Target, threads: int | None, cache_dir: Path | None):
        ov = _openvino()
        precision = self._precision(manifest, target.precision)
        core = ov.Core()
        self.cpu_threads = threads or cpu_info().cores
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32", "PERFORMANCE_HINT": "LATENCY",
                  "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": self.cpu_threads, "ENABLE_CPU_PINNING": False}
        cache = _cache_folder(cache_dir, manifest.model_sha256, ov.__version__) if isinstance(model, Path) else None
        if cache is not None:
            core.set_property({"CACHE_DIR": str(cache)})
        try:
            self._compiled = core.compile_model(str(model) if isinstance(model, Path) else core.read_model(model), "CPU", config)
        except RuntimeError as exc:
            raise BundleError(f"OpenVINO cannot load the model: {first_line(exc)}") from None
        chosen = self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if precision == "bf16" and chosen != "bf16":
            raise ProviderError(f"OpenVINO compiled {chosen}, not the bf16 asked for, on this CPU ({cpu_info().model})")
        self.precision = "int8" if manifest.precision == "int8" else precision
        self.label = f"OpenVINO CPU {self.precision}"
        self.io_binding = False
        # a port carries every name its tensor had; after fusion (an INT8 graph's first Cast + QuantizeLinear)
        # get_any_name() may return another of them, so the manifest's name is looked for among them all
        self.inputs = [Port(manifest.input.name if manifest.input.name in p.get_names() else p.get_any_name(),
                            _DTYPE.get(p.get_element_type().get_type_name(), str(p.get_element_type())),
                            tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape()))
                       for p in self._compiled.inputs]
        self.outputs = {name for port in self._compiled.outputs for name in port.get_names()}
        self._ports = [next(p for p in self._compiled.outputs if o.name in p.get_names()) for o in manifest.outputs
                       if o.name in self.outputs]
        self._input = manifest.input.name
        self._local = threading.local()

    @staticmethod
    def _precision(manifest: Manifest, asked: str | None) -> str:
        if manifest.precision == "fp16":
            raise ProviderError("an FP16 bundle is for GPUs; run the FP32 bundle on OpenVINO (with --precision bf16)")
        if asked in (None, "fp32"):
            return "fp32"
        if asked == "fp16":
            raise ProviderError("OpenVINO on the CPU has no fp16; --precision fp16 is for GPUs (TensorRT)")
        if not cpu_info().native_bf16:
            raise ProviderError(f"this CPU ({cpu_info().model}) has no native BF16 (avx512_bf16 or amx_bf16); "
                                "OpenVINO would emulate it slowly: use --precision fp32")
        return "bf16"

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        results = request.infer({self._input: batch})
        return [np.asarray(results[port]) for port in self._ports]


def _cache_folder(root: Path | None, model_sha256: str, version: str) -> Path | None:
    """Compiled blobs for this model and this OpenVINO only (see the module docstring); None where
    no cache can be written (that costs start-up time, not the run)."""
    from ..verified import cache_root

    folder = (root or cache_root() / "openvino") / f"ov-{model_sha256[:24]}-{version.split('-')[0]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
