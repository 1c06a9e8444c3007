"""Choose onnxruntime execution providers that actually initialise on this machine.

onnxruntime-gpu lists CUDA and TensorRT as "available" even where no CUDA libraries exist,
and asking for them then prints a screen of loader errors before falling back. We probe the
provider libraries quietly first (ctypes) and only request what can load.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from .errors import ProviderError

Device = Literal["auto", "cpu", "cuda", "tensorrt"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")

_PROVIDER = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_LIBRARY = {"cuda": "libonnxruntime_providers_cuda.so", "tensorrt": "libonnxruntime_providers_tensorrt.so"}


@functools.cache
def provider_loads(device: str) -> bool:
    """True when onnxruntime offers the provider and its shared library (and CUDA deps) load."""
    if device == "cpu":
        return True
    if _PROVIDER[device] not in ort.get_available_providers():
        return False
    library = Path(ort.__file__).parent / "capi" / _LIBRARY[device]
    if not library.exists():  # Windows or a custom build: let onnxruntime decide
        return True
    try:
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


def provider_options(provider: str, model_sha256: str, cache_dir: Path | None, fp16: bool = True) -> dict[str, str]:
    """TensorRT: FP16 kernels (unless FP32 is asked for), and built engines cached under a key of
    the model hash and the onnxruntime version (engines take minutes to build and are only valid
    for that pair)."""
    if provider != _PROVIDER["tensorrt"]:
        return {}
    options = {"trt_fp16_enable": str(fp16)}
    if cache_dir is not None:
        engines = cache_dir / f"trt-{model_sha256[:24]}-ort{ort.__version__}"
        options |= {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(engines),
                    "trt_timing_cache_enable": "True", "trt_timing_cache_path": str(engines)}
    return options


def resolve_providers(device: str) -> list[str]:
    """Provider list for a `--device` choice; `auto` picks the best one that can load."""
    if device not in DEVICES:
        raise ProviderError(f"unknown device '{device}': choose one of {', '.join(DEVICES)}")
    if device == "auto":
        order = [d for d in ("tensorrt", "cuda") if provider_loads(d)]
        return [_PROVIDER[d] for d in order] + [_PROVIDER["cpu"]]
    if not provider_loads(device):
        raise ProviderError(
            f"device '{device}' is not usable here ({_PROVIDER[device]} cannot load: "
            "no GPU build of onnxruntime or no CUDA libraries); use --device cpu or auto"
        )
    chain = {"cpu": ["cpu"], "cuda": ["cuda", "cpu"], "tensorrt": ["tensorrt", "cuda", "cpu"]}[device]
    return [_PROVIDER[d] for d in chain if d == "cpu" or provider_loads(d)]
