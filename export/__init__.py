"""edgeft.export: Keras backbone -> verified ONNX bundle. Needs the `export` extra (TensorFlow).

Importing this package is cheap; TensorFlow is imported by the functions that use it, so
`edgeft backbones` and `edgeft inspect` stay fast.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter is not for users

from .backbones import BACKBONES, PREPROCESS_MODES, BackboneSpec, resolve_backbone  # noqa: E402
from .errors import ExportError  # noqa: E402
from .exporter import ExportConfig, ExportResult, export_bundle  # noqa: E402
from .fp16 import Fp16Config  # noqa: E402
from .keras_model import (  # noqa: E402
    HEAD_META,
    BackboneRequest,
    KerasModel,
    build_keras_model,
    check_head_provenance,
    cut_points,
    is_model_file,
    parse_input_size,
    saved_identity,
)
from .quantize import Int8Config  # noqa: E402
from .quiet import native_stderr_muted  # noqa: E402

__all__ = [
    "BACKBONES", "HEAD_META", "PREPROCESS_MODES", "BackboneRequest", "BackboneSpec", "ExportConfig", "ExportError",
    "ExportResult", "Fp16Config", "Int8Config", "KerasModel", "build_keras_model", "check_head_provenance", "cut_points",
    "export_bundle", "is_model_file", "native_stderr_muted", "parse_input_size", "resolve_backbone", "saved_identity",
]
