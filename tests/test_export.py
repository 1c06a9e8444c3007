"""`edgeft export` end to end: Keras -> tf2onnx -> bundle -> edgeft.runtime, compared with Keras.

Every comparison here is independent of the exporter's own parity proof: the test rebuilds
the Keras model, applies Keras' own `preprocess_input`, and checks the runtime's outputs on
real photos of assorted sizes.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgeft.runtime import Engine
from edgeft.runtime.bundle import sha256_file

from helpers import cli, cosine, relative_error, resized_rgb

keras = pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
pytestmark = pytest.mark.slow
TOL = 1e-4


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


def export(models: Path, *args: object) -> Path:
    result = cli("export", *args, "--models-dir", models)
    assert result.exit_code == 0, result.output
    return models / result.output.split("wrote ")[1].split()[0].split("/")[-1]


def pooled(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False)).mean(axis=(1, 2))


@pytest.mark.parametrize(
    ("name", "size"), [("InceptionV3", 96), ("ResNet50", 64), ("VGG16", 64), ("MobileNetV2", 96)]
)
def test_random_weight_backbones_match_keras_on_real_photos(models, photos_bgr, name, size) -> None:
    bundle = export(models, name.lower(), "--weights", "none", "--input-size", size, "--name", f"{name}-none")
    engine = Engine.load(bundle, device="cpu")
    manifest = engine.manifest
    assert manifest.input.height == manifest.input.width == size
    assert manifest.weights.source == "none" and manifest.parity[0].max_rel <= TOL

    keras.utils.set_random_seed(0)  # the exporter's default seed rebuilds the same weights
    model = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(size, size, 3))
    from edgeft.export.weights import tensors_sha256

    assert tensors_sha256(model) == manifest.weights.tensors_sha256
    module = importlib.import_module(f"keras.applications.{_module(name)}")
    expected = pooled(model, module.preprocess_input(resized_rgb(photos_bgr, size, size)))
    actual = engine.predict(photos_bgr)["features"]
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= TOL


def _module(name: str) -> str:
    from edgeft.export.backbones import resolve_backbone

    return resolve_backbone(name).module


def test_real_mobilenetv2_weights_from_a_pytorch_file(models, photos_bgr, deepsort_weights) -> None:
    bundle = export(models, "MobileNetV2", "--weights", deepsort_weights, "--name", "mnv2-real")
    engine = Engine.load(bundle, device="cpu")
    weights = engine.manifest.weights
    assert weights.file_sha256 == sha256_file(deepsort_weights)
    assert weights.loaded_by == "in order (260 of 260 tensors)"

    from edgeft.export.weights import load_weights_file

    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
    load_weights_file(model, deepsort_weights)
    expected = pooled(model, keras.applications.mobilenet_v2.preprocess_input(resized_rgb(photos_bgr, 224, 224)))
    features = engine.predict(photos_bgr)["features"]
    assert relative_error(features, expected) <= TOL
    # Real ImageNet features: a mirrored photo stays closer to itself than to any other photo.
    mirrored = engine.predict(photos_bgr[0][:, ::-1].copy())["features"]
    same = cosine(features[0], mirrored)
    assert same > 0.9 and all(same > cosine(features[0], other) for other in features[1:])


def test_real_vgg16_weights_from_another_models_h5(models, photos_bgr, hed_weights) -> None:
    bundle = export(models, "VGG16", "--weights", hed_weights, "--input-size", "128x160", "--name", "vgg-hed")
    engine = Engine.load(bundle, device="cpu")
    assert (engine.manifest.input.height, engine.manifest.input.width) == (128, 160)
    assert engine.manifest.weights.loaded_by == "in order (26 of 38 tensors)"  # the HED side outputs are left out

    from edgeft.export.weights import load_weights_file

    model = keras.applications.VGG16(include_top=False, weights=None, input_shape=(128, 160, 3))
    load_weights_file(model, hed_weights)
    expected = pooled(model, keras.applications.vgg16.preprocess_input(resized_rgb(photos_bgr, 128, 160)))
    assert relative_error(engine.predict(photos_bgr)["features"], expected) <= TOL


def test_weights_file_saved_by_keras(models, photos_bgr, tmp_path) -> None:
    keras.utils.set_random_seed(123)
    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = tmp_path / "mine.weights.h5"
    model.save_weights(path)
    bundle = export(models, "MobileNetV2", "--weights", path, "--input-size", 64, "--name", "mnv2-file")
    engine = Engine.load(bundle, device="cpu")
    assert engine.manifest.weights.loaded_by == "keras load_weights"
    expected = pooled(model, keras.applications.mobilenet_v2.preprocess_input(resized_rgb(photos_bgr, 64, 64)))
    assert relative_error(engine.predict(photos_bgr)["features"], expected) <= TOL


def test_cut_at_a_named_layer_without_pooling(models, photos_bgr, deepsort_weights) -> None:
    bundle = export(models, "MobileNetV2", "--weights", deepsort_weights, "--input-size", 96,
                    "--cut", "block_6_expand_relu", "--pooling", "none")
    assert bundle.name == "mobilenetv2-block_6_expand_relu"
    engine = Engine.load(bundle, device="cpu")
    assert engine.manifest.backbone.cut == "block_6_expand_relu"
    assert engine.manifest.outputs[0].shape == (None, 12, 12, 192)

    from edgeft.export.weights import load_weights_file

    full = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    load_weights_file(full, deepsort_weights)
    cut = keras.Model(full.input, full.get_layer("block_6_expand_relu").output)
    expected = np.asarray(cut(keras.applications.mobilenet_v2.preprocess_input(resized_rgb(photos_bgr, 96, 96))))
    actual = engine.predict(photos_bgr)["features"]
    assert actual.shape == (len(photos_bgr), 12, 12, 192)
    assert relative_error(actual, expected) <= TOL


def test_users_own_model_file_as_backbone(models, photos_bgr, tmp_path) -> None:
    keras.utils.set_random_seed(7)
    inputs = keras.Input((48, 48, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_a")(inputs)
    x = keras.layers.MaxPooling2D(name="pool_a")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    own = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="tiny")
    path = tmp_path / "tiny.keras"
    own.save(path)

    bundle = export(models, path, "--preprocess", "unit", "--cut", "conv_b", "--pooling", "max")
    engine = Engine.load(bundle, device="cpu")
    assert engine.manifest.backbone.source == "file" and engine.manifest.weights.file_sha256 == sha256_file(path)
    cut = keras.Model(own.input, own.get_layer("conv_b").output)
    expected = np.asarray(cut(resized_rgb(photos_bgr, 48, 48) / 255.0)).max(axis=(1, 2))
    assert relative_error(engine.predict(photos_bgr)["features"], expected) <= TOL

    legacy = tmp_path / "tiny.h5"
    own.save(legacy)
    refused = cli("export", legacy, "--preprocess", "unit", "--models-dir", models)
    assert refused.exit_code == 1 and "--trust-h5" in refused.output
    trusted = export(models, legacy, "--preprocess", "unit", "--trust-h5", "--name", "tiny-h5")
    assert Engine.load(trusted, device="cpu").manifest.outputs[0].shape == (None, 10)


def _head(features: int, units: int, activation: str | None, path: Path) -> keras.Model:
    keras.utils.set_random_seed(3)
    head = keras.Sequential([keras.Input((features,)), keras.layers.Dropout(0.3),
                             keras.layers.Dense(units, activation=activation)])
    head.save(path)
    return head


def test_fused_regression_head(models, photos_bgr, deepsort_weights, tmp_path) -> None:
    head = _head(1280, 1, None, tmp_path / "steer.keras")
    bundle = export(models, "MobileNetV2", "--weights", deepsort_weights, "--input-size", 96,
                    "--head", tmp_path / "steer.keras", "--name", "steer")
    engine = Engine.load(bundle, device="cpu")
    assert engine.manifest.task == "regression"
    assert [o.name for o in engine.manifest.outputs] == ["features", "prediction"]
    result = engine.predict(photos_bgr)
    expected = np.asarray(head(result["features"], training=False))
    assert result["prediction"].shape == (len(photos_bgr), 1)
    assert relative_error(result["prediction"], expected) <= TOL


def test_fused_classification_head_with_labels(models, photos_bgr, deepsort_weights, tmp_path) -> None:
    head = _head(1280, 3, "softmax", tmp_path / "cls.keras")
    labels = tmp_path / "labels.txt"
    labels.write_text("left\nstraight\nright\n")
    bundle = export(models, "MobileNetV2", "--weights", deepsort_weights, "--input-size", 96,
                    "--head", tmp_path / "cls.keras", "--labels", labels, "--name", "cls")
    engine = Engine.load(bundle, device="cpu")
    assert engine.manifest.task == "classification"
    assert engine.manifest.labels == ("left", "straight", "right")
    assert (bundle / "labels.txt").read_text().split() == ["left", "straight", "right"]
    single = engine.predict(photos_bgr[0])
    assert single["prediction"].shape == (3,) and abs(float(single["prediction"].sum()) - 1) < 1e-5
    expected = np.asarray(head(single["features"][None], training=False))[0]
    assert relative_error(single["prediction"], expected) <= TOL

    wrong = tmp_path / "two.txt"
    wrong.write_text("a\nb\n")
    bad = cli("export", "MobileNetV2", "--weights", "none", "--input-size", 96, "--head", tmp_path / "cls.keras",
              "--labels", wrong, "--models-dir", models, "--name", "never")
    assert bad.exit_code == 1 and "2 labels but the head predicts 3 classes" in bad.output
    assert not (models / "never").exists()


def test_static_batch(models, photos_bgr) -> None:
    bundle = export(models, "MobileNetV2", "--weights", "none", "--input-size", 64, "--batch", 2, "--name", "static")
    import onnx

    dims = onnx.load(str(bundle / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 64, 64, 3]
    engine = Engine.load(bundle, device="cpu")
    assert engine.manifest.input.batch == 2
    three = engine.predict(photos_bgr[:3])["features"]  # 3 frames through a batch-2 graph: padded
    one_by_one = np.stack([engine.predict(f)["features"] for f in photos_bgr[:3]])
    assert three.shape == (3, 1280)
    np.testing.assert_allclose(three, one_by_one, rtol=1e-5, atol=1e-6)


def test_manifest_and_onnx_metadata_describe_the_bundle(models) -> None:
    bundle = export(models, "MobileNetV2", "--weights", "none", "--input-size", 64, "--name", "meta")
    manifest = json.loads((bundle / "manifest.json").read_text())
    for key in ("schema_version", "versions", "backbone", "input", "outputs", "weights", "model_sha256", "parity", "opset", "created"):
        assert key in manifest
    assert {"tensorflow", "keras", "tf2onnx", "onnx", "edgeft"} <= set(manifest["versions"])
    assert manifest["model_sha256"] == sha256_file(bundle / "model.onnx")
    import onnx

    props = {p.key: p.value for p in onnx.load(str(bundle / "model.onnx")).metadata_props}
    assert props["edgeft.task"] == "features" and props["edgeft.input"] == "uint8 NHWC RGB 64x64"
    shown = cli("inspect", bundle)
    assert shown.exit_code == 0 and "MobileNetV2" in shown.output and "parity" in shown.output


def test_cut_points_are_block_boundaries() -> None:
    from edgeft.export.build import cut_points

    keras.backend.clear_session()  # layer names like conv2d_5 count the layers made before them in this process
    inception = {p.name for p in cut_points(keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(75, 75, 3)))}
    assert {f"mixed{i}" for i in range(11)} <= inception
    assert "mixed9_0" not in inception and "conv2d_5" not in inception  # inside a block: branches bypass them
    resnet = {p.name for p in cut_points(keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3)))}
    assert {"conv2_block1_out", "conv3_block4_out", "conv5_block3_out"} <= resnet
    assert "conv2_block1_1_conv" not in resnet
    listed = cli("layers", "resnet50", "--input-size", 64)
    assert listed.exit_code == 0 and "conv4_block6_out" in listed.output
