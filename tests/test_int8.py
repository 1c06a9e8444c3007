"""INT8 export: calibrated on real footage, agreement recorded, threshold enforced."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine
from edgeft.runtime.cpu import cpu_info

from helpers import edgeft

pytestmark = pytest.mark.slow
pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")


def test_int8_bundle_records_agreement_and_runs(tmp_path, hed_weights, carphone) -> None:
    common = ("VGG16", "--weights", hed_weights, "--input-size", 64)
    proc = edgeft("export", *common, "--int8", "--calib", carphone, "--calib-frames", 32, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bundle = tmp_path / "models" / "vgg16-int8"
    manifest = json.loads((bundle / "manifest.json").read_text())
    quant = manifest["quantization"]
    assert quant["method"] == "int8-qdq-per-channel-bias-corrected" and quant["calibration_frames"] == 32 and quant["holdout_frames"] == 16
    assert quant["target"] == ("vnni (8-bit weights)" if cpu_info().int8_dot else "avx2 (7-bit weights)")
    assert quant["agreement"]["feature_cosine_mean"] >= 0.99
    import onnx

    ops = {node.op_type for node in onnx.load(str(bundle / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # independently, on every frame of the source it was calibrated for (most never seen in calibration):
    # INT8 features point the same way as the FP32 bundle's
    assert edgeft("export", *common, "--name", "fp32", cwd=tmp_path).returncode == 0
    capture, frames = cv2.VideoCapture(str(carphone)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    a = Engine.load(tmp_path / "models" / "fp32", device="cpu").predict(frames)["features"]
    b = Engine.load(bundle, device="cpu").predict(frames)["features"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert len(frames) == 120 and cosine.min() > 0.99


def test_int8_threshold_and_bad_calibration_write_nothing(tmp_path, hed_weights, carphone) -> None:
    common = ("VGG16", "--weights", hed_weights, "--input-size", 64, "--int8")
    strict = edgeft("export", *common, "--calib", carphone, "--calib-frames", 32, "--int8-min-cosine", 0.9999999, cwd=tmp_path)
    assert strict.returncode == 1 and "INT8 model disagrees with FP32" in strict.stderr and "no bundle written" in strict.stderr
    few = edgeft("export", *common, "--calib", carphone, "--calib-frames", 200, cwd=tmp_path)
    assert few.returncode == 1 and "gave 120 frames; INT8 needs 300" in few.stderr
    alone = edgeft("export", *common, cwd=tmp_path)
    assert alone.returncode == 1 and "--int8 and --calib go together" in alone.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_int8_static_batch_bundle_calibrates_in_its_batch(tmp_path, hed_weights, carphone) -> None:
    """A --batch 4 graph takes exactly 4 frames: calibration and the agreement check feed it so."""
    proc = edgeft("export", "VGG16", "--weights", hed_weights, "--input-size", 64, "--batch", 4, "--int8", "--calib", carphone,
                  "--calib-frames", 32, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    engine = Engine.load(tmp_path / "models" / "vgg16-int8")
    assert engine.manifest.quantization.agreement["feature_cosine_mean"] >= 0.99
    assert engine.predict([np.zeros((64, 64, 3), np.uint8)] * 6)["features"].shape == (6, 512)


def test_inception_int8_has_no_average_pool_left(tmp_path, carphone) -> None:
    """InceptionV3's 'same' average pools go in as depthwise convolutions (QLinearAveragePool is slow)."""
    proc = edgeft("export", "InceptionV3", "--weights", "none", "--input-size", 75, "--int8", "--calib", carphone,
                  "--calib-frames", 32, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bundle = tmp_path / "models" / "inceptionv3-int8"
    import onnx

    nodes = onnx.load(str(bundle / "model.onnx")).graph.node
    assert not any(n.op_type == "AveragePool" for n in nodes)
    assert sum(n.name.endswith("/depthwise") for n in nodes if n.op_type == "Conv") == 9
    assert Engine.load(bundle).manifest.quantization.agreement["feature_cosine_mean"] >= 0.99


def test_mobilenetv2_real_weights_int8_passes_the_default_bar(tmp_path, deepsort_weights, vtest, carphone) -> None:
    """Depthwise networks lose most of their INT8 accuracy to a per-channel output shift from weight
    rounding; bias correction removes it. The default 0.99 bar holds on held-out frames, for both
    targets, and the bundle verifies on this CPU (on OpenVINO too, where installed)."""
    for target in ("avx2", "vnni"):
        proc = edgeft("export", "MobileNetV2", "--weights", deepsort_weights, "--input-size", 224, "--int8", "--calib", vtest,
                      "--int8-target", target, "--name", target, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        bundle = tmp_path / "models" / target
        quantization = Engine.load(bundle, device="cpu").manifest.quantization
        assert quantization.agreement["feature_cosine_mean"] >= 0.99
        assert quantization.target == f"{target} ({7 if target == 'avx2' else 8}-bit weights)"
        assert edgeft("verify", bundle, "--device", "cpu").returncode == 0
    # and on another real source it was not calibrated on
    assert edgeft("export", "MobileNetV2", "--weights", deepsort_weights, "--input-size", 224, "--name", "fp32", cwd=tmp_path).returncode == 0
    capture, frames = cv2.VideoCapture(str(carphone)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    a = Engine.load(tmp_path / "models" / "fp32", device="cpu").predict(frames)["features"]
    b = Engine.load(tmp_path / "models" / "vnni", device="cpu").predict(frames)["features"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.mean() > 0.98
