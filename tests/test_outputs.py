"""Outputs never lose data: every sink is checked before any opens, nothing is replaced without
--force, lines are whole even when the disk fills, and bad paths are one-line errors."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine, SinkError, SinkOptions, open_sinks
from edgeft.runtime.sinks import FeatureSink

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

PRECIOUS = '{"kept": true}\n'


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("outputs") / "tiny")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((24, 32, 3), i * 30, np.uint8))
    return folder


def run(bundle: Path, images: Path, *args: object, **kwargs) -> subprocess.CompletedProcess:
    return edgeft("run", "--model", bundle, "--source", images, "--quiet", *args, **kwargs)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in " ".join(proc.stderr.split()), proc.stderr


def test_existing_output_is_never_replaced_without_force(bundle, images, tmp_path) -> None:
    precious = tmp_path / "precious.jsonl"
    precious.write_text(PRECIOUS)
    one_line_error(run(bundle, images, "--output", precious), "already exists: pass --force")
    assert precious.read_text() == PRECIOUS
    assert run(bundle, images, "--output", precious, "--force").returncode == 0
    assert len(precious.read_text().splitlines()) == 6


def test_a_bad_later_output_costs_the_earlier_ones_nothing(bundle, images, tmp_path) -> None:
    precious = tmp_path / "precious.jsonl"
    precious.write_text(PRECIOUS)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("mine")
    one_line_error(run(bundle, images, "--output", precious, "--force", "--features", busy), "is not empty")
    assert precious.read_text() == PRECIOUS
    fresh = tmp_path / "fresh.csv"
    one_line_error(run(bundle, images, "--output", fresh, "--save-video", tmp_path / "clip.txt"), "must end in .mp4")
    assert not fresh.exists()
    assert (busy / "thesis.txt").read_text() == "mine"


def test_force_replaces_only_a_features_folder(bundle, images, tmp_path) -> None:
    feat = tmp_path / "feat"
    assert run(bundle, images, "--features", feat).returncode == 0
    one_line_error(run(bundle, images, "--features", feat), "already holds features")
    (feat / "notes.md").write_text("mine")
    one_line_error(run(bundle, images, "--features", feat, "--force"), "also holds notes.md")
    (feat / "notes.md").unlink()
    assert run(bundle, images, "--features", feat, "--force").returncode == 0
    assert len(list(csv.DictReader(open(feat / "index.csv")))) == 6


@pytest.mark.parametrize("case", ["parent is a file", "path is a folder"])
@pytest.mark.parametrize("option", ["--output", "--features", "--save-video", "extract --out"])
def test_unwritable_outputs_are_one_line_errors(bundle, images, tmp_path, case, option) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    name = {"--output": "p.jsonl", "--save-video": "v.mp4"}.get(option, "feat")
    target = blocker / name if case == "parent is a file" else tmp_path / "folder" / name
    if case == "path is a folder":
        target.mkdir(parents=True)
        (target / "x").write_text("x")
    if option == "extract --out":
        proc = edgeft("extract", "--model", bundle, "--source", images, "--out", target)
    else:
        proc = run(bundle, images, option, target)
    one_line_error(proc, str(target) if case == "path is a folder" else "is a file")


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A real small or read-only filesystem (needs root, as CI has); skips where mounting is refused."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_mount_is_a_one_line_error(bundle, images, tmp_path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mount:
        one_line_error(run(bundle, images, "--output", mount / "p.jsonl"), "cannot write in", "Read-only file system")
        one_line_error(edgeft("extract", "--model", bundle, "--source", images, "--out", mount / "feat"), "Read-only file system")


def test_a_full_disk_ends_the_run_with_whole_lines_and_the_summary(bundle, images, tmp_path) -> None:
    with tmpfs(tmp_path / "small", "size=64k") as mount:
        out = mount / "p.jsonl"
        proc = run(bundle, images, "--loop", "--output", out, "--max-frames", 100000)
        one_line_error(proc, "No space left on device", "complete lines written before")
        assert "throughput" in proc.stdout  # the summary was printed
        lines = out.read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) > 100
        assert all(json.loads(line)["valid"] for line in lines[:-1])


def test_a_file_size_limit_cuts_back_to_the_last_whole_line(bundle, images, tmp_path) -> None:
    """The same fault without root: RLIMIT_FSIZE makes the write that crosses it short, then EFBIG."""
    out = tmp_path / "p.csv"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(images), "--loop",
                           "--output", str(out), "--max-frames", "100000", "--quiet"],
                          capture_output=True, text=True, preexec_fn=limit, timeout=120)
    one_line_error(proc, "File too large")
    data = out.read_bytes()
    assert data.endswith(b"\n") and len(data) <= 20_000
    rows = list(csv.DictReader(data.decode().splitlines()))
    assert len(rows) > 50 and all(r["label"] in ("red", "blue") and r["valid"] == "True" for r in rows)


def test_sinks_are_checked_before_any_opens(tmp_path) -> None:
    manifest = Engine.load(write_tiny_bundle(tmp_path / "tiny")).manifest
    with pytest.raises(SinkError, match="must end in .jsonl or .csv"):
        open_sinks([f"features:{tmp_path / 'feat'}", f"predictions:{tmp_path / 'p.txt'}"], manifest)
    assert not (tmp_path / "feat").exists()
    with pytest.raises(SinkError, match="two outputs name the same path"):
        open_sinks([str(tmp_path / "p.jsonl"), f"predictions:{tmp_path / 'p.jsonl'}"], manifest)


def test_feature_folder_has_its_header_and_one_file_mode_before_the_first_shard(tmp_path) -> None:
    manifest = Engine.load(write_tiny_bundle(tmp_path / "tiny")).manifest
    sink = FeatureSink(tmp_path / "feat", manifest, SinkOptions(rows_per_shard=2))
    header = (tmp_path / "feat" / "index.csv").read_text()
    assert header.startswith("frame,source,t_capture,stamp,shard,row")  # a kill here leaves a readable index
    sink.writer.write_shard(0, np.zeros((2, 3), np.float32), [[0, "a", "0", ""], [1, "a", "0", ""]])
    sink.close()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "feat").iterdir()}
    assert len(set(modes.values())) == 1, modes  # shards are not 0600 beside a 0644 index


def test_prediction_lines_are_strict_json_when_values_are_not_finite(tmp_path) -> None:
    from edgeft.runtime import Result

    manifest = Engine.load(write_tiny_bundle(tmp_path / "tiny")).manifest
    [sink] = open_sinks([str(tmp_path / "p.jsonl")], manifest)
    outputs = {"features": np.array([np.nan, 1, 2], np.float32), "prediction": np.array([np.inf, np.nan], np.float32)}
    sink.write(Result("cam", 0, 0.0, 1.0, outputs, truth=float("nan")))
    sink.close()
    line = (tmp_path / "p.jsonl").read_text()
    row = json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert row["prediction"] == [None, None] and row["truth"] is None


def test_path_with_brackets_is_quoted_as_written(bundle, tmp_path) -> None:
    folder = tmp_path / "runs [test]"
    folder.mkdir()
    proc = edgeft("run", "--model", bundle, "--source", folder / "missing.mp4")
    one_line_error(proc, "runs [test]")
    shutil.rmtree(folder)


def test_a_long_features_run_keeps_no_per_frame_record(tmp_path) -> None:
    """Rows written are counted per shard, not remembered: memory stays flat over a day's run."""
    from edgeft.runtime import Result

    manifest = Engine.load(write_tiny_bundle(tmp_path / "tiny")).manifest
    sink = FeatureSink(tmp_path / "feat", manifest, SinkOptions(rows_per_shard=100))
    for i in range(2000):
        sink.write(Result("cam", i, 0.0, 1.0, {"features": np.zeros(3, np.float32)}))
    sink.close()
    assert sum(sink.writer.counts.values()) == 2000 and not sink.writer.indexed
    assert len(list(csv.DictReader(open(tmp_path / "feat" / "index.csv")))) == 2000
