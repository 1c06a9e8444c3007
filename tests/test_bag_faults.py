"""Bags that mislead: truth that starts before the first frame, NaN steering, chunks zeroed in a
way no checksum catches, a window past the end, a default truth topic of another type, a bag
folder that lost its metadata. Each is either handled and said, or one error line."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from bagfiles import CAMERAS, footage, write_rig_bag  # noqa: E402
from tiny_bundle import write_tiny_bundle  # noqa: E402

WIDE = dict(os.environ, COLUMNS="250")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bagfaults") / "tiny")


@pytest.fixture(scope="module")
def frames(carphone) -> list[np.ndarray]:
    return footage(carphone, 60)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_truth_before_the_first_frame_does_not_widen_camera_sync(bundle, frames, tmp_path) -> None:
    """30 Hz, drops in two cameras, steering starting 0.2 s before any frame: the tolerance is
    half the frame period measured on frames, so a dropped frame is never replaced by its
    neighbour 33 ms away."""
    dropped = {"left": set(range(3, 60, 7)), "right": set(range(5, 60, 11))}
    bag = write_rig_bag(tmp_path / "drive.bag", frames, period=1 / 30, jitter=0.002, dropped=dropped, truth_margin=(-0.2, 0.1))
    out = tmp_path / "p.jsonl"
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--output", out, "--quiet", env=WIDE)
    assert proc.returncode == 0, proc.stderr
    summary = " ".join(proc.stdout.split())
    tolerance = float(re.search(r"paired within ±([\d.]+) ms", summary).group(1))
    assert 15.0 < tolerance < 18.0  # about half of 33.3 ms, measured on frames: not the 50 ms fallback
    by_tick: dict[int, list[dict]] = {}
    for r in rows(out):
        by_tick.setdefault(r["frame"], []).append(r)
    far = 0
    for group in by_tick.values():
        written = [int(np.nanargmin(np.abs(np.array(bag.stamps[r["source"]]) - r["stamp"]))) for r in group]
        far += len(set(written)) > 1
    assert far == 0
    missing = {(t, c) for t in range(60) for c in CAMERAS} - {(r["frame"], r["source"]) for r in rows(out)}
    assert missing == {(i, c) for c, ticks in dropped.items() for i in ticks}


def test_nan_steering_is_left_out_of_truth_and_labels_and_said(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames[:30], truth_nan=frozenset(range(4, 40, 3)))
    out = tmp_path / "p.jsonl"
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--output", out, "--quiet", env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "12 truth samples on /vehicle/steering_report were not finite (NaN or infinite) and were left out" in \
        " ".join(proc.stdout.split())
    truths = [r["truth"] for r in rows(out) if "truth" in r]
    assert len(truths) > 20 and all(t is not None and np.isfinite(t) for t in truths)
    feats = tmp_path / "feat"
    proc = edgeft("extract", bag.path, "--model", bundle, "--out", feats)
    assert proc.returncode == 0, proc.stderr
    assert "12 truth samples" in proc.stderr  # said where the labels are made
    labels = [float(line.split(",")[1]) for line in (feats / "index.csv").read_text().splitlines()[1:]]
    assert len(labels) > 20 and np.isfinite(labels).all()


def test_train_head_refuses_labels_that_are_not_finite(bundle, frames, tmp_path) -> None:
    pytest.importorskip("keras", reason="train-head needs the export extra (TensorFlow)")
    bag = write_rig_bag(tmp_path / "drive.bag", frames[:30])
    feats = tmp_path / "feat"
    assert edgeft("extract", bag.path, "--model", bundle, "--out", feats).returncode == 0
    index = feats / "index.csv"
    lines = index.read_text().splitlines()
    cells = lines[3].split(",")
    cells[1] = "nan"
    index.write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]) + "\n")
    one_line_error(edgeft("train-head", feats, "--out", tmp_path / "head"), "steering labels are not finite numbers")
    assert not (tmp_path / "head").exists()  # no metrics.json full of NaN


def zero_chunk_records(mcap_file: Path) -> None:
    """Replace every chunk's records with one record of an unknown opcode, all zeros: the file
    parses, its summary still announces every message, and no checksum catches it (rosbags
    writes a chunk CRC of 0)."""
    from mcap.reader import make_reader

    data = bytearray(mcap_file.read_bytes())
    with open(mcap_file, "rb") as fh:
        chunks = make_reader(fh).get_summary().chunk_indexes
    for chunk in chunks:
        at = chunk.chunk_start_offset + 9 + 8 + 8 + 8 + 4  # opcode, length, start, end, size, crc
        (name_length,) = struct.unpack_from("<I", data, at)
        at += 4 + name_length
        (length,) = struct.unpack_from("<Q", data, at)
        at += 8
        data[at:at + length] = b"\x00" + struct.pack("<Q", length - 9) + bytes(length - 9)
    mcap_file.write_bytes(bytes(data))


def test_zeroed_chunks_are_damage_not_an_empty_run(bundle, frames, tmp_path) -> None:
    pytest.importorskip("mcap.reader", reason="the test extra (mcap) is not installed")
    bag = write_rig_bag(tmp_path / "drive.mcap", frames[:20])
    zero_chunk_records(Path(bag.path))
    one_line_error(edgeft("run", "--model", bundle, "--source", bag.path, "--quiet"), "is damaged", "none could be read")
    one_line_error(edgeft("extract", bag.path, "--model", bundle, "--out", tmp_path / "feat"), "is damaged")
    listed = " ".join(edgeft("topics", bag.path, env=WIDE).stdout.split())
    assert "20 (0 readable: damaged)" in listed


def test_a_start_past_the_end_and_an_empty_window_are_errors(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames[:20])  # 1 s long
    one_line_error(edgeft("run", "--model", bundle, "--source", bag.path, "--start", 30), "--start 30 s is past the end", "1.0 s long")
    one_line_error(edgeft("run", "--model", bundle, "--source", bag.path, "--start", 0.92, "--end", 0.93, "--quiet"),
                   "no frame came from", "in the --start/--end window")


def test_a_default_truth_topic_of_another_type_is_a_warning(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames[:20], truth_type="other_msgs/msg/Steer")
    out = tmp_path / "p.jsonl"
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--output", out, "--quiet")
    assert proc.returncode == 0 and "no ground truth: truth field 'steering_wheel_angle' not found" in proc.stderr, proc.stderr
    assert len(rows(out)) == 60 and not any("truth" in r for r in rows(out))
    one_line_error(edgeft("run", "--model", bundle, "--source", bag.path, "--truth-topic", "/vehicle/steering_report",
                          "--truth-field", "steering_wheel_angle", "--quiet"), "'steering_wheel_angle' not found")
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--truth-field", "angle", "--output", tmp_path / "q.jsonl",
                  "--quiet")
    assert proc.returncode == 0 and any("truth" in r for r in rows(tmp_path / "q.jsonl")), proc.stderr


def test_a_bag_folder_without_metadata_is_named_for_what_it_is(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive_db3", frames[:10])
    (Path(bag.path) / "metadata.yaml").unlink()
    storage = next(Path(bag.path).glob("*.db3"))
    for proc in (edgeft("run", "--model", bundle, "--source", bag.path, "--quiet"),
                 edgeft("extract", bag.path, "--model", bundle, "--out", tmp_path / "feat")):
        one_line_error(proc, "looks like a ROS 2 bag folder without its metadata.yaml", str(storage))
    shutil.rmtree(tmp_path / "feat", ignore_errors=True)


def test_a_bag_whose_truth_misses_every_frame_says_so(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames[:20], truth_margin=(1.5, -2.0))  # steering only after the last frame
    one_line_error(edgeft("extract", bag.path, "--model", bundle, "--out", tmp_path / "feat"),
                   "has no frame with ground truth to label it")
