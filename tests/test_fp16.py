"""FP16 conversion and its checks, on hand-built graphs (no TensorFlow), plus one real export."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgeft.runtime import Engine
from edgeft.runtime.manifest import Manifest

from helpers import edgeft

onnx = pytest.importorskip("onnx", reason="FP16 conversion needs the onnx package (export extra)")
from tiny_bundle import HEIGHT, WIDTH, build_model_bytes, write_tiny_bundle  # noqa: E402

from edgeft.export.agreement import run_model  # noqa: E402
from edgeft.export.errors import ExportError  # noqa: E402
from edgeft.export.fp16 import Fp16Config, convert, emulate_fp16_storage, to_fp16  # noqa: E402


@pytest.fixture
def manifest(tmp_path) -> Manifest:
    return Manifest.from_json((write_tiny_bundle(tmp_path / "tiny") / "manifest.json").read_text())


def frames(count: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, HEIGHT, WIDTH, 3), dtype=np.uint8)


def test_fp16_graph_halves_the_weights_and_keeps_the_bundle_contract(manifest) -> None:
    fp32 = build_model_bytes()
    half = to_fp16(fp32)
    graph = onnx.load_from_string(half).graph
    assert all(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8  # frames are fed as before
    assert {o.type.tensor_type.elem_type for o in graph.output} == {onnx.TensorProto.FLOAT}  # and read as before
    ours, ref = run_model(half, manifest, frames()), run_model(fp32, manifest, frames())
    assert ours["features"].dtype == np.float32
    np.testing.assert_allclose(ours["features"], ref["features"], rtol=2e-3)


def test_convert_records_both_checks(manifest) -> None:
    half, record = convert(build_model_bytes(), manifest, frames(), Fp16Config())
    assert record.checked_on == "cpu" and record.probe_frames == 8
    for check in (record.agreement, record.storage_emulation):
        assert check["feature_cosine_mean"] > 0.9999 and check["top1_agreement"] == 1.0
    assert half == to_fp16(build_model_bytes())  # the graph returned is the one checked


def test_storage_emulation_catches_an_overflow_the_cpu_run_hides(manifest) -> None:
    """x * 1000 / 1000 is exact in FP32; stored in FP16 the product (up to 255,000) is inf. The
    CPU computes FP16 layers in FP32, so only the emulation sees what a GPU would produce."""
    fp32 = build_model_bytes(gain=1000.0)
    assert np.isfinite(run_model(to_fp16(fp32), manifest, frames())["features"]).all()
    emulated = run_model(emulate_fp16_storage(fp32), manifest, frames())
    assert not np.isfinite(emulated["features"]).all()
    with pytest.raises(ExportError, match="FP16 storage emulation: feature cosine nan < 0.999"):
        convert(fp32, manifest, frames(), Fp16Config())


@pytest.mark.slow
def test_fp16_export_writes_a_checked_bundle_and_refuses_int8_with_it(tmp_path, hed_weights) -> None:
    pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
    common = ("VGG16", "--weights", hed_weights, "--input-size", 64)
    proc = edgeft("export", *common, "--fp16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bundle = tmp_path / "models" / "vgg16-fp16"
    half = json.loads((bundle / "manifest.json").read_text())["fp16"]
    assert half["checked_on"] == "cpu" and half["probe_frames"] == 6
    assert half["agreement"]["feature_cosine_mean"] > 0.999 and half["storage_emulation"]["feature_cosine_mean"] > 0.999
    engine = Engine.load(bundle)
    assert engine.manifest.precision == "fp16" and engine.predict(np.zeros((48, 64, 3), np.uint8))["features"].dtype == np.float32
    shown = edgeft("inspect", bundle, cwd=tmp_path, env={**os.environ, "COLUMNS": "300"}).stdout
    assert "FP16 graph on cpu: feature_cosine_mean" in shown and "FP16 storage emulated on CPU: feature_cosine_mean" in shown
    both = edgeft("export", *common, "--fp16", "--int8", "--calib", hed_weights, "--name", "x", cwd=tmp_path)
    assert both.returncode == 1 and "--int8 and --fp16 exclude each other" in both.stderr
    lax = edgeft("export", *common, "--fp16", "--fp16-min-cosine", 0.5, "--name", "lax", cwd=tmp_path)  # a bar the runtime would refuse
    assert lax.returncode == 1 and "fp16_min_cosine 0.5 is refused" in lax.stderr and len(lax.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "models" / "lax").exists()
