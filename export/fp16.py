"""FP16 for GPUs: half the model bytes and tensor-core arithmetic, checked before it is written.

The proven FP32 graph is converted by onnxruntime's own converter (weights and activations in
half precision; the uint8 input and FP32 outputs stay as they were, so feeding and reading a
bundle does not change). Two checks run on the export machine, against the FP32 graph:
- the FP16 graph itself, on the GPU provider when there is one. On a CPU onnxruntime computes
  FP16 layers in FP32 and drops the casts between them, so there it measures weight rounding only;
- an emulation on the CPU of what a GPU stores: the FP32 graph with its weights rounded to FP16
  and every tensor a layer produces rounded through FP16 (arithmetic stays FP32, as GPUs
  accumulate half-precision products). An activation past FP16's 65504 becomes inf here, as it
  would on the GPU, so a model that overflows is refused on a machine without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from edgeft.runtime.manifest import HalfPrecision, Manifest
from edgeft.runtime.providers import provider_loads
from edgeft.runtime.proof import compare, shortfalls

from .agreement import run_model
from .errors import ExportError

FP16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class Fp16Config:
    min_cosine: float = 0.999  # mean feature cosine vs FP32, in both checks
    min_top1: float = 0.99  # top-1 agreement vs FP32 (classification heads)


def to_fp16(model_bytes: bytes) -> bytes:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load_from_string(model_bytes), keep_io_types=True)
    return model.SerializeToString()


def emulate_fp16_storage(model_bytes: bytes) -> bytes:
    """The FP32 graph with FP16 weights and FP16-rounded activations (FP32 arithmetic)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
    graph = model.graph
    floats = {v.name for v in chain(graph.value_info, graph.output) if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            weights = np.clip(numpy_helper.to_array(init), -FP16_MAX, FP16_MAX)  # as the converter clips
            init.CopyFrom(numpy_helper.from_array(weights.astype(np.float16).astype(np.float32), init.name))
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for i, name in enumerate(node.output):
            if name in floats:
                node.output[i] = f"{name}/fp32"
                nodes += [helper.make_node("Cast", [f"{name}/fp32"], [f"{name}/fp16"], to=TensorProto.FLOAT16),
                          helper.make_node("Cast", [f"{name}/fp16"], [name], to=TensorProto.FLOAT)]
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def convert(model_bytes: bytes, manifest: Manifest, frames: np.ndarray, config: Fp16Config) -> tuple[bytes, HalfPrecision]:
    """FP16 bytes and their record, or ExportError when either check falls below the thresholds."""
    half = to_fp16(model_bytes)
    device = "cuda" if provider_loads("cuda") else "cpu"  # check it where it will run, if here
    reference = run_model(model_bytes, manifest, frames)
    agreement = compare(reference, run_model(half, manifest, frames, device), manifest.task)
    emulated = compare(reference, run_model(emulate_fp16_storage(model_bytes), manifest, frames), manifest.task)
    record = HalfPrecision("onnxruntime float16 converter, uint8 input and FP32 outputs kept", device, len(frames),
                           agreement, emulated)
    low = [f"{label}: {problem}" for label, result in (("FP16 graph", agreement), ("FP16 storage emulation", emulated))
           for problem in shortfalls(result, config.min_cosine, config.min_top1)]
    if low:
        raise ExportError(f"FP16 model disagrees with FP32 ({'; '.join(low)}); no bundle written "
                          "(export without --fp16, or lower --fp16-min-cosine)")
    return half, record

