"""The only caller of tf2onnx: a tf.function with a uint8 input signature -> ONNX bytes."""

from __future__ import annotations

import logging

import onnx
import tensorflow as tf

from .quiet import native_stderr_muted

DEFAULT_OPSET = 17  # supported by tf2onnx 1.16+, onnxruntime 1.14+ and TensorRT 8.6+


def to_onnx(serve: tf.types.experimental.GenericFunction, opset: int, metadata: dict[str, str]) -> onnx.ModelProto:
    """Convert and stamp `metadata` into the model so the file alone still describes itself."""
    import tf2onnx

    tf2onnx.logging.set_level(logging.ERROR)
    with native_stderr_muted():  # Grappler logs every session it starts
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=opset)
    proto.producer_name = "edgeft+tf2onnx"
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)  # no external data: the whole model is one file
    return proto
