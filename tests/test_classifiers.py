"""Classifiers export as classifiers: `--top` keeps the ImageNet classifier with its 1000 names,
and a user's own .keras classifier exports whole with `--labels`; `predict` names the class, `run`
writes label and score, and verification holds them to top-1 agreement."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine
from edgeft.runtime.cpu import cpu_info

from helpers import edgeft, relative_error, resized_rgb

keras = pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
pytestmark = pytest.mark.slow
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    """A 10-class CNN trained on scikit-learn's real digits (32x32), saved as the user's .keras, and
    200 held-out digits written as PNG files."""
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn ships the digits")
    work = tmp_path_factory.mktemp("classifier")
    digits = datasets.load_digits()
    images = np.stack([cv2.resize(np.clip(im * 16, 0, 255).astype(np.uint8), (32, 32), interpolation=cv2.INTER_CUBIC)
                       for im in digits.images])[..., None].repeat(3, axis=-1)
    order = np.random.default_rng(0).permutation(len(images))
    train, held = order[:-200], order[-200:]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="digit")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[train] / 255.0, digits.target[train], epochs=8, batch_size=32, verbose=0)
    model.save(work / "digits.keras")
    (work / "names.txt").write_text("\n".join(NAMES) + "\n")
    (work / "held").mkdir()
    for i in held[:20]:
        cv2.imwrite(str(work / "held" / f"{i:04d}-{NAMES[digits.target[i]]}.png"), images[i])
    return work, model, images[held], digits.target[held]


def test_a_users_classifier_exports_with_its_labels_and_predicts_them(digits_classifier) -> None:
    work, model, images, truth = digits_classifier
    proc = edgeft("export", "digits.keras", "--preprocess", "unit", "--labels", "names.txt", "--name", "digits", cwd=work)
    assert proc.returncode == 0, proc.stderr
    engine = Engine.load(work / "models" / "digits", device="cpu")
    manifest = engine.manifest
    assert manifest.task == "classification" and list(manifest.labels) == NAMES
    assert manifest.extra["classifier"]["split_after"] == "flatten" and manifest.output("features").shape == (None, 1152)
    bgr = [cv2.cvtColor(im, cv2.COLOR_RGB2BGR) for im in images]
    probabilities = engine.predict(bgr)["prediction"]
    expected = np.asarray(model(resized_rgb(bgr, 32, 32) / 255.0, training=False))  # the whole Keras model, independently
    assert relative_error(probabilities, expected) <= 1e-4
    assert (probabilities.argmax(axis=1) == truth).mean() >= 0.9  # a real classifier of real digits

    proc = edgeft("predict", "--model", "models/digits", *sorted((work / "held").glob("*.png")), "--top", 1, cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if ".png" in line]
    named = [line.split(".png")[0].split("-")[-1] == line.split("│")[3].split()[0] for line in lines]
    assert len(lines) == 20 and sum(named) >= 17  # the printed label is the digit's name

    proc = edgeft("run", "--model", "models/digits", "--source", "held", "--output", "p.jsonl", "--quiet", cwd=work)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (work / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(r["label"] in NAMES and 0 < r["score"] <= 1 for r in rows)
    assert all(r["score"] == pytest.approx(max(r["prediction"])) for r in rows)


def test_a_classifier_without_labels_and_the_refusals(digits_classifier) -> None:
    work = digits_classifier[0]
    proc = edgeft("export", "digits.keras", "--preprocess", "unit", "--task", "classification", "--name", "unnamed", cwd=work)
    assert proc.returncode == 0, proc.stderr
    manifest = Engine.load(work / "models" / "unnamed", device="cpu").manifest
    assert manifest.task == "classification" and manifest.labels == () and manifest.output("prediction").shape == (None, 10)
    (work / "three.txt").write_text("a\nb\nc\n")
    for args, message in ((("digits.keras", "--preprocess", "unit", "--labels", "three.txt"), "3 labels but the classifier predicts 10"),
                          (("digits.keras", "--preprocess", "unit", "--top"), "--top keeps a keras.applications classifier"),
                          (("MobileNetV2", "--weights", "none", "--labels", "names.txt"), "--labels needs --head"),
                          (("MobileNetV2", "--weights", "none", "--top", "--cut", "block_6_expand"), "drop --cut")):
        proc = edgeft("export", *args, "--name", "refused", cwd=work)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (work / "models" / "refused").exists()


@pytest.mark.skipif(not cpu_info().native_bf16, reason=f"this CPU ({cpu_info().model}) has no native BF16")
def test_bf16_verification_holds_a_classifier_to_top1_agreement(digits_classifier) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    work = digits_classifier[0]
    if not (work / "models" / "digits").is_dir():
        assert edgeft("export", "digits.keras", "--preprocess", "unit", "--labels", "names.txt", "--name", "digits", cwd=work).returncode == 0
    engine = Engine.load(work / "models" / "digits", device="openvino", precision="bf16", verify=True)
    assert engine.verification.passed and engine.verification.agreement["top1_agreement"] >= 0.95


def test_export_top_keeps_the_imagenet_classifier_with_1000_names(tmp_path, photos_bgr) -> None:
    from edgeft.export.imagenet import imagenet_labels

    proc = edgeft("export", "MobileNetV2", "--top", "--weights", "none", "--input-size", 96, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bundle = tmp_path / "models" / "mobilenetv2-top"
    engine = Engine.load(bundle, device="cpu")
    manifest = engine.manifest
    assert manifest.task == "classification" and len(manifest.labels) == 1000 and list(manifest.labels) == imagenet_labels()[0]
    assert manifest.labels[:2] == ("tench", "goldfish") and manifest.labels[-1] == "toilet_tissue"
    assert manifest.extra["classifier"]["kept"] == "include_top" and "keras-hub" in manifest.extra["classifier"]["labels"]
    assert (bundle / "labels.txt").read_text().splitlines()[0] == "tench"

    keras.utils.set_random_seed(0)  # the exporter's default seed rebuilds the same weights
    model = keras.applications.MobileNetV2(include_top=True, weights=None, input_shape=(96, 96, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(resized_rgb(photos_bgr, 96, 96))
    got = engine.predict(photos_bgr)
    assert relative_error(got["prediction"], np.asarray(model(x, training=False))) <= 1e-4
    assert got["prediction"].shape == (len(photos_bgr), 1000) and got["features"].shape == (len(photos_bgr), 1280)

    cv2.imwrite(str(tmp_path / "cat.png"), photos_bgr[0])
    proc = edgeft("predict", "--model", bundle, tmp_path / "cat.png", "--top", 5, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    best = np.argsort(-got["prediction"][0])[:1]
    assert manifest.labels[best[0]] in proc.stdout and proc.stdout.count("%") == 5
    proc = edgeft("verify", bundle, "--device", "cpu")
    assert proc.returncode == 0 and "passed" in proc.stdout
    proc = edgeft("inspect", bundle)
    assert proc.returncode == 0 and "include_top" in proc.stdout
