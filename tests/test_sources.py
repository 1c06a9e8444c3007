"""Source specs, image folders, driving logs and bad sources (no model needed)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime.sources import (
    CameraSource, DriveLogSource, ImageSource, SourceError, SourceOptions, StreamSource, VideoSource,
    open_source, source_kind, split_name,
)


def write_image(path: Path, value: int, shape=(20, 30, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full(shape, value, np.uint8))
    return path


def test_spec_kinds(tmp_path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "driving_log.csv").write_text("a,b,c,0\n")
    assert source_kind("camera0") is CameraSource and source_kind("2") is CameraSource
    assert source_kind("/dev/video0") is CameraSource
    assert source_kind("rtsp://10.0.0.1/stream") is StreamSource and source_kind("http://127.0.0.1:1/x") is StreamSource
    assert source_kind(str(tmp_path / "log")) is DriveLogSource and source_kind(str(tmp_path / "any.csv")) is DriveLogSource
    assert source_kind(str(tmp_path)) is ImageSource and source_kind(str(tmp_path / "*.png")) is ImageSource
    assert source_kind(str(video)) is VideoSource
    with pytest.raises(SourceError, match="does not exist"):
        source_kind(str(tmp_path / "missing.mp4"))


def test_named_specs() -> None:
    assert split_name("center=camera0") == ("center", "camera0")
    assert split_name("http://host/live?a=b") == (None, "http://host/live?a=b")
    assert split_name("left=rtsp://host/x?token=1") == ("left", "rtsp://host/x?token=1")


def test_image_folder_is_sorted_naturally_and_loops(tmp_path) -> None:
    for i in (10, 2, 1):
        write_image(tmp_path / f"frame_{i}.png", i)
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path), SourceOptions(loop=True))
    values = [int(source.read()[0].image[0, 0, 0]) for _ in range(5)]
    assert values == [1, 2, 10, 1, 2]
    indices = [source.read()[0].index for _ in range(2)]
    assert indices == [5, 6]  # frame ids keep growing across loops


def test_glob_and_stride(tmp_path) -> None:
    for i in range(6):
        write_image(tmp_path / f"f{i}.jpg", i * 10)
    source = open_source(str(tmp_path / "f*.jpg"), SourceOptions(stride=2))
    assert source.total == 3
    assert [source.read()[0].image[0, 0, 0] // 10 for _ in range(3)] == [0, 2, 4]
    assert source.read() is None


def test_unreadable_images_are_skipped_counted_and_warned_once(tmp_path, caplog) -> None:
    write_image(tmp_path / "a1.png", 1)
    (tmp_path / "a2.png").write_bytes(b"broken")
    (tmp_path / "a3.png").write_bytes(b"broken too")
    write_image(tmp_path / "a4.png", 4)
    source = open_source(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="edgeft"):
        frames = [t[0] for t in iter(source.read, None)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 4]
    assert source.skipped == 2
    assert len([r for r in caplog.records if "unreadable" in r.message]) == 1


def make_log(folder: Path, rows: list[tuple[str, str, str, float]], header: bool) -> Path:
    lines = ["center,left,right,steering,throttle,brake,speed"] if header else []
    lines += [f"{c},{l},{r},{s},0.5,0,20" for c, l, r, s in rows]
    path = folder / "driving_log.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("header", [True, False])
def test_driving_log_resolves_relative_and_foreign_paths(tmp_path, header) -> None:
    for name, value in (("c0.jpg", 10), ("l0.jpg", 20), ("r0.jpg", 30), ("c1.jpg", 40)):
        write_image(tmp_path / "IMG" / name, value)
    log = make_log(tmp_path, [
        ("IMG/c0.jpg", "IMG/l0.jpg", "IMG/r0.jpg", 0.25),
        (r"C:\Users\driver\sim\IMG\c1.jpg", "/home/else/IMG/missing.jpg", "", -0.5),  # recorded elsewhere
    ], header)
    source = open_source(str(log), SourceOptions(correction=0.2))
    first, second = source.read(), source.read()
    assert [(f.source, int(f.image[0, 0, 0]) // 10) for f in first] == [("center", 1), ("left", 2), ("right", 3)]
    assert [f.truth for f in first] == pytest.approx([0.25, 0.45, 0.05])
    assert [(f.source, f.truth) for f in second] == [("center", -0.5)]  # left unreadable, right absent
    assert source.skipped == 1 and source.read() is None


def test_driving_log_without_correction_scores_only_the_center(tmp_path) -> None:
    for name in ("c.jpg", "l.jpg", "r.jpg"):
        write_image(tmp_path / "IMG" / name, 1)
    log = make_log(tmp_path, [("IMG/c.jpg", "IMG/l.jpg", "IMG/r.jpg", 0.1)], header=True)
    tick = open_source(str(tmp_path)).read()  # a folder holding driving_log.csv works too
    assert [f.truth for f in tick] == [0.1, None, None]
    assert [f.source for f in open_source(f"rig={log}", SourceOptions(cameras=("center",))).read()] == ["rig/center"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "has no rows"), ("center,left,right,steering\nIMG/a.jpg,,,straight\nIMG/b.jpg,,,0.1\n", "steering 'straight' is not a number"),
     ("IMG/a.jpg,0.1\n", "expected center,left,right,steering")],
)
def test_malformed_driving_logs(tmp_path, content, message) -> None:
    (tmp_path / "driving_log.csv").write_text(content)
    with pytest.raises(SourceError, match=message):
        open_source(str(tmp_path / "driving_log.csv"))


def test_absent_camera_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="camera 'camera7' cannot be opened"):
        open_source("camera7")
    with pytest.raises(SourceError, match="camera '/dev/video9' does not exist"):
        open_source("/dev/video9")


def test_unreachable_stream_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match="cannot be opened"):
        open_source(f"http://127.0.0.1:{port}/live.ts", SourceOptions(timeout_s=2))


def test_empty_folder_and_non_video(tmp_path) -> None:
    with pytest.raises(SourceError, match="no images in"):
        open_source(str(tmp_path))
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="not a video OpenCV can decode"):
        open_source(str(tmp_path / "fake.mp4"))


def test_driving_log_frames_carry_the_time_in_their_file_names(tmp_path) -> None:
    """The simulator's center_2016_12_01_13_30_48_287.jpg (read as UTC) and epoch-nanosecond names
    (rosbag extraction scripts) give each frame its recording time; other names give none."""
    import datetime as dt

    names = {"center": "IMG/center_2016_12_01_13_30_48_287.jpg", "left": "IMG/1479425441182877835.jpg", "right": "IMG/right_7.jpg"}
    for name in names.values():
        write_image(tmp_path / name, 10)
    (tmp_path / "driving_log.csv").write_text(",".join(names.values()) + ",0.1,0,0,10\n")
    tick = open_source(str(tmp_path / "driving_log.csv"), SourceOptions(correction=0.2)).read()
    stamps = {f.source: f.stamp for f in tick}
    when = dt.datetime(2016, 12, 1, 13, 30, 48, 287000, tzinfo=dt.timezone.utc).timestamp()
    assert stamps["center"] == pytest.approx(when) and stamps["left"] == pytest.approx(1479425441.182877835)
    assert stamps["right"] is None
