"""The inference engine: one verified bundle, one onnxruntime session, numpy in and out.

`Engine.predict` is safe to call from several threads (onnxruntime sessions are), takes BGR
frames of any size and returns plain numpy arrays keyed by the manifest's output names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .binding import BoundRunner, wants_binding
from .bundle import Bundle, load_bundle
from .errors import BundleError, FrameError, ProviderError
from .manifest import Manifest, metadata_mismatches
from .preprocess import as_frame_list, prepare_batch
from .providers import provider_options, resolve_providers
from .session_cache import cache_key, cached_model, seal

log = logging.getLogger("edgeft")


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda | tensorrt
    threads: int | None = None  # intra-op threads; None lets onnxruntime use every core
    strict: bool = False  # raise instead of falling back when the asked device is not the one running
    cache_dir: Path | None = None  # keep optimised graphs (and TensorRT engines) here between starts
    io_binding: bool | None = None  # None: bind inputs/outputs to device buffers exactly on GPU providers

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ProviderError(f"--threads must be at least 1, got {self.threads}")


@dataclass(frozen=True)
class Prediction:
    """Named outputs (batch axis dropped when one frame was passed alone) and the time taken."""

    outputs: dict[str, np.ndarray] = field(repr=False)
    latency_ms: float
    batch: int

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


class Engine:
    def __init__(self, bundle: Bundle, config: EngineConfig = EngineConfig()):
        self.bundle = bundle
        self.manifest: Manifest = bundle.manifest
        self.session = _create_session(bundle.model, bundle.manifest.model_sha256, config)
        _check_graph_matches_manifest(self.session, bundle)
        _check_metadata_matches_manifest(self.session, bundle)
        self.provider: str = self.session.get_providers()[0]
        self._input_name = self.manifest.input.name
        self._output_names = [o.name for o in self.manifest.outputs]
        self.io_binding = wants_binding(self.provider, config.io_binding)
        self._infer = (BoundRunner(self.session, self._input_name, self._output_names, self.provider)
                       if self.io_binding else self._plain_run)
        log.info("edgeft: running %s on %s", bundle.path.name, self.provider)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", threads: int | None = None, strict: bool = False,
             cache_dir: str | Path | None = None, io_binding: bool | None = None) -> Engine:
        """Verify and open the bundle folder at `path` (manifest schema + model sha256)."""
        cache = Path(cache_dir) if cache_dir is not None else None
        config = EngineConfig(device=device, threads=threads, strict=strict, cache_dir=cache, io_binding=io_binding)
        return cls(load_bundle(path), config)

    def predict(self, frames: np.ndarray | Sequence[np.ndarray]) -> Prediction:
        """Run BGR uint8 frame(s) of any size; one H x W x C frame in gives unbatched outputs."""
        start = time.perf_counter()
        frame_list, single = as_frame_list(frames)
        outputs = self.run(prepare_batch(frame_list, self.manifest.input))
        if single:
            outputs = {name: value[0] for name, value in outputs.items()}
        return Prediction(outputs, (time.perf_counter() - start) * 1000.0, len(frame_list))

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run an already prepared uint8 N x H x W x 3 batch (in the manifest's colour order)."""
        spec = self.manifest.input
        if batch.dtype != np.uint8 or batch.shape[1:] != (spec.height, spec.width, 3):
            raise FrameError(
                f"batch must be uint8 N x {spec.height} x {spec.width} x 3, got {batch.dtype} {batch.shape}"
            )
        if spec.batch is None or len(batch) == spec.batch:
            return dict(zip(self._output_names, self._infer(batch)))
        return self._run_static(batch, spec.batch)

    def _plain_run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self._output_names, {self._input_name: batch})

    def _run_static(self, batch: np.ndarray, size: int) -> dict[str, np.ndarray]:
        """A static-batch graph takes exactly `size` frames: chunk, zero-pad the last, trim."""
        parts: list[list[np.ndarray]] = [[] for _ in self._output_names]
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            padded = np.zeros((size, *batch.shape[1:]), np.uint8)
            padded[: len(chunk)] = chunk
            values = self._infer(padded)
            for part, value in zip(parts, values):
                part.append(value[: len(chunk)])
        return {name: np.concatenate(part) for name, part in zip(self._output_names, parts)}


def _create_session(model: Path | bytes, model_sha256: str, config: EngineConfig) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-node placement warnings
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if config.threads:
        options.intra_op_num_threads = config.threads
    providers = resolve_providers(config.device)
    provider_list = [(name, provider_options(name, model_sha256, config.cache_dir)) for name in providers]
    if config.cache_dir is not None:
        model = _with_cache(model, model_sha256, providers[0], config.cache_dir, options)
    source = str(model) if isinstance(model, Path) else model
    try:
        session = ort.InferenceSession(source, options, providers=provider_list)
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...), all plain Exceptions
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"onnxruntime cannot load {source if isinstance(source, str) else 'the model'}: {first}") from None
    if config.cache_dir is not None:
        seal(config.cache_dir, cache_key(model_sha256, providers[0]))
    running = session.get_providers()[0]
    if config.strict and config.device != "auto" and running != providers[0]:
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


def _check_metadata_matches_manifest(session: ort.InferenceSession, bundle: Bundle) -> None:
    """Export mirrors the manifest's key fields into the model file; a model file that belongs
    to another manifest (same hash written in by hand, or files swapped) is refused here."""
    found = session.get_modelmeta().custom_metadata_map
    differing = metadata_mismatches(bundle.manifest, found)
    if differing:
        raise BundleError(f"bundle '{bundle.path}': model.onnx's metadata disagrees with the manifest "
                          f"({', '.join(differing)}); the two files do not belong together: re-export the bundle")


def _check_graph_matches_manifest(session: ort.InferenceSession, bundle: Bundle) -> None:
    """Frames are fed as the manifest says; a graph that wants something else is refused here,
    not with an onnxruntime error on the first frame."""
    spec, where = bundle.manifest.input, bundle.path
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != spec.name:
        raise BundleError(f"bundle '{where}': the model's inputs {[i.name for i in inputs]} are not the manifest's '{spec.name}'")
    model_input = inputs[0]
    wanted = [spec.batch, spec.height, spec.width, 3]
    fixed = [d if isinstance(d, int) else None for d in model_input.shape]
    if model_input.type != "tensor(uint8)" or len(fixed) != 4 or any(
        f is not None and f != w for f, w in zip(fixed, wanted)
    ):
        shown = "x".join("N" if d is None else str(d) for d in fixed)
        raise BundleError(
            f"bundle '{where}': the model takes {model_input.type} {shown}, but edgeft feeds uint8 frames "
            f"{spec.height}x{spec.width}x3 as the manifest says; re-export the bundle"
        )
    missing = {o.name for o in bundle.manifest.outputs} - {o.name for o in session.get_outputs()}
    if missing:
        raise BundleError(f"bundle '{where}': the model has no output(s) {sorted(missing)} named in the manifest")
