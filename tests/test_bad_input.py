"""Bad input at the edge of the system: one clear line and a non-zero exit, never a traceback;
and bundles whose files do not all belong together are refused before any session exists."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import BundleError, Engine
from edgeft.runtime.bundle import sha256_file
from edgeft.runtime.manifest import Manifest

from helpers import edgeft

onnx = pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import with_manifest, write_tiny_bundle  # noqa: E402


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len([l for l in proc.stderr.splitlines() if l.startswith("error:")]) == 1
    text = " ".join(proc.stderr.split())
    for fragment in fragments:
        assert fragment in text, text
    return text


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_tiny_bundle(tmp_path / "tiny")


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((8, 12, 3), np.uint8))
    return path


def rehash(bundle: Path) -> None:
    """Make the manifest's hash match model.onnx again: what a careless or hostile edit does."""
    with_manifest(bundle, model_sha256=sha256_file(bundle / "model.onnx"))


def test_non_utf8_manifest_names_the_line(bundle) -> None:
    text = (bundle / "manifest.json").read_bytes()
    (bundle / "manifest.json").write_bytes(text.replace(b'"tiny"', b'"ti\xffny"', 1))
    one_line_error(edgeft("inspect", bundle), "manifest.json:", "byte 0xff is not UTF-8")


def test_model_with_external_data_is_refused_before_onnxruntime_sees_it(bundle, image) -> None:
    from onnx import numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(bundle / "model.onnx")
    for tensor in model.graph.initializer:  # raw bytes, which is what goes to external files
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    convert_model_to_external_data(model, location="data.bin", size_threshold=0)
    onnx.save(model, bundle / "model.onnx")
    rehash(bundle)
    with pytest.raises(BundleError, match=r"keeps 2 tensor\(s\) in external files"):
        Engine.load(bundle)
    one_line_error(edgeft("run", "--model", bundle, "--source", image), "external files", "a bundle is one verified file")


def test_onnxruntime_load_failure_is_one_line(bundle, image) -> None:
    model = onnx.load(bundle / "model.onnx")
    model.graph.node[0].op_type = "NoSuchOperator"
    onnx.save(model, bundle / "model.onnx")
    rehash(bundle)
    one_line_error(edgeft("run", "--model", bundle, "--source", image), "onnxruntime cannot load")
    one_line_error(edgeft("inspect", bundle), "does not load", "onnxruntime cannot load")


def test_garbage_model_with_matching_hash_is_refused(bundle) -> None:
    (bundle / "model.onnx").write_bytes(b"\x0f" * 64)
    rehash(bundle)
    with pytest.raises(BundleError, match="is not a valid ONNX model"):
        Engine.load(bundle)


def test_model_file_of_another_manifest_is_refused(tmp_path, bundle) -> None:
    """Swap in a model exported for other labels and fix the hash: the mirrored metadata differs."""
    other = write_tiny_bundle(tmp_path / "other")
    with_manifest(other, labels=("cat", "dog"))  # the manifest changes, its model file does not
    Manifest.from_json((other / "manifest.json").read_text())
    with pytest.raises(BundleError, match=r"metadata disagrees with the manifest \(edgeft.labels\)"):
        Engine.load(other)
    with_manifest(bundle, task="regression")
    with pytest.raises(BundleError, match="edgeft.task"):
        Engine.load(bundle)


def test_inspect_says_the_bundle_loads(bundle) -> None:
    proc = edgeft("inspect", bundle)
    assert proc.returncode == 0 and "yes: every file's sha256 verified" in " ".join(proc.stdout.split())


@pytest.mark.parametrize("option, value, message", [
    ("--threads", 0, "--threads must be at least 1"),
    ("--width", 0, "--width must be at least 1"),
    ("--height", -5, "--height must be at least 1"),
    ("--rate", "nan", "--rate must be a positive number"),
    ("--rate", "inf", "--rate must be a positive number"),
    ("--max-frames", -1, "must be 0 or more"),
    ("--stride", 0, "--stride must be at least 1"),
    ("--batch", 0, "must be at least 1"),
])
def test_bad_numbers_are_refused(bundle, image, option, value, message) -> None:
    one_line_error(edgeft("run", "--model", bundle, "--source", image, option, value), message)


def write_log(folder: Path, steering: list[str], prefix: bytes = b"") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "c.png"), np.zeros((8, 12, 3), np.uint8))
    rows = b"".join(f"c.png,c.png,c.png,{s},0,0,0\n".encode() for s in steering)
    (folder / "driving_log.csv").write_bytes(prefix + b"center,left,right,steering,throttle,brake,speed\n" + rows)
    return folder / "driving_log.csv"


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_non_finite_steering_names_file_and_line(bundle, tmp_path, value) -> None:
    log = write_log(tmp_path / "drive", ["0.1", value])
    one_line_error(edgeft("run", "--model", bundle, "--source", log), "driving_log.csv:3", "is not a finite number")


def test_driving_log_with_a_bom_reads_and_a_bad_byte_is_named(bundle, tmp_path) -> None:
    log = write_log(tmp_path / "bom", ["0.1", "0.2"], prefix=b"\xef\xbb\xbf")
    assert edgeft("run", "--model", bundle, "--source", log, "--quiet").returncode == 0
    bad = write_log(tmp_path / "latin", ["0.1", "0.2"])
    bad.write_bytes(bad.read_bytes().replace(b"0.2", b"0.2\xe9"))
    one_line_error(edgeft("run", "--model", bundle, "--source", bad), "driving_log.csv:3", "byte 0xe9 is not UTF-8")


@pytest.mark.slow
def test_export_opset_out_of_range(tmp_path) -> None:
    pytest.importorskip("tf2onnx", reason="the export extra is not installed")
    one_line_error(edgeft("export", "MobileNetV2", "--weights", "none", "--opset", 99, "--models-dir", tmp_path),
                   "--opset 99 is not supported", "13..18")
    assert not list(tmp_path.iterdir())
