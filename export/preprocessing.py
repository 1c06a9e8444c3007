"""Fold a backbone's input scaling into the graph, and the reference it is checked against.

`fold` builds the TensorFlow ops that go into the ONNX graph; `reference` calls Keras' own
`preprocess_input` for the same mode. The parity proof feeds uint8 frames to the ONNX graph
and reference-preprocessed frames to Keras, so a wrong fold cannot pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def fold(image: tf.Tensor, mode: str) -> tf.Tensor:
    """uint8 RGB NHWC -> the float tensor the backbone expects, as graph ops."""
    x = tf.cast(image, tf.float32)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "caffe":
        return tf.reverse(x, axis=[-1]) - tf.constant(_CAFFE_MEAN_BGR, tf.float32)
    if mode == "torch":
        return (x / 255.0 - tf.constant(_TORCH_MEAN)) / tf.constant(_TORCH_STD)
    if mode == "unit":
        return x / 255.0
    if mode == "none":
        return x
    raise ValueError(f"unknown preprocess mode {mode!r}")


def reference(mode: str, official: Callable[[np.ndarray], np.ndarray] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy preprocessing Keras users apply: the backbone module's own `preprocess_input`
    when there is one, else `imagenet_utils.preprocess_input` for the named mode."""
    from keras.applications import imagenet_utils

    if official is not None:
        return lambda x: np.asarray(official(x.astype(np.float32)))
    if mode in ("tf", "caffe", "torch"):
        return lambda x: np.asarray(imagenet_utils.preprocess_input(x.astype(np.float32), mode=mode))
    if mode == "unit":
        return lambda x: x.astype(np.float32) / 255.0
    return lambda x: x.astype(np.float32)
