"""Transfer learning: dataset plans, extraction (resumable, exact), train-head, and the whole path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.transfer.datasets import plan_class_folders, plan_driving_log
from edgeft.transfer.extract import ExtractConfig, extract, load_features
from edgeft.runtime import Engine
from edgeft.runtime.errors import EdgeftError

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

COLOURS = {"blue": (200, 30, 30), "green": (30, 200, 30), "red": (30, 30, 200)}


def class_folders(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, bgr in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.clip(np.array(bgr) + rng.normal(0, 25, (16, 20, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), image)
    return root


@pytest.fixture
def engine(tmp_path) -> Engine:
    return Engine.load(write_tiny_bundle(tmp_path / "tiny"))


def test_class_folder_plan_is_stratified_seeded_and_skips_non_images(tmp_path) -> None:
    root = class_folders(tmp_path / "data")
    (root / "red" / "README.txt").write_text("not an image")
    plan = plan_class_folders(root, 0.25, 0.25, seed=3, augment=("flip",))
    assert plan.classes == ("blue", "green", "red") and plan.skipped == 1
    for name in COLOURS:
        splits = [i.split for i in plan.items if i.label == name and not i.flip]
        assert splits.count("val") == 3 and splits.count("test") == 3
    flipped = [i for i in plan.items if i.flip]
    assert len(flipped) == 18 and all(i.split == "train" for i in flipped)
    assert plan_class_folders(root, 0.25, 0.25, 3, ("flip",)) == plan
    assert plan_class_folders(root, 0.25, 0.25, 4, ("flip",)) != plan


@pytest.mark.parametrize(
    ("layout", "message"),
    [({"a": 1, "b": 3}, "class 'a' in .* has 1 image"), ({"a": 3}, "at least two class sub-folders"), ({}, "at least two class sub-folders")],
)
def test_bad_class_folders(tmp_path, layout, message) -> None:
    tmp_path.joinpath("data").mkdir()
    for name, count in layout.items():
        (tmp_path / "data" / name).mkdir()
        for i in range(count):
            cv2.imwrite(str(tmp_path / "data" / name / f"{i}.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(EdgeftError, match=message):
        plan_class_folders(tmp_path / "data", 0.2, 0.2, 0, ())


def test_driving_log_plan_uses_side_cameras_and_splits_by_moment(tmp_path) -> None:
    from edgeft.transfer.sample import make_driving_sample

    log = make_driving_sample(tmp_path / "drive", frames=20)
    plan = plan_driving_log(log, ("center", "left", "right"), 0.2, 0.2, 0.2, seed=0, augment=("flip",))
    base = [i for i in plan.items if not i.flip]
    assert len(base) == 60 and plan.task == "regression"
    for k in range(0, 60, 3):
        center, left, right = base[k : k + 3]
        assert (center.camera, left.camera, right.camera) == ("center", "left", "right")
        assert float(left.label) == pytest.approx(float(center.label) + 0.2, abs=1e-6)
        assert float(right.label) == pytest.approx(float(center.label) - 0.2, abs=1e-6)
        assert center.split == left.split == right.split
    flips = {(i.path, i.camera): float(i.label) for i in plan.items if i.flip}
    for i in base:
        if i.split == "train":
            assert flips[(i.path, i.camera)] == pytest.approx(-float(i.label), abs=1e-6)


def test_extract_then_load_matches_direct_predict(engine, tmp_path) -> None:
    plan = plan_class_folders(class_folders(tmp_path / "data"), 0.2, 0.2, 0, ())
    extract(engine, plan, tmp_path / "feat", {"seed": 0}, ExtractConfig(rows_per_shard=10, batch=4))
    loaded = load_features(tmp_path / "feat")
    assert loaded.x.shape == (36, 3) and len(list((tmp_path / "feat").glob("shard-*.npy"))) == 4
    for row in (0, 17, 35):
        direct = engine.predict(cv2.imread(plan.items[row].path))["features"]
        np.testing.assert_array_equal(loaded.x[row], direct)
        assert loaded.labels[row] == plan.items[row].label


def test_interrupted_extraction_resumes_to_exactly_the_same_features(engine, tmp_path) -> None:
    plan = plan_class_folders(class_folders(tmp_path / "data"), 0.2, 0.2, 0, ("flip", "brightness"))
    config = ExtractConfig(rows_per_shard=8, batch=3)
    extract(engine, plan, tmp_path / "whole", {"seed": 0}, config)

    def interrupt(done, total):
        if done >= 16:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(engine, plan, tmp_path / "cut", {"seed": 0}, config, progress=interrupt)
    with pytest.raises(EdgeftError, match="has .* of .* feature rows|holds 16 of"):
        load_features(tmp_path / "cut")
    with pytest.raises(EdgeftError, match="pass --resume"):
        extract(engine, plan, tmp_path / "cut", {"seed": 0}, config)
    with pytest.raises(EdgeftError, match="started with another bundle, dataset or settings"):
        extract(engine, plan, tmp_path / "cut", {"seed": 1}, ExtractConfig(8, 3, resume=True))
    extract(engine, plan, tmp_path / "cut", {"seed": 0}, ExtractConfig(8, 3, resume=True))
    for a, b in zip(sorted((tmp_path / "whole").glob("shard-*")), sorted((tmp_path / "cut").glob("shard-*"))):
        np.testing.assert_array_equal(np.load(a), np.load(b))
    assert load_features(tmp_path / "cut").x.shape == load_features(tmp_path / "whole").x.shape


def test_unreadable_images_are_left_out(engine, tmp_path) -> None:
    root = class_folders(tmp_path / "data", per_class=4)
    (root / "red" / "broken.png").write_bytes(b"not a png")
    plan = plan_class_folders(root, 0.0, 0.0, 0, ())
    assert extract(engine, plan, tmp_path / "feat", {}) == 1
    loaded = load_features(tmp_path / "feat")
    assert loaded.dropped == 1 and len(loaded.x) == 12 and not np.isnan(loaded.x).any()


@pytest.mark.slow
def test_train_head_on_class_features(engine, tmp_path) -> None:
    plan = plan_class_folders(class_folders(tmp_path / "data", per_class=20), 0.2, 0.2, 0, ())
    extract(engine, plan, tmp_path / "feat", {})
    proc = edgeft("train-head", tmp_path / "feat", "--out", tmp_path / "head", "--epochs", 300, "--learning-rate", 0.05)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "head" / "metrics.json").read_text())
    assert report["task"] == "classification" and report["classes"] == ["blue", "green", "red"]
    assert report["metrics"]["test"]["accuracy"] >= 0.9  # colour is trivially separable from mean colour
    for name in ("head.keras", "head.json", "labels.txt", "curves.png", "confusion.png"):
        assert (tmp_path / "head" / name).is_file()


def test_train_head_refuses_unlabelled_or_unfinished_features(engine, tmp_path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((8, 8, 3), np.uint8))
    proc = edgeft("extract", "--source", images, "--model", engine.bundle.path, "--out", tmp_path / "plain")
    assert proc.returncode == 0, proc.stderr
    proc = edgeft("train-head", tmp_path / "plain")
    assert proc.returncode == 1 and "no labels" in proc.stderr
    proc = edgeft("train-head", tmp_path / "nothing")
    assert proc.returncode == 1 and "is not a features folder" in proc.stderr


@pytest.mark.slow
def test_driving_sample_whole_path(tmp_path, deepsort_weights) -> None:
    """The four commands of docs/transfer.md, small: extract -> train-head -> export --head -> run."""
    assert edgeft("sample", "drive", "--frames", 60, cwd=tmp_path).returncode == 0
    size = ("--input-size", "64x128")
    proc = edgeft("export", "MobileNetV2", "--weights", deepsort_weights, *size, "--name", "base", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = edgeft("extract", "drive", "--model", "models/base", "--out", "feat", "--augment", "flip", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = edgeft("train-head", "feat", "--out", "head", "--epochs", 60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = edgeft("export", "MobileNetV2", "--weights", deepsort_weights, *size, "--head", "head/head.keras", "--name", "steer", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = edgeft("run", "--model", "models/steer", "--source", "drive", "--output", "p.jsonl", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    centre = [r for r in rows if r["source"] == "center"]
    mae = np.mean([abs(r["prediction"] - r["truth"]) for r in centre])
    spread = np.mean([abs(r["truth"] - np.mean([c["truth"] for c in centre])) for r in centre])
    assert mae < spread  # better than always predicting the mean steering
    # a head trained on these features is refused on another backbone (here: random weights)
    proc = edgeft("export", "MobileNetV2", "--weights", "none", *size, "--head", "head/head.keras", "--name", "wrong", cwd=tmp_path)
    assert proc.returncode == 1 and "was trained on features of another backbone" in proc.stderr
    assert not (tmp_path / "models" / "wrong").exists()


@pytest.mark.slow
def test_class_activation_maps_from_a_gap_head(tmp_path, deepsort_weights, photos_bgr) -> None:
    """train-head --arch gap on a feature map, export --cam: the maps are exact, drawn, visualised."""
    keras = pytest.importorskip("keras")
    class_folders(tmp_path / "data", per_class=8)
    common = ("MobileNetV2", "--weights", deepsort_weights, "--input-size", 96, "--pooling", "none")
    assert edgeft("export", *common, "--name", "maps", cwd=tmp_path).returncode == 0
    assert edgeft("extract", "data", "--model", "models/maps", "--out", "feat", cwd=tmp_path).returncode == 0
    proc = edgeft("train-head", "feat", "--out", "head", "--arch", "gap", "--epochs", 20, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    refused = edgeft("export", "MobileNetV2", "--weights", deepsort_weights, "--input-size", 96, "--head", "head/head.keras",
                     "--cam", cwd=tmp_path)
    assert refused.returncode == 1 and "--cam needs --pooling none" in refused.stderr
    proc = edgeft("export", *common, "--head", "head/head.keras", "--labels", "head/labels.txt", "--cam", "--name", "cam", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    engine = Engine.load(tmp_path / "models" / "cam")
    assert engine.manifest.output("cam").shape == (None, 3, 3, 3)
    result = engine.predict(photos_bgr[0])
    bias = keras.saving.load_model(tmp_path / "head" / "head.keras").get_layer("prediction").get_weights()[1]
    logits = result["cam"].mean(axis=(0, 1)) + bias  # GAP then dense == mean of the weighted maps
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(softmax, result["prediction"], rtol=1e-4, atol=1e-6)

    cv2.imwrite(str(tmp_path / "cat.png"), photos_bgr[0])
    proc = edgeft("visualize", "models/cam", "cat.png", "--out", "vis", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mosaic = cv2.imread(str(tmp_path / "vis" / "cat-activations.png"))
    assert mosaic.shape[:2] == (32 * 3 * 16, 40 * 3 * 16)  # 1280 channels of 3x3 maps as a 32 x 40 grid
    assert len(list((tmp_path / "vis").glob("cat-cam-*.png"))) == 1
    proc = edgeft("run", "--model", "models/cam", "--source", "cat.png", "--save-video", "v.mp4", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_activation_mosaic_of_a_vector_is_one_pixel_per_channel() -> None:
    from edgeft.transfer.visualize import activation_mosaic, grid_shape

    assert grid_shape(2048) == (32, 64) and grid_shape(1280) == (32, 40)
    features = np.arange(2048, dtype=np.float32)
    mosaic = activation_mosaic(features, tile=2)
    assert mosaic.shape == (64, 128, 3)
    assert (mosaic[0, 0] != mosaic[-1, -1]).any()  # the weakest and strongest channel differ in colour


@pytest.mark.slow
def test_finetune_then_export_records_the_tuned_layers(tmp_path, deepsort_weights) -> None:
    class_folders(tmp_path / "data", per_class=8)
    common = ("--weights", deepsort_weights, "--input-size", 64)
    assert edgeft("export", "MobileNetV2", *common, "--name", "base", cwd=tmp_path).returncode == 0
    assert edgeft("extract", "data", "--model", "models/base", "--out", "feat", cwd=tmp_path).returncode == 0
    assert edgeft("train-head", "feat", "--out", "head", "--epochs", 10, cwd=tmp_path).returncode == 0
    nothing = edgeft("finetune", "MobileNetV2", "data", "--head", "head/head.keras", *common, cwd=tmp_path)
    assert nothing.returncode == 1 and "--unfreeze N" in nothing.stderr
    unknown = edgeft("finetune", "MobileNetV2", "data", "--head", "head/head.keras", *common, "--from-layer", "mixed9", cwd=tmp_path)
    assert unknown.returncode == 1 and "no layer 'mixed9'" in unknown.stderr
    proc = edgeft("finetune", "MobileNetV2", "data", "--head", "head/head.keras", *common, "--from-layer", "block_16_project",
                  "--epochs", 1, "--out", "ft", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert record["tuned_layers"] == ["block_16_project", "Conv_1"]
    assert record["base"]["weights"] == str(deepsort_weights)
    proc = edgeft("export", "ft/backbone.keras", "--preprocess", "tf", "--head", "ft/head.keras", "--labels", "ft/labels.txt",
                  "--name", "tuned", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "models" / "tuned" / "manifest.json").read_text())
    assert manifest["extra"]["finetune"]["tuned_layers"] == ["block_16_project", "Conv_1"]
    assert manifest["task"] == "classification" and manifest["labels"] == ["blue", "green", "red"]
    # the fine-tuned head belongs to the fine-tuned backbone, not to the original one
    proc = edgeft("export", "MobileNetV2", *common, "--head", "ft/head.keras", "--name", "mixed", cwd=tmp_path)
    assert proc.returncode == 1 and "another backbone" in proc.stderr


def test_presplit_class_folders_keep_their_split(tmp_path) -> None:
    for split, count in (("train", 3), ("validation", 1), ("test", 2)):  # one image per class is enough: no split needed
        class_folders(tmp_path / "data" / split, per_class=count)
    plan = plan_class_folders(tmp_path / "data", 0.5, 0.5, 0, ())
    assert plan.classes == ("blue", "green", "red")
    assert {s: sum(i.split == s for i in plan.items) for s in ("train", "val", "test")} == {"train": 9, "val": 3, "test": 6}
    assert all(f"/{'validation' if i.split == 'val' else i.split}/" in i.path for i in plan.items)


@pytest.mark.slow
def test_users_own_model_through_extract_train_finetune_export(tmp_path) -> None:
    """The whole workflow with the user's own small CNN (a .keras file) as the backbone."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 20, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x)).save(tmp_path / "mine.keras")
    class_folders(tmp_path / "data", per_class=10)
    own = ("mine.keras", "--preprocess", "unit", "--cut", "gap")
    assert edgeft("export", *own, "--name", "own", cwd=tmp_path).returncode == 0
    assert edgeft("extract", "data", "--model", "models/own", "--out", "feat", cwd=tmp_path).returncode == 0
    assert edgeft("train-head", "feat", "--out", "head", "--epochs", 30, "--learning-rate", 0.01, cwd=tmp_path).returncode == 0
    proc = edgeft("finetune", *own, "data", "--head", "head/head.keras", "--unfreeze", 1, "--epochs", 2, "--out", "ft", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "ft" / "finetune.json").read_text())["tuned_layers"] == ["conv"]
    proc = edgeft("export", "ft/backbone.keras", "--preprocess", "unit", "--head", "ft/head.keras", "--name", "own-tuned", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Engine.load(tmp_path / "models" / "own-tuned").manifest.extra["finetune"]["base"]["backbone"] == "mine.keras"
