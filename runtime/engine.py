"""The inference engine: one verified bundle on one backend (onnxruntime or OpenVINO), numpy in and out.

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

from .backends import Backend, Target, auto_targets, check_target, needs_proof, open_backend
from .bundle import Bundle, check_model_facts, load_bundle
from .errors import BundleError, FrameError, ProviderError
from .manifest import Manifest
from .onnx_file import scan
from .preprocess import as_frame_list, prepare_batch
from .proof import Verification, VerificationError, verify

log = logging.getLogger("edgeft")


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda | tensorrt | openvino (see backends: auto's rule)
    precision: str | None = None  # fp32 | bf16 | fp16 with a named device; None: the bundle's own
    threads: int | None = None  # intra-op threads; None lets the backend use every core
    strict: bool = False  # raise instead of falling back when the asked device is not the one running
    cache_dir: Path | None = None  # keep optimised graphs (and TensorRT engines, OpenVINO blobs) here between starts
    io_binding: bool | None = None  # None: bind inputs/outputs to device buffers exactly on GPU providers
    verify: bool = False  # re-prove the bundle's probes on this backend before use; a failure is refused
    thresholds: dict[str, float] | None = None  # override the bundle's verification thresholds

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ProviderError(f"--threads must be at least 1, got {self.threads}")
        check_target(self.device, self.precision)


@dataclass(frozen=True)
class Prediction:
    """Named outputs (batch axis dropped when one frame was passed alone) and the time taken."""

    outputs: dict[str, np.ndarray] = field(repr=False)
    latency_ms: float
    batch: int

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


class Engine:
    """One verified bundle on one backend. `device="auto"` tries the candidates of the rule in
    `backends` in order, re-proving each that differs from the bundle as stored; a device and
    precision asked for by name that differ from it are proved the same way (a passing record of
    the same check on this machine stands in: `verified`). With `verify=True` the chosen backend is
    proved afresh, and refused if it falls short."""

    def __init__(self, bundle: Bundle, config: EngineConfig = EngineConfig()):
        self.bundle = bundle
        self.manifest: Manifest = bundle.manifest
        if isinstance(bundle.model, bytes):  # a file bundle was checked by load_bundle
            check_model_facts(bundle.path, bundle.manifest, scan(bundle.model))
        self._input_name = self.manifest.input.name
        self._output_names = [o.name for o in self.manifest.outputs]
        self.verification: Verification | None = None
        if config.device == "auto":
            self._choose(config)
        else:
            target = Target(config.device, config.precision)
            self._use(open_backend(bundle.model, self.manifest, target, config.threads, config.strict, config.cache_dir,
                                   config.io_binding), target)
            if needs_proof(target, self.manifest) and self.manifest.proof is not None:  # asked for by name: proved as auto's are
                self.verification = verify(self, config.thresholds, reuse=not config.verify)
        if config.verify and self.verification is None:
            self.verification = verify(self, config.thresholds)
        log.info("edgeft: running %s on %s", bundle.path.name, self.provider)

    def _use(self, backend: Backend, target: Target) -> None:
        _check_graph_matches_manifest(backend, self.bundle)
        self.backend, self.precision = backend, backend.precision
        self.target = target  # what was asked of the backend (auto's choice among them): another process can ask the same
        # what runs, as logs and summaries name it: "CPUExecutionProvider fp32", "OpenVINO CPU bf16"
        self.provider = backend.label if backend.precision in backend.label else f"{backend.label} {backend.precision}"
        self.io_binding = backend.io_binding
        self._infer = backend.run

    def _choose(self, config: EngineConfig) -> None:
        """The first candidate of the auto rule that opens here and, where it must, passes verification."""
        for target in auto_targets(self.manifest):
            try:
                self._use(open_backend(self.bundle.model, self.manifest, target, config.threads, False, config.cache_dir,
                                       config.io_binding), target)
                if needs_proof(target, self.manifest):  # a record of the same check here stands in, unless verify asks afresh
                    self.verification = verify(self, config.thresholds, reuse=not config.verify)
                return
            except (ProviderError, VerificationError, BundleError) as exc:
                if target == Target("cpu"):
                    raise
                log.warning("edgeft: %s not used: %s", target, exc)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", threads: int | None = None, strict: bool = False,
             cache_dir: str | Path | None = None, io_binding: bool | None = None, precision: str | None = None,
             verify: bool = False) -> Engine:
        """Verify and open the bundle folder at `path` (manifest schema, every file's sha256, one file, metadata)."""
        cache = Path(cache_dir) if cache_dir is not None else None
        config = EngineConfig(device=device, precision=precision, threads=threads, strict=strict, cache_dir=cache,
                              io_binding=io_binding, verify=verify)
        return cls(load_bundle(path), config)

    @property
    def computed_by(self) -> dict[str, str]:
        """What features computed here depend on, as a features folder records it: outputs of two
        engines are interchangeable only when these agree (the CPU is recorded beside, not compared)."""
        return {"device": self.target.device, "precision": self.precision, "backend": self.provider}

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


def _check_graph_matches_manifest(backend: Backend, bundle: Bundle) -> None:
    """Frames are fed as the manifest says; a graph that wants something else is refused here,
    not with a backend error on the first frame."""
    spec, where = bundle.manifest.input, bundle.path
    inputs = backend.inputs
    if len(inputs) != 1 or inputs[0].name != spec.name:
        raise BundleError(f"bundle '{where}': the model's inputs {[i.name for i in inputs]} are not the manifest's '{spec.name}'")
    model_input = inputs[0]
    wanted = [spec.batch, spec.height, spec.width, 3]
    fixed = list(model_input.shape)
    if model_input.dtype != "tensor(uint8)" or len(fixed) != 4 or any(
        f is not None and f != w for f, w in zip(fixed, wanted)
    ):
        shown = "x".join("N" if d is None else str(d) for d in fixed)
        raise BundleError(
            f"bundle '{where}': the model takes {model_input.dtype} {shown}, but edgeft feeds uint8 frames "
            f"{spec.height}x{spec.width}x3 as the manifest says; re-export the bundle"
        )
    missing = {o.name for o in bundle.manifest.outputs} - backend.outputs
    if missing:
        raise BundleError(f"bundle '{where}': the model has no output(s) {sorted(missing)} named in the manifest")
