"""The Keras side of a bundle, built once for `export` and `finetune` alike: the backbone with
its weights, cut and pooled, the head checked against it, and Keras' own preprocessing.

Nothing here imports TensorFlow at module level; `build_keras_model` does, when called.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeft.runtime.bundle import sha256_file
from edgeft.runtime.errors import first_line
from edgeft.runtime.manifest import BackboneInfo, WeightsInfo, backbone_identity

from .backbones import BackboneSpec, resolve_backbone
from .errors import ExportError

HEAD_META = "head.json"  # written beside head.keras by train-head and finetune: the features' backbone identity


def is_model_file(backbone: str) -> bool:
    """A path to the user's own model rather than a keras.applications name."""
    return backbone.endswith((".keras", ".h5")) or "/" in backbone


def parse_input_size(text: str) -> tuple[int, int]:
    """'299' -> (299, 299); '224x320' -> (224, 320) as height x width."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise ExportError(f"input size '{text}' is not N or HxW (e.g. 299 or 224x320)")
    height = int(match.group(1))
    return height, int(match.group(2) or height)


@dataclass(frozen=True)
class BackboneRequest:
    """Which backbone, with which weights, cut where, pooled how, at what size."""

    backbone: str  # keras.applications name, or a .keras / .h5 model file
    weights: str = "imagenet"  # imagenet | none | PATH (model files carry their own)
    cut: str | None = None
    pooling: str = "avg"
    input_size: tuple[int, int] | None = None  # (height, width)
    preprocess: str | None = None  # required for model files
    head: Path | None = None
    trust_h5: bool = False
    seed: int = 0
    classifier: bool = False  # keep the model's own classifier as the head: include_top, or a model file's final layers


@dataclass
class KerasModel:
    spec: BackboneSpec | None  # None for the user's own model file
    features: Any  # keras.Model: the backbone, cut and pooled, taking preprocessed floats
    head: Any | None  # keras.Model
    weights: WeightsInfo
    backbone: BackboneInfo
    size: tuple[int, int]  # (height, width)
    classifier_split: str | None = None  # the layer where a kept classifier starts reading the features

    @property
    def identity(self) -> dict:
        return backbone_identity(self.backbone, self.size, self.weights.tensors_sha256)

    def keras_preprocess(self) -> Callable[[np.ndarray], np.ndarray]:
        """Keras' own preprocess_input for this backbone: the reference the graph's folded
        preprocessing is proved against, and what fine-tuning feeds."""
        from .preprocessing import reference

        mode, spec = self.backbone.preprocess, self.spec
        return reference(mode, spec.official_preprocess() if spec and mode == spec.preprocess else None)


def build_keras_model(request: BackboneRequest) -> KerasModel:
    """Backbone with weights -> cut -> pooling, plus the head (provenance and shape checked)."""
    from . import build

    spec = None if is_model_file(request.backbone) else resolve_backbone(request.backbone)
    full, weights, preprocess, size = _load_backbone(request, spec)
    head, pooling, split = None, request.pooling, None
    if request.classifier:
        features, head, layer = build.split_classifier(full)
        pooling, split = build.pooling_of(layer), layer.name
    else:
        features = build.truncate(full, request.cut, request.pooling)
    backbone = BackboneInfo(spec.name if spec else Path(request.backbone).name, "keras.applications" if spec else "file",
                            request.cut, pooling, preprocess)
    model = KerasModel(spec, features, head, weights, backbone, size, split)
    if request.head is not None:
        check_head_provenance(request.head, model.identity)
        model.head = build.load_keras_file(request.head, "head")
        build.check_head(model.head, features)
    return model


def check_head_provenance(head: Path, identity: dict) -> None:
    """A head from `train-head` or `finetune` records the backbone its features came from
    (head.json beside it); fusing it onto any other backbone would silently be wrong."""
    meta_path = head.parent / HEAD_META
    trained_on = json.loads(meta_path.read_text()).get("backbone_identity") if meta_path.is_file() else None
    if not trained_on:
        return
    differs = [k for k in identity if identity[k] != trained_on.get(k)]
    if differs:
        detail = ", ".join(f"{k} {trained_on.get(k)!s:.16} vs {identity[k]!s:.16}" for k in differs)
        raise ExportError(f"head '{head}' was trained on features of another backbone ({detail}); "
                          "export the backbone it was trained on, or retrain the head")


def _load_backbone(request: BackboneRequest, spec: BackboneSpec | None):
    """The full backbone with its weights, its preprocess mode and the (H, W) it will take."""
    from .build import load_keras_file
    from .weights import build_with_weights, tensors_sha256

    if spec is None:
        path = Path(request.backbone)
        model = load_keras_file(path, "backbone model", request.trust_h5)
        fixed = tuple(model.input_shape[1:3])
        size = request.input_size or fixed
        if None in size:
            raise ExportError(f"'{path}' takes any input size: pass --input-size")
        if None not in fixed and tuple(size) != fixed:
            raise ExportError(f"'{path}' takes {fixed[0]}x{fixed[1]} input, not {size[0]}x{size[1]}")
        weights = WeightsInfo(str(path), sha256_file(path), tensors_sha256(model), "stored in the model file")
        return model, weights, request.preprocess, tuple(size)
    height, width = request.input_size or (spec.default_size, spec.default_size)

    def construct(weights: str | None):
        try:
            return spec.constructor()(include_top=request.classifier, weights=weights, input_shape=(height, width, 3))
        except ValueError as exc:
            raise ExportError(f"{spec.name} cannot be built at input size {height}x{width}: {first_line(exc)}") from None

    model, weights = build_with_weights(construct, spec.name, request.weights, request.seed)
    return model, weights, request.preprocess or spec.preprocess, (height, width)


def cut_points(backbone: str, input_size: str | None = None, trust_h5: bool = False) -> tuple[str, list]:
    """The model's name and the layers it can be cut at (every path passes through them)."""
    from . import build

    if is_model_file(backbone):
        model = build.load_keras_file(Path(backbone), "backbone model", trust_h5)
    else:
        spec = resolve_backbone(backbone)
        h, w = parse_input_size(input_size) if input_size else (spec.default_size,) * 2
        model = spec.constructor()(include_top=False, weights=None, input_shape=(h, w, 3))
    return model.name, build.cut_points(model)


def saved_identity(features: Any, path: Path, pooling: str, preprocess: str, size: tuple[int, int]) -> dict:
    """The identity `export` will find for a features model saved at `path` (say, fine-tuned)."""
    from .weights import tensors_sha256

    return backbone_identity(BackboneInfo(path.name, "file", None, pooling, preprocess), size, tensors_sha256(features))
