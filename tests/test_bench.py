"""`edgeft bench`: FLOPs counted right, every figure present, JSON for machines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeft.runtime.bench import count_flops

onnx = pytest.importorskip("onnx", reason="counting FLOPs and building test models need the onnx package")
from tiny_bundle import write_tiny_bundle  # noqa: E402


def conv_model(groups: int = 1) -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 8, 12])
    w = helper.make_tensor("w", TensorProto.FLOAT, [6, 4 // groups, 3, 3], [0.0] * (6 * 4 // groups * 9))
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=groups)
    model = helper.make_model(helper.make_graph([node], "conv", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_flops_are_two_macs_per_output_element(groups) -> None:
    macs = 6 * 8 * 12 * (4 // groups) * 3 * 3
    assert count_flops(conv_model(groups)) == pytest.approx(2 * macs / 1e9)


def test_bench_json_has_every_figure(tmp_path) -> None:
    bundle = write_tiny_bundle(tmp_path / "tiny")
    proc = subprocess.run([sys.executable, "-m", "edgeft", "bench", str(bundle), "--runs", "5", "--batches", "1,4", "--json",
                           "--io-binding"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["provider"] == "CPUExecutionProvider fp32" and result["input"] == "8x12" and result["io_binding"] is True
    assert set(result["throughput_fps"]) == {"1", "4"} and all(v > 0 for v in result["throughput_fps"].values())
    assert result["gflops_per_frame"] == pytest.approx(2 * 3 * 2 / 1e9)  # the 3x2 MatMul
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    cold = result["cold_start_s"]
    assert cold["to_first_result_s"] == pytest.approx(cold["import_s"] + cold["session_s"] + cold["first_frame_s"])
    assert result["peak_rss_mb"] > 0


@pytest.mark.slow
def test_mobilenetv2_flops_match_the_published_multiply_adds(tmp_path) -> None:
    pytest.importorskip("keras")
    from edgeft.export.exporter import ExportConfig, export_bundle
    from edgeft.runtime import load_bundle

    bundle = export_bundle(ExportConfig("MobileNetV2", weights="none", models_dir=tmp_path)).path
    gflops = count_flops(load_bundle(bundle).model)
    assert 0.57 < gflops < 0.63  # ~300 M multiply-adds at 224x224 (Sandler et al., 2018), without the classifier
