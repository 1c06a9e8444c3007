"""ROS bags as sources: Udacity's layout with no options, named topics, camera sync by stamp,
truth interpolated from another topic, every format rosbags writes, and damaged bags."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from bagfiles import CAMERAS, steering_at, write_rig_bag, footage  # noqa: E402
from tiny_bundle import write_tiny_bundle  # noqa: E402

WIDE = dict(os.environ, COLUMNS="250")
TICKS = 40
DROPPED = {"left": {5}, "right": {9, 30}}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bags") / "tiny")


@pytest.fixture(scope="module")
def frames(carphone) -> list[np.ndarray]:
    return footage(carphone, TICKS)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["drive.bag", "drive_db3", "drive.mcap"])
def test_udacity_bag_runs_with_no_options(bundle, frames, tmp_path, name) -> None:
    bag = write_rig_bag(tmp_path / name, frames, dropped=DROPPED)
    out = tmp_path / "p.jsonl"
    summary = " ".join(ok(edgeft("run", "--model", bundle, "--source", bag.path, "--output", out, "--quiet", env=WIDE)).split())
    table = rows(out)
    assert {r["source"] for r in table} == set(CAMERAS)
    by_tick: dict[int, list[dict]] = {}
    for r in table:
        by_tick.setdefault(r["frame"], []).append(r)
    assert len(by_tick) == TICKS  # every tick ran, the incomplete ones on the cameras present
    for tick, group in by_tick.items():
        written = {r["source"]: bag.stamps[r["source"]] for r in group}
        matched = {int(np.nanargmin(np.abs(np.array(written[r["source"]]) - r["stamp"]))) for r in group}
        assert len(matched) == 1, group  # one moment's frames, never a neighbour's
        assert abs(max(r["stamp"] for r in group) - min(r["stamp"] for r in group)) <= 0.025
    missing = {(r["frame"], c) for r in table for c in CAMERAS} - {(r["frame"], r["source"]) for r in table}
    assert missing == {(5, "left"), (9, "right"), (30, "right")}
    assert "3 incomplete ticks (run on the cameras present)" in summary and "skew p50" in summary
    start, end = bag.truth_range
    for r in table:
        if r["source"] != "center":
            assert "truth" not in r
        elif start <= r["stamp"] <= end:
            assert r["truth"] == pytest.approx(steering_at(r["stamp"]), abs=1e-6)
        else:
            assert "truth" not in r  # outside the steering topic's time range: no truth


@pytest.mark.slow
def test_steering_head_is_scored_against_the_bag(steering_bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.mcap", frames)
    out = tmp_path / "p.jsonl"
    summary = " ".join(ok(edgeft("run", "--model", steering_bundle, "--source", bag.path, "--output", out, "--quiet",
                                 env=WIDE)).split())
    scored = [r for r in rows(out) if "truth" in r]
    mae = np.mean([abs(r["prediction"] - r["truth"]) for r in scored])
    assert f"MAE {mae:.4f}" in summary and f"on {len(scored)} frames with ground truth" in summary


def test_incomplete_ticks_can_be_skipped_and_raw_images_decode(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "raw.bag", frames, dropped=DROPPED, raw=True)
    out = tmp_path / "p.jsonl"
    summary = " ".join(ok(edgeft("run", "--model", bundle, "--source", bag.path, "--incomplete", "skip",
                                 "--output", out, "--quiet", env=WIDE)).split())
    ticks = {r["frame"] for r in rows(out)}
    assert len(ticks) == TICKS - 3 and len(rows(out)) == 3 * (TICKS - 3)
    assert "3 incomplete ticks (skipped)" in summary


def test_named_topics_window_and_tolerance(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames)
    out = tmp_path / "p.jsonl"
    ok(edgeft("run", "--model", bundle, "--source", f"front={bag.path}#/center_camera/image_color/compressed",
              "--source", f"side={bag.path}#/left_camera/image_color/compressed", "--start", 0.5, "--end", 1.5,
              "--sync-tolerance", 0.02, "--output", out, "--quiet"))
    table = rows(out)
    assert {r["source"] for r in table} == {"front", "side"}
    stamps = [r["stamp"] for r in table]
    from bagfiles import T0

    assert min(stamps) >= T0 + 0.5 - 0.01 and max(stamps) <= T0 + 1.5 + 0.01
    assert 15 <= len({r["frame"] for r in table}) <= 21


def test_several_image_topics_without_names_are_listed(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames[:5])
    renamed = tmp_path / "other.bag"
    from rosbags.rosbag1 import Reader, Writer

    with Reader(bag.path) as reader, Writer(renamed) as writer:
        connections = {}
        for connection, t, raw in reader.messages():
            topic = connection.topic.replace("_camera/image_color/compressed", "/image")
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, connection.msgtype, msgdef=connection.msgdef.data,
                                                           md5sum=connection.digest)
            writer.write(connections[topic], t, raw)
    proc = edgeft("run", "--model", bundle, "--source", renamed)
    assert proc.returncode == 1 and "has 3 image topics (/center/image, /left/image, /right/image): name the cameras" in proc.stderr


def test_topics_lists_types_counts_and_rates(frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames, dropped=DROPPED)
    out = " ".join(ok(edgeft("topics", bag.path, env=WIDE)).split())
    assert re.search(r"/center_camera/image_color/compressed │ sensor_msgs/msg/CompressedImage │ 40 │ 20\.0 Hz", out), out
    assert re.search(r"/left_camera/image_color/compressed │ sensor_msgs/msg/CompressedImage │ 39 │ 19\.5 Hz", out), out  # a drop
    assert re.search(r"/vehicle/steering_report │ dbw_mkz_msgs/msg/SteeringReport │ \d+ │ 37\.0 Hz", out), out


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "empty"])
def test_damaged_bags_are_one_line_errors(bundle, frames, tmp_path, damage) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames)
    data = bag.path.read_bytes()
    if damage == "truncated":
        bag.path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "corrupted":
        middle = len(data) // 2
        bag.path.write_bytes(data[:middle] + bytes(range(256)) * 4 + data[middle + 1024 :])
    else:
        bag.path.write_bytes(b"")
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--quiet")
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr
    if proc.returncode == 1:
        assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1
    else:
        assert damage == "corrupted"  # bytes flipped inside image payloads decode as a damaged picture


def test_truth_topic_and_field_are_named_explicitly(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive_db3", frames)
    out = tmp_path / "p.jsonl"
    ok(edgeft("run", "--model", bundle, "--source", f"center={bag.path}#/center_camera/image_color/compressed",
              "--truth-topic", "/vehicle/steering_report", "--truth-field", "speed", "--output", out, "--quiet"))
    start, end = bag.truth_range
    assert {r.get("truth") for r in rows(out) if start <= r["stamp"] <= end} == {10.0}
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--truth-topic", "/vehicle/steering_report",
                  "--truth-field", "nonexistent")
    assert proc.returncode == 1 and "truth field 'nonexistent' not found" in proc.stderr


def test_extract_from_a_bag_equals_extract_from_the_same_frames_as_a_driving_log(bundle, frames, tmp_path) -> None:
    bag = write_rig_bag(tmp_path / "drive.bag", frames)
    out = tmp_path / "p.jsonl"
    ok(edgeft("run", "--model", bundle, "--source", bag.path, "--output", out, "--quiet"))
    truth = {r["frame"]: r["truth"] for r in rows(out) if r["source"] == "center" and "truth" in r}
    log = tmp_path / "log"
    (log / "IMG").mkdir(parents=True)
    lines = []
    for tick in sorted(truth):
        names = []
        for camera in ("center", "left", "right"):
            name = f"IMG/{camera}_{tick}.jpg"
            (log / name).write_bytes(bag.jpegs[camera][tick])
            names.append(name)
        lines.append(",".join(names) + f",{truth[tick]!r},0,0,10")
    (log / "driving_log.csv").write_text("\n".join(lines) + "\n")
    for source, folder in ((bag.path, "from-bag"), (log / "driving_log.csv", "from-log")):
        ok(edgeft("extract", source, "--model", bundle, "--out", tmp_path / folder, "--augment", "flip", "--rows-per-shard", 16))
    from edgeft.transfer import load_features

    a, b = load_features(tmp_path / "from-bag"), load_features(tmp_path / "from-log")
    assert len(a.labels) > 3 * len(truth)  # three views of every labelled tick, plus flipped training copies
    assert a.labels == b.labels and list(a.splits) == list(b.splits)
    np.testing.assert_array_equal(a.x, b.x)


def test_replay_at_recorded_speed_is_a_live_source(bundle, frames, tmp_path) -> None:
    """--rate 1.0 on a bag: ticks are released at their recorded times and a model slower than
    the recording drops ticks (the newest wins) instead of falling behind."""
    import time

    from edgeft.runtime import Engine, Pipeline, SourceOptions, open_source

    bag = write_rig_bag(tmp_path / "drive.bag", frames)  # 20 Hz for 2 s
    engine = Engine.load(bundle)
    run = engine.run

    def slow(batch):
        time.sleep(0.2)  # a 5 Hz model
        return run(batch)

    engine.run = slow
    with open_source(str(bag.path), SourceOptions(rate=1.0)) as source:
        pipeline = Pipeline(source, engine)
        results = list(pipeline)
    ticks = sorted({r.frame for r in results})
    assert pipeline.stats.drops > 0 and len(ticks) < TICKS
    assert ticks[-1] >= TICKS - 3  # it kept up with the recording rather than lagging behind it
    assert sum(r.dropped for r in results) == pipeline.stats.drops
