"""A hand-built bundle (no TensorFlow): mean colour per channel, plus a 2-class softmax on it.

Small enough to reason about exactly, so runtime tests can assert precise outputs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgeft.runtime.bundle import sha256_bytes
from edgeft.runtime.manifest import BackboneInfo, InputSpec, Manifest, OutputSpec, Proof, WeightsInfo, mirrored_metadata
from edgeft.runtime.proof import PROOF_FILE, THRESHOLDS, proof_bytes

HEIGHT, WIDTH = 8, 12
WEIGHTS = np.array([[1.0, -1.0], [0.0, 0.0], [-1.0, 1.0]], np.float32) / 64  # R vs B decides the class


def tiny_manifest(name: str = "tiny", batch: int | None = None) -> Manifest:
    """The manifest of the hand-built model (its hash left empty)."""
    return Manifest(
        name=name, task="classification",
        input=InputSpec("image", HEIGHT, WIDTH, batch),
        outputs=(OutputSpec("features", (batch, 3), "features"), OutputSpec("prediction", (batch, 2), "prediction")),
        backbone=BackboneInfo("tiny", "file", None, "none", "none"),
        weights=WeightsInfo("none", None, "0" * 64, "hand-built"),
        model_sha256="", opset=17, parity=(), parity_tolerance=1e-4,
        versions={}, created="2026-11-24T00:00:00+00:00", labels=("red", "blue"),
    )


def build_model_bytes(batch: int | None = None, gain: float = 1.0, manifest: Manifest | None = None) -> bytes:
    """`gain` scales the pixels up and back down: exact in FP32, past FP16's range above ~257.
    The manifest's key fields (the tiny one's, or `manifest`'s) are stamped into metadata_props,
    as export mirrors them there."""
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [batch or "N", HEIGHT, WIDTH, 3])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch or "N", 3])
    prediction = helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [batch or "N", 2])
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["pixels", "gain"], ["scaled"]),
        helper.make_node("Div", ["scaled", "gain"], ["x"]),
        helper.make_node("ReduceMean", ["x"], ["features"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["features", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prediction"], axis=-1),
    ]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [3, 2], WEIGHTS.reshape(-1).tolist()),
             helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])]
    graph = helper.make_graph(nodes, "tiny", [image], [features, prediction], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, mirrored_metadata(manifest or tiny_manifest(batch=batch)))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_tiny_bundle(folder: Path, batch: int | None = None, proof: bool = False) -> Path:
    """The bundle; with `proof`, also the probes and FP32 outputs export would carry (computed
    here with numpy, independently of any backend)."""
    model_bytes = build_model_bytes(batch)
    manifest = dataclasses.replace(tiny_manifest(folder.name, batch), model_sha256=sha256_bytes(model_bytes))
    folder.mkdir(parents=True)
    if proof:
        probes = np.random.default_rng(7).integers(0, 256, (6, HEIGHT, WIDTH, 3), dtype=np.uint8)
        features = probes.astype(np.float64).mean(axis=(1, 2))
        logits = features @ WEIGHTS
        softmax = np.exp(logits - logits.max(1, keepdims=True))
        reference = {"features": features, "prediction": softmax / softmax.sum(1, keepdims=True)}
        data = proof_bytes(probes, reference, np.array([False] * 3 + [True] * 3))
        (folder / PROOF_FILE).write_bytes(data)
        manifest = dataclasses.replace(manifest, proof=Proof(PROOF_FILE, sha256_bytes(data), 6, 3, dict(THRESHOLDS)))
    (folder / "model.onnx").write_bytes(model_bytes)
    (folder / "manifest.json").write_text(manifest.to_json())
    return folder


def with_graph_of_another_manifest(folder: Path, **changes) -> None:
    """Edit the manifest and stamp the edit into the model's metadata too (hash updated), so that
    only the graph itself can tell the two apart."""
    manifest = dataclasses.replace(Manifest.from_json((folder / "manifest.json").read_text()), **changes)
    model_bytes = build_model_bytes(manifest=manifest)
    (folder / "model.onnx").write_bytes(model_bytes)
    (folder / "manifest.json").write_text(dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes)).to_json())


def with_manifest(folder: Path, **changes) -> None:
    manifest = Manifest.from_json((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(dataclasses.replace(manifest, **changes).to_json())


def write_tiny_steering_bundle(folder: Path, gain: float = 1.0, bias: float = 0.0) -> Path:
    """A steering bundle small enough to predict by hand: steering = gain x (mean R - mean B) / 255
    + bias, plus 0 x log(mean G), which is NaN when a frame has no green at all (a real NaN out of
    onnxruntime, for the safety tests). gain 0 with a bias is a head that always steers the same."""
    import onnx
    from onnx import TensorProto, helper

    manifest = dataclasses.replace(
        tiny_manifest(folder.name), task="regression", labels=(),
        outputs=(OutputSpec("features", (None, 3), "features"), OutputSpec("prediction", (None, 1), "prediction")))
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", HEIGHT, WIDTH, 3])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])
    prediction = helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N", 1])
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["features"], axes=[1, 2], keepdims=0),  # RGB means
        helper.make_node("MatMul", ["features", "w"], ["linear"]),  # gain x (R - B) / 255
        helper.make_node("Gather", ["features", "green"], ["g"], axis=1),
        helper.make_node("Log", ["g"], ["log_g"]),
        helper.make_node("Mul", ["log_g", "zero"], ["nan_if_no_green"]),
        helper.make_node("Add", ["linear", "nan_if_no_green"], ["sum"]),
        helper.make_node("Add", ["sum", "bias"], ["prediction"]),
    ]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [3, 1], [gain / 255, 0.0, -gain / 255]),
             helper.make_tensor("green", TensorProto.INT64, [1], [1]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("bias", TensorProto.FLOAT, [], [bias])]
    graph = helper.make_graph(nodes, "tiny-steer", [image], [features, prediction], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, mirrored_metadata(manifest))
    onnx.checker.check_model(model)
    model_bytes = model.SerializeToString()
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(model_bytes)
    (folder / "manifest.json").write_text(dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes)).to_json())
    return folder


def steering_frame(steering: float, green: int = 128) -> np.ndarray:
    """A BGR frame the tiny steering bundle (gain 1) reads as `steering` (in [-0.9, 0.9])."""
    red = int(round(128 + steering * 255 / 2))
    blue = int(round(128 - steering * 255 / 2))
    frame = np.empty((60, 80, 3), np.uint8)
    frame[:] = (blue, green, red)
    return frame
