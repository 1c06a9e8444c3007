"""Bad input to export / inspect / the loader: one clear line, non-zero exit, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from edgeft.runtime import BundleError, Engine

from helpers import cli, edgeft

keras = pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def good_bundle(models) -> Path:
    result = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--models-dir", models, "--name", "good")
    assert result.exit_code == 0, result.output
    return models / "good"


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def no_leftovers(models: Path) -> None:
    assert not [p.name for p in models.iterdir() if p.name.startswith(".")], "a partial bundle was left behind"


def test_unknown_backbone_suggests_the_right_one() -> None:
    line = one_line_error(edgeft("export", "InceptionV4", "--weights", "none"))
    assert "unknown backbone 'InceptionV4'" in line and "did you mean InceptionV3" in line


def test_backbone_names_are_case_insensitive() -> None:
    from edgeft.export.backbones import resolve_backbone

    assert resolve_backbone("inceptionv3").name == resolve_backbone("INCEPTIONV3").name == "InceptionV3"


def test_unknown_cut_layer(models) -> None:
    result = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--cut", "block_16_projekt",
                 "--models-dir", models, "--name", "badcut")
    assert result.exit_code == 1
    assert "has no layer 'block_16_projekt'" in result.output and "did you mean block_16_project" in result.output
    assert not (models / "badcut").exists()
    no_leftovers(models)


def test_input_size_the_backbone_cannot_take(models) -> None:
    result = cli("export", "InceptionV3", "--weights", "none", "--input-size", 40, "--models-dir", models)
    assert result.exit_code == 1 and "cannot be built at input size 40x40" in result.output
    assert cli("export", "VGG16", "--input-size", "12by3").output.count("is not N or HxW") == 1


def test_head_shape_mismatch_names_both_shapes(models, tmp_path) -> None:
    head = keras.Sequential([keras.Input((512,)), keras.layers.Dense(1)])
    head.save(tmp_path / "h.keras")
    result = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--head", tmp_path / "h.keras",
                 "--models-dir", models, "--name", "mismatch")
    assert result.exit_code == 1
    assert "head input shape (512) does not match the backbone's features (1280)" in " ".join(result.output.split())
    assert not (models / "mismatch").exists()


def test_head_with_a_lambda_layer_is_refused_by_safe_mode(models, tmp_path) -> None:
    head = keras.Sequential([keras.Input((1280,)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(1)])
    head.save(tmp_path / "lambda.keras")
    result = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--head", tmp_path / "lambda.keras",
                 "--models-dir", models, "--name", "lambda")
    assert result.exit_code == 1 and "refused by Keras safe mode" in result.output
    assert not (models / "lambda").exists()


def _online() -> bool:
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_imagenet_weights_offline_say_how_to_proceed(tmp_path) -> None:
    if _online():
        pytest.skip("this machine can reach storage.googleapis.com, so the download would succeed")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "empty-keras-home")}
    line = one_line_error(edgeft("export", "MobileNetV2", "--input-size", 96, "--models-dir", tmp_path / "m", env=env))
    assert "cannot be downloaded" in line and "--weights PATH" in line and "--weights none" in line
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())


def test_existing_bundle_is_kept_without_force(models, good_bundle) -> None:
    before = (good_bundle / "model.onnx").read_bytes()
    result = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--models-dir", models, "--name", "good")
    assert result.exit_code == 1 and "already exists" in result.output and "--force" in result.output
    assert (good_bundle / "model.onnx").read_bytes() == before


def test_force_replaces_atomically(models, tmp_path) -> None:
    args = ("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--models-dir", models, "--name", "replace")
    assert cli(*args).exit_code == 0
    first = json.loads((models / "replace" / "manifest.json").read_text())
    assert cli(*args, "--seed", 5, "--force").exit_code == 0
    second = json.loads((models / "replace" / "manifest.json").read_text())
    assert first["weights"]["tensors_sha256"] != second["weights"]["tensors_sha256"]
    Engine.load(models / "replace")
    no_leftovers(models)


def test_failed_parity_writes_nothing(models) -> None:
    result = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 64, "--tolerance", "1e-9",
                 "--models-dir", models, "--name", "strict")
    assert result.exit_code == 1 and "parity check failed" in result.output and "no bundle written" in result.output
    assert not (models / "strict").exists()
    no_leftovers(models)


@pytest.fixture
def copy_of(good_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(good_bundle, tmp_path / "copy"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "model.onnx").write_bytes((b / "model.onnx").read_bytes()[:-100]), "does not match its manifest"),
        (lambda b: (b / "model.onnx").write_bytes(b"\x00" + (b / "model.onnx").read_bytes()[1:]), "does not match its manifest"),
        (lambda b: (b / "model.onnx").unlink(), "has no model.onnx"),
        (lambda b: (b / "manifest.json").unlink(), "has no manifest.json"),
        (lambda b: (b / "manifest.json").write_text("{\"schema_version\": 1,"), "not valid JSON"),
        (lambda b: (b / "manifest.json").write_text(json.dumps({"schema_version": 1})), "missing field"),
    ],
)
def test_damaged_bundles_are_refused_before_any_session(copy_of, damage, message) -> None:
    damage(copy_of)
    with pytest.raises(BundleError, match=message):
        Engine.load(copy_of)
    assert message in one_line_error(edgeft("inspect", copy_of))


def test_missing_bundle_folder() -> None:
    assert "does not exist" in one_line_error(edgeft("inspect", "no/such/bundle"))


def test_model_file_needs_preprocess(tmp_path) -> None:
    assert "--preprocess is required" in one_line_error(edgeft("export", tmp_path / "mine.keras"))
