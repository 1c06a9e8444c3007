"""onnxruntime: CPU, CUDA and TensorRT providers, IO binding on GPUs, an optional cached graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..binding import BoundRunner, wants_binding
from ..cpu import cpu_info
from ..errors import BundleError, ProviderError, first_line
from ..manifest import Manifest
from ..providers import provider_options, resolve_providers
from ..session_cache import cache_key, cached_model, seal
from .base import Port, Target


class OnnxRuntimeBackend:
    def __init__(self, model: Path | bytes, manifest: Manifest, target: Target, threads: int | None, strict: bool,
                 cache_dir: Path | None, io_binding: bool | None):
        if target.precision not in (None, manifest.precision) and not (target.device == "tensorrt" and target.precision in ("fp32", "fp16")):
            raise ProviderError(f"onnxruntime on {target.device} runs this {manifest.precision} bundle as stored, not in "
                                f"{target.precision}; --device openvino runs bf16 on CPUs that have it")
        self.session = _create_session(model, manifest.model_sha256, target, threads, strict, cache_dir)
        self.label = self.session.get_providers()[0]
        self.cpu_threads = (threads or cpu_info().cores) if self.label == "CPUExecutionProvider" else 0  # default: one per core
        trt_fp16 = self.label == "TensorrtExecutionProvider" and target.precision != "fp32"
        self.precision = "fp16" if trt_fp16 and manifest.precision == "fp32" else manifest.precision
        self.inputs = [Port(i.name, i.type, tuple(d if isinstance(d, int) else None for d in i.shape)) for i in self.session.get_inputs()]
        self.outputs = {o.name for o in self.session.get_outputs()}
        self._input, self._output_names = manifest.input.name, [o.name for o in manifest.outputs]
        self.io_binding = wants_binding(self.label, io_binding)
        self.run = (BoundRunner(self.session, self._input, self._output_names, self.label) if self.io_binding else self._plain_run)

    def _plain_run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self._output_names, {self._input: batch})


def _create_session(model: Path | bytes, model_sha256: str, target: Target, threads: int | None, strict: bool,
                    cache_dir: Path | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-node placement warnings
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    providers = resolve_providers(target.device)
    provider_list = [(name, provider_options(name, model_sha256, cache_dir, fp16=target.precision != "fp32"))
                     for name in providers]
    if cache_dir is not None:
        model = _with_cache(model, model_sha256, providers[0], cache_dir, options)
    source = str(model) if isinstance(model, Path) else model
    try:
        session = ort.InferenceSession(source, options, providers=provider_list)
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...), all plain Exceptions
        raise BundleError(f"onnxruntime cannot load {source if isinstance(source, str) else 'the model'}: {first_line(exc)}") from None
    if cache_dir is not None:
        seal(cache_dir, cache_key(model_sha256, providers[0]))
    running = session.get_providers()[0]
    if strict and running != providers[0]:
        raise ProviderError(f"asked for {providers[0]} but onnxruntime is running {running}")
    return session


def _with_cache(model: Path | bytes, model_sha256: str, provider: str, cache_dir: Path,
                options: ort.SessionOptions) -> Path | bytes:
    """The cached optimised graph (optimisation then off), or ask onnxruntime to write one."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(model_sha256, provider)
    cached = cached_model(cache_dir, key)
    if cached is not None:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return cached
    options.optimized_model_filepath = str(cache_dir / f"{key}.onnx")
    return model
