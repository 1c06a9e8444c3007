"""`edgeft run` end to end in a real process: real footage through a real exported bundle."""

from __future__ import annotations

import csv
import re
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import with_graph_of_another_manifest, write_tiny_bundle  # noqa: E402



def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return list(csv.DictReader(open(path)))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_real_video_through_a_real_bundle(steering_bundle, carphone, tmp_path) -> None:
    summary = ok(edgeft("run", "--model", steering_bundle, "--source", carphone, "--output", tmp_path / "p.csv", "--quiet"))
    table = rows(tmp_path / "p.csv")
    assert [int(r["frame"]) for r in table] == list(range(120))  # every frame, in order: files never drop
    assert all(-1 <= float(r["prediction"]) <= 1 for r in table)
    assert "frames" in summary and "120" in summary and re.search(r"provider +│ (CPUExecutionProvider fp32|OpenVINO CPU bf16)", summary)


@pytest.mark.slow
def test_street_video_with_stride_batch_and_limit(steering_bundle, vtest, tmp_path) -> None:
    ok(edgeft("run", "--model", steering_bundle, "--source", vtest, "--stride", 3, "--batch", 4,
              "--max-frames", 10, "--output", tmp_path / "p.jsonl", "--quiet"))
    assert [r["frame"] for r in rows(tmp_path / "p.jsonl")] == list(range(0, 30, 3))


@pytest.mark.slow
def test_image_folder_and_glob_of_real_frames(steering_bundle, carphone, tmp_path) -> None:
    capture, folder = cv2.VideoCapture(str(carphone)), tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"frame_{i}.jpg"), capture.read()[1])
    ok(edgeft("run", "--model", steering_bundle, "--source", folder, "--output", tmp_path / "a.jsonl",
              "--features", tmp_path / "feat", "--quiet"))
    ok(edgeft("run", "--model", steering_bundle, "--source", f"{folder}/frame_1*.jpg", "--output", tmp_path / "b.jsonl", "--quiet"))
    assert len(rows(tmp_path / "a.jsonl")) == 12 and len(rows(tmp_path / "b.jsonl")) == 3  # frame_1, frame_10, frame_11
    features = np.load(tmp_path / "feat" / "shard-00000.npy")
    from edgeft.runtime import Engine

    direct = Engine.load(steering_bundle).predict(cv2.imread(str(folder / "frame_2.jpg")))["features"]
    np.testing.assert_allclose(features[2], direct, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_driving_log_rig_scores_steering_and_saves_video(steering_bundle, tmp_path) -> None:
    ok(edgeft("sample", tmp_path / "drive", "--frames", 20))
    summary = ok(edgeft("run", "--model", steering_bundle, "--source", tmp_path / "drive" / "driving_log.csv",
                        "--output", tmp_path / "p.jsonl", "--save-video", tmp_path / "v.mp4", "--quiet"))
    table = rows(tmp_path / "p.jsonl")
    assert [r["source"] for r in table[:3]] == ["center", "left", "right"] and len(table) == 60
    assert all(("truth" in r) == (r["source"] == "center") for r in table)
    mae = np.mean([abs(r["prediction"] - r["truth"]) for r in table if r["source"] == "center"])
    assert f"MAE {mae:.4f}" in " ".join(summary.split())
    assert int(cv2.VideoCapture(str(tmp_path / "v.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 20


@pytest.mark.slow
def test_named_multi_source_rig(steering_bundle, carphone, vtest, tmp_path) -> None:
    ok(edgeft("run", "--model", steering_bundle, "--source", f"center={carphone}", "--source", f"left={vtest}",
              "--max-frames", 5, "--output", tmp_path / "p.jsonl", "--quiet"))
    assert [r["source"] for r in rows(tmp_path / "p.jsonl")] == ["center", "left"] * 5


def test_default_bundle_is_the_only_one_under_models(tmp_path) -> None:
    write_tiny_bundle(tmp_path / "models" / "tiny")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 12, 3), np.uint8))
    assert "tiny" in ok(edgeft("run", "--source", "a.png", "--quiet", cwd=tmp_path))
    write_tiny_bundle(tmp_path / "models" / "other")
    proc = edgeft("run", "--source", "a.png", cwd=tmp_path)
    assert proc.returncode == 1 and "several bundles under 'models/' (other, tiny)" in proc.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [("camera9", "camera 'camera9' cannot be opened"), ("missing.mp4", "does not exist"), ("http://127.0.0.1:9/none", "cannot be opened")],
)
def test_sources_that_cannot_open_fail_cleanly(tmp_path, source, message) -> None:
    proc = edgeft("run", "--model", write_tiny_bundle(tmp_path / "tiny"), "--source", source)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_bundle_whose_input_the_frames_cannot_meet(tmp_path) -> None:
    from edgeft.runtime.manifest import InputSpec

    bundle = write_tiny_bundle(tmp_path / "tiny")
    with_graph_of_another_manifest(bundle, input=InputSpec("image", 9, 12))  # the graph takes 8 x 12
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 12, 3), np.uint8))
    proc = edgeft("run", "--model", bundle, "--source", tmp_path / "a.png")
    assert proc.returncode == 1 and "the model takes tensor(uint8) Nx8x12x3" in proc.stderr


def test_run_never_imports_tensorflow(tmp_path) -> None:
    bundle = write_tiny_bundle(tmp_path / "tiny")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 12, 3), np.uint8))
    code = (
        "import sys\nfrom edgeft.cli import app\n"
        f"sys.argv = ['edgeft', 'run', '--model', {str(bundle)!r}, '--source', {str(tmp_path / 'a.png')!r}, '--quiet']\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')]\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
