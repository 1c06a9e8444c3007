"""Assemble the Keras graph to export: backbone -> optional cut -> pooling -> optional head.

The result is a `features` model taking preprocessed floats (what Keras users feed) plus the
head; `serve_function` wraps both behind the uint8 RGB input with preprocessing folded in.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .errors import ExportError
from .preprocessing import fold

POOLINGS = ("avg", "max", "none")


@dataclass(frozen=True)
class CutPoint:
    name: str
    shape: tuple[int | None, ...]


def load_keras_file(path: Path, what: str, trust_h5: bool = False) -> keras.Model:
    """A user's model file: `.keras` in Keras safe mode; legacy `.h5` only when trusted."""
    if not path.is_file():
        raise ExportError(f"{what} file '{path}' does not exist")
    if path.suffix == ".h5" and not trust_h5:
        raise ExportError(
            f"{what} '{path}' is a legacy .h5 model, which Keras cannot load in safe mode; "
            "re-save it as .keras, or pass --trust-h5 if you trust its author"
        )
    if path.suffix not in (".keras", ".h5"):
        raise ExportError(f"{what} '{path}' must be a .keras model file (or a trusted legacy .h5)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        text = " ".join(str(exc).split())
        if "safe_mode" in text or "unsafe" in text.lower() or "Lambda" in text:
            raise ExportError(
                f"{what} '{path}' was refused by Keras safe mode: it holds a Lambda layer or other "
                "arbitrary Python code; rebuild it from standard layers"
            ) from None
        raise ExportError(f"cannot load {what} '{path}': {text[:200]}") from None


def truncate(model: keras.Model, cut: str | None, pooling: str) -> keras.Model:
    """Cut `model` at layer `cut` (None: keep its output) and pool a 4-D output to a vector."""
    if pooling not in POOLINGS:
        raise ExportError(f"unknown pooling '{pooling}': choose one of {', '.join(POOLINGS)}")
    output = model.output
    if cut is not None:
        names = [layer.name for layer in model.layers]
        if cut not in names:
            hint = difflib.get_close_matches(cut, names, n=3)
            suggestion = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise ExportError(
                f"{model.name} has no layer '{cut}'{suggestion} (`edgeft layers` lists cut points)"
            )
        output = model.get_layer(cut).output
        if isinstance(output, (list, tuple)):
            raise ExportError(f"layer '{cut}' has several outputs; cut at a single-output layer")
    if len(output.shape) == 4 and pooling != "none":
        pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        output = pool(name=f"edgeft_{pooling}_pool")(output)
    return keras.Model(model.input, output, name=f"{model.name}_features")


def cut_points(model: keras.Model) -> list[CutPoint]:
    """Layers every input-to-output path passes through: cutting there keeps the whole graph
    above the cut (a layer inside an Inception or residual block is not one)."""
    layers = model.layers
    index = {layer.name: i for i, layer in enumerate(layers)}
    jumped = np.zeros(len(layers) + 1, dtype=int)
    for i, layer in enumerate(layers):
        for producer in _producers(layer):
            j = index.get(producer)
            if j is not None and i - j > 1:
                jumped[j + 1] += 1
                jumped[i] -= 1
    open_edges = np.cumsum(jumped)
    return [
        CutPoint(layer.name, tuple(layer.output.shape))
        for i, layer in enumerate(layers)
        if i > 0 and open_edges[i] == 0 and not isinstance(layer.output, (list, tuple))
    ]


def _producers(layer: keras.layers.Layer) -> set[str]:
    names: set[str] = set()
    for node in getattr(layer, "_inbound_nodes", []):
        for tensor in node.input_tensors:
            history = getattr(tensor, "_keras_history", None)
            if history is not None:
                names.add(history.operation.name)
    return names


def split_classifier(model: keras.Model) -> tuple[keras.Model, keras.Model, keras.layers.Layer]:
    """A classifier as (features, head, the layer they meet at). Walking back from the output
    through single-input layers, the head starts after the global pooling (or the Flatten of a
    feature map) that turns the backbone's map into a vector: MobileNetV2's `predictions`,
    VGG16's fc1..predictions, MobileNetV3's 1x1 convolutions and softmax. A model with no such
    layer on that path splits before its final layer."""
    chain, layer = [], model.layers[-1]
    while not _vectorises(layer):
        producers = [model.get_layer(name) for name in _producers(layer)]
        if len(producers) != 1 or isinstance(producers[0], keras.layers.InputLayer):
            chain, layer = [model.layers[-1]], _single_producer(model, model.layers[-1])
            break
        chain.append(layer)
        layer = producers[0]
    if not chain:
        raise ExportError(f"'{model.name}' ends in its pooling layer '{layer.name}': there is no classifier to keep")
    inputs = keras.Input(tuple(layer.output.shape[1:]), name="features")
    x = inputs
    for part in reversed(chain):
        x = part(x)
    return keras.Model(model.input, layer.output, name=f"{model.name}_features"), keras.Model(inputs, x, name="classifier"), layer


def _vectorises(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
        return True
    return isinstance(layer, keras.layers.Flatten) and int(np.prod(layer.input.shape[1:-1])) > 1


def _single_producer(model: keras.Model, layer: keras.layers.Layer) -> keras.layers.Layer:
    producers = list(_producers(layer))
    if len(producers) != 1:
        raise ExportError(f"the final layer '{layer.name}' of '{model.name}' has {len(producers)} inputs: cannot tell its "
                          "classifier from its features; export it with --cut and train a head")
    return model.get_layer(producers[0])


def pooling_of(layer: keras.layers.Layer) -> str:
    """How the split layer turned the feature map into a vector, in the manifest's terms."""
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return "avg"
    return "max" if isinstance(layer, keras.layers.GlobalMaxPooling2D) else "none"


def check_head(head: keras.Model, features: keras.Model) -> None:
    want = tuple(features.output.shape[1:])
    got = tuple(head.input_shape[1:]) if not isinstance(head.input_shape, list) else None
    if got is None or len(got) != len(want) or any(g is not None and g != w for g, w in zip(got, want)):
        raise ExportError(
            f"head input shape {_fmt(got)} does not match the backbone's features {_fmt(want)}; "
            "train the head on these features (or change --cut / --pooling)"
        )


def head_outputs(head: keras.Model) -> list[str]:
    """Graph output names for the head: `prediction`, or `prediction_<name>` for several."""
    count = len(head.outputs)
    return ["prediction"] if count == 1 else [f"prediction_{name}" for name in head.output_names]


def cam_kernel(head: keras.Model) -> np.ndarray:
    """The dense kernel (channels x classes) of a global-average-pool + dense head: class
    activation maps are the feature map weighted by it. Any other head is refused."""
    layers = [la for la in head.layers if not isinstance(la, (keras.layers.InputLayer, keras.layers.Dropout))]
    if len(layers) != 2 or not isinstance(layers[0], keras.layers.GlobalAveragePooling2D) or not isinstance(layers[1], keras.layers.Dense):
        raise ExportError("--cam needs a head of global-average-pooling + dense (`edgeft train-head --arch gap`)")
    return np.asarray(layers[1].get_weights()[0], np.float32)


def infer_task(head: keras.Model, requested: str) -> str:
    if requested != "auto":
        return requested
    activation = getattr(head.layers[-1], "activation", None)
    name = getattr(activation, "__name__", "")
    return "classification" if name in ("softmax", "sigmoid") else "regression"


def serve_function(
    features: keras.Model,
    head: keras.Model | None,
    preprocess: str,
    height: int,
    width: int,
    batch: int | None,
    cam: np.ndarray | None = None,
) -> tf.types.experimental.GenericFunction:
    """uint8 RGB [batch, H, W, 3] -> {'features', 'prediction'..., 'cam'}: what tf2onnx converts."""
    names = head_outputs(head) if head is not None else []

    @tf.function(input_signature=[tf.TensorSpec([batch, height, width, 3], tf.uint8, name="image")])
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        feats = features(fold(image, preprocess), training=False)
        outputs = {"features": feats}
        if head is not None:
            preds = head(feats, training=False)
            outputs.update(zip(names, preds if isinstance(preds, (list, tuple)) else [preds]))
        if cam is not None:
            outputs["cam"] = tf.einsum("nhwc,ck->nhwk", feats, tf.constant(cam))
        return outputs

    return serve


def _fmt(shape: tuple | None) -> str:
    return "(?)" if shape is None else "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
