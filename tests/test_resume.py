"""Resuming feature extraction after a crash: gaps are found and redone, `--source` runs resume
too, and old feature folders of either kind still load."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeft.runtime import Engine, read_features
from edgeft.transfer import ExtractConfig, extract, load_features, plan_class_folders

from helpers import edgeft
from test_transfer import class_folders

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_tiny_bundle(tmp_path / "tiny")


def shards(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p) for p in sorted(folder.glob("shard-*.npy"))}


def test_a_deleted_middle_shard_is_found_and_redone(bundle, tmp_path) -> None:
    engine = Engine.load(bundle)
    plan = plan_class_folders(class_folders(tmp_path / "data"), 0.2, 0.2, 0, ())
    config = ExtractConfig(rows_per_shard=8, batch=3)
    extract(engine, plan, tmp_path / "whole", {"seed": 0}, config)
    shutil.copytree(tmp_path / "whole", tmp_path / "gap")
    (tmp_path / "gap" / "shard-00002.npy").unlink()
    with pytest.raises(Exception, match="shard-00002.npy, which is missing"):
        load_features(tmp_path / "gap")
    redone = []
    extract(engine, plan, tmp_path / "gap", {"seed": 0}, ExtractConfig(8, 3, resume=True), progress=lambda d, t: redone.append(d))
    assert shards(tmp_path / "gap").keys() == shards(tmp_path / "whole").keys()
    for name, rows in shards(tmp_path / "whole").items():
        np.testing.assert_array_equal(shards(tmp_path / "gap")[name], rows)
    index = list(csv.DictReader(open(tmp_path / "gap" / "index.csv")))
    assert len(index) == len(plan.items) == len({(r["shard"], r["row"]) for r in index})  # nothing indexed twice


def test_extract_from_a_source_resumes(bundle, tmp_path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    rng = np.random.default_rng(0)
    for i in range(40):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
    for folder in ("whole", "cut"):
        proc = edgeft("extract", "--model", bundle, "--source", images, "--out", tmp_path / folder, "--rows-per-shard", 8)
        assert proc.returncode == 0, proc.stderr
    cut = tmp_path / "cut"  # as a kill after three shards leaves it: shards 3 and 4 and their index lines gone
    for name in ("shard-00003.npy", "shard-00004.npy"):
        (cut / name).unlink()
    lines = (cut / "index.csv").read_text().splitlines(keepends=True)
    (cut / "index.csv").write_text("".join(lines[: 1 + 24]))
    proc = edgeft("extract", "--model", bundle, "--source", images, "--out", cut, "--rows-per-shard", 8)
    assert proc.returncode == 1 and "pass --resume" in proc.stderr
    proc = edgeft("extract", "--model", bundle, "--source", images, "--out", cut, "--rows-per-shard", 8, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"frames\s+│ 16\s", proc.stdout), proc.stdout  # only the missing ones ran
    meta, keys, rows = read_features(cut)
    _, whole_keys, whole_rows = read_features(tmp_path / "whole")
    by_frame = {int(k["frame"]): r for k, r in zip(keys, rows)}
    assert sorted(by_frame) == list(range(40)) and len(keys) == 40
    for key, row in zip(whole_keys, whole_rows):
        np.testing.assert_array_equal(by_frame[int(key["frame"])], row)


def test_resume_of_a_live_source_is_refused(bundle, tmp_path) -> None:
    proc = edgeft("extract", "--model", bundle, "--source", "camera7", "--out", tmp_path / "feat", "--resume")
    assert proc.returncode == 1 and "--resume needs a recorded source" in proc.stderr


def test_folders_written_before_the_formats_were_one_still_load(bundle, tmp_path) -> None:
    """extract used to write items.csv (no shard/row columns); run --features an index without stamps."""
    old = tmp_path / "old-extract"
    old.mkdir()
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(old / "shard-00000.npy", x[:3])
    np.save(old / "shard-00001.npy", x[3:])
    meta = {"bundle": "tiny", "model_sha256": "0" * 64, "output": "features", "shape": [3], "dtype": "float32",
            "task": "classification", "classes": ["a", "b"], "rows_per_shard": 3, "rows": 4}
    (old / "features.json").write_text(json.dumps(meta))
    (old / "items.csv").write_text("path,label,split,camera,flip,brightness\n" +
                                   "".join(f"{i}.png,{'ab'[i % 2]},train,,False,1.0\n" for i in range(4)))
    loaded = load_features(old)
    np.testing.assert_array_equal(loaded.x, x)
    assert loaded.labels == ["a", "b", "a", "b"]
    run = tmp_path / "old-run"
    run.mkdir()
    np.save(run / "shard-00000.npy", x[:2])
    (run / "features.json").write_text(json.dumps({k: meta[k] for k in ("bundle", "model_sha256", "output", "shape", "dtype")}))
    (run / "index.csv").write_text("frame,source,t_capture,shard,row\n0,cam,1.0,shard-00000.npy,0\n1,cam,2.0,shard-00000.npy,1\n")
    _, keys, rows = read_features(run)
    assert [k["frame"] for k in keys] == ["0", "1"] and rows.shape == (2, 3)


def test_resume_refuses_to_mix_backends_or_precisions(tmp_path) -> None:
    """A folder started on one backend is never continued on another: pass the same --device and
    --precision, or start over."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    bundle = write_tiny_bundle(tmp_path / "tiny", proof=True)
    data = class_folders(tmp_path / "data", per_class=8)
    args = ["extract", data, "--model", bundle, "--out", tmp_path / "feat", "--rows-per-shard", 4]
    assert edgeft(*args, "--device", "cpu").returncode == 0
    (tmp_path / "feat" / "shard-00001.npy").unlink()
    proc = edgeft(*args, "--device", "openvino", "--precision", "fp32", "--resume")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "computed with CPUExecutionProvider fp32 and this run would use OpenVINO CPU fp32" in proc.stderr, proc.stderr
    assert "--device cpu --precision fp32" in proc.stderr
    assert edgeft(*args, "--device", "cpu", "--resume").returncode == 0
