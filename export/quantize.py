"""INT8: static QDQ quantization (onnxruntime.quantization), calibrated on the rig's own frames.

Calibration frames come from a real source (driving log, video, image folder) through the
runtime's own sources and preprocessing, so the activation ranges are the ones the model will
see. Agreement with the FP32 model is measured on held-out frames of the same source and
recorded; below the user's threshold nothing is written. Dynamic quantization is not offered:
it is several times slower than FP32 for CNNs on CPUs. The dense head (Gemm/MatMul) stays FP32:
it costs nothing next to the backbone, and quantizing a 1-unit regression output collapsed it to
its bias in our measurements. Average pools become depthwise convolutions first (pooling.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeft.runtime.manifest import InputSpec, Manifest, Quantization
from edgeft.runtime.preprocess import prepare_batch
from edgeft.runtime.sources import open_source
from edgeft.runtime.proof import compare, shortfalls

from .agreement import run_model
from .bias_correction import correct_biases
from .errors import ExportError
from .pooling import pools_as_convolutions


@dataclass(frozen=True)
class Int8Config:
    calib: str  # a source spec: driving log, video, image folder or glob
    calib_frames: int = 64
    holdout_frames: int = 32
    min_cosine: float = 0.99  # mean feature cosine vs FP32 on the held-out frames
    min_top1: float = 0.95  # top-1 agreement with FP32 (classification heads)
    target: str = "auto"  # the CPU the bundle is for: avx2 (no INT8 dot product: 7-bit weights) | vnni (VNNI or AMX: 8-bit)

    @property
    def reduce_range(self) -> bool:
        """7-bit weights where the target has no VNNI: its u8 x s8 multiply-add saturates at full 8-bit range."""
        return resolve_target(self.target) == "avx2"


TARGETS = ("auto", "avx2", "vnni")


def resolve_target(target: str) -> str:
    """`auto`: the export machine's own CPU."""
    if target not in TARGETS:
        raise ExportError(f"unknown --int8-target '{target}': choose one of {', '.join(TARGETS)}")
    if target == "auto":
        from edgeft.runtime.cpu import cpu_info

        return "vnni" if cpu_info().int8_dot else "avx2"
    return target


def calibration_frames(spec: InputSpec, config: Int8Config) -> np.ndarray:
    """calib + holdout frames from the source, model-ready; a clear error if it has too few."""
    wanted = config.calib_frames + config.holdout_frames
    frames: list[np.ndarray] = []
    with open_source(config.calib) as source:  # a driving log gives all three cameras
        while len(frames) < wanted and (tick := source.read()) is not None:
            frames.extend(frame.image for frame in tick)
    if len(frames) < wanted:
        raise ExportError(
            f"calibration source '{config.calib}' gave {len(frames)} frames; INT8 needs {wanted} "
            f"({config.calib_frames} to calibrate + {config.holdout_frames} held out to check agreement)"
        )
    rng = np.random.default_rng(0)  # interleave, so calibration and hold-out span the whole source
    order = rng.permutation(len(frames))
    return prepare_batch([frames[i] for i in order], spec)


@dataclass(frozen=True)
class QdqSettings:
    """How the graph is quantized: export's choices (measured best here; benchmarks/int8_variants.py
    varies one at a time)."""

    quant_format: str = "QDQ"  # or QOperator
    per_channel: bool = True
    reduce_range: bool = True
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    rewrite_pools: bool = True  # QLinearAveragePool is a slow scalar kernel: pools go in as depthwise convolutions
    bias_correction: bool = True  # remove each conv's mean output shift from weight rounding (bias_correction.py)


def quantize_graph(model_bytes: bytes, calib: np.ndarray, spec: InputSpec, settings: QdqSettings = QdqSettings(),
                   keep_fp32: Callable[[Any], bool] = lambda node: False) -> bytes:
    """Static quantization calibrated on `calib` (model-ready frames). Dense heads (Gemm/MatMul)
    and nodes for which `keep_fp32` is true stay FP32."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    step = spec.batch or 1  # a static-batch graph takes exactly its batch

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calib[i : i + step] for i in range(0, len(calib) - step + 1, step))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {spec.name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared, int8 = (Path(tmp) / n for n in ("fp32.onnx", "prep.onnx", "int8.onnx"))
        fp32.write_bytes(model_bytes)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        if settings.rewrite_pools:
            model = pools_as_convolutions(model)
        onnx.save(model, str(prepared))
        excluded = [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul") or keep_fp32(n)]
        quantize_static(str(prepared), str(int8), Reader(), quant_format=QuantFormat[settings.quant_format],
                        per_channel=settings.per_channel, reduce_range=settings.reduce_range,
                        activation_type=QuantType[settings.activation_type], weight_type=QuantType[settings.weight_type],
                        nodes_to_exclude=excluded)
        if not settings.bias_correction:
            return int8.read_bytes()
        quantized = onnx.load(str(int8))
        correct_biases(model, quantized, calib, spec.name, step)  # int32 biases rewritten in place
        return quantized.SerializeToString()


def quantize(model_bytes: bytes, manifest: Manifest, config: Int8Config
             ) -> tuple[bytes, Quantization, np.ndarray, dict[str, np.ndarray]]:
    """The INT8 bytes, their record, the held-out frames they were checked on, and the FP32
    outputs on those frames (the bundle's proof carries some of them)."""
    frames = calibration_frames(manifest.input, config)
    calib, holdout = frames[: config.calib_frames], frames[config.calib_frames :]
    int8_bytes = quantize_graph(model_bytes, calib, manifest.input, QdqSettings(reduce_range=config.reduce_range))
    reference = run_model(model_bytes, manifest, holdout)
    agreement = compare(reference, run_model(int8_bytes, manifest, holdout), manifest.task)
    target = resolve_target(config.target)
    report = Quantization("int8-qdq-per-channel-bias-corrected", config.calib, len(calib), len(holdout), agreement,
                          target=f"{target} ({7 if config.reduce_range else 8}-bit weights)")
    low = shortfalls(agreement, config.min_cosine, config.min_top1)
    if low:
        raise ExportError(f"INT8 model disagrees with FP32 on held-out frames ({'; '.join(low)}); no bundle written "
                          "(more or more varied --calib frames, or lower --int8-min-cosine)")
    return int8_bytes, report, holdout, reference
