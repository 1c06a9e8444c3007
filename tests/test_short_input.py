"""Input that is shorter or more broken than it claims is said, never passed over in silence."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("short") / "tiny")


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return " ".join(proc.stdout.split())


def encoded(suffix: str, value: int) -> bytes:
    rng = np.random.default_rng(value)
    return cv2.imencode(suffix, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))[1].tobytes()


def test_video_cut_short_of_its_header_says_so(bundle, tmp_path) -> None:
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(100):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])  # a recording cut off mid-file: the header still says 100
    wide = dict(os.environ, COLUMNS="250")  # one summary row per line
    summary = ok(edgeft("run", "--model", bundle, "--source", clip, "--quiet", env=wide))
    assert "note │ clip: the video ended after" in summary and "of the 100 frames its container announces" in summary
    whole = tmp_path / "whole.avi"
    whole.write_bytes(data)
    assert "note" not in ok(edgeft("run", "--model", bundle, "--source", whole, "--quiet", env=wide))


def test_truncated_images_become_invalid_results_without_decoder_noise(bundle, tmp_path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, suffix in enumerate((".jpg", ".png", ".jpg", ".png")):
        data = encoded(suffix, i)
        (folder / f"{i}{suffix}").write_bytes(data if i < 2 else data[: len(data) // 2])
    proc = edgeft("run", "--model", bundle, "--source", folder, "--output", tmp_path / "p.jsonl", "--quiet")
    ok(proc)
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["valid"] for r in rows] == [True, True, False, False]
    assert rows[2]["reason"] == "truncated JPEG (no end-of-image marker)" and rows[3]["reason"] == "truncated PNG (no IEND chunk)"
    assert "Premature end" not in proc.stderr and "libpng" not in proc.stderr, proc.stderr


def test_many_unreadable_images_warn_once(bundle, tmp_path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "0.jpg").write_bytes(encoded(".jpg", 0))
    for i in range(1, 6):
        (folder / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
    proc = edgeft("run", "--model", bundle, "--source", folder, "--quiet")
    summary = ok(proc)
    assert "skipped │ 5 unreadable" in summary
    assert proc.stderr.count("skipping unreadable") == 1 and "Corrupt JPEG" not in proc.stderr, proc.stderr


def test_a_run_with_no_usable_frame_fails_and_says_why(bundle, tmp_path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"not a png")
    proc = edgeft("run", "--model", bundle, "--source", folder, "--quiet")
    assert proc.returncode == 1 and "no frame could be used: all 3 inputs were unreadable" in proc.stderr


def test_an_extraction_with_no_readable_image_fails(bundle, tmp_path) -> None:
    for name in ("red", "blue"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "data" / name / f"{i}.png").write_bytes(b"not a png")
    proc = edgeft("extract", tmp_path / "data", "--model", bundle, "--out", tmp_path / "feat")
    assert proc.returncode == 1 and "none of the 6 planned images could be read" in proc.stderr


def test_a_cut_video_lists_only_the_frames_it_holds(tmp_path) -> None:
    """What a cluster is handed (`Source.listing`) is what a run would read, not the header's count."""
    from edgeft.runtime.sources import open_source

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(100):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with open_source(str(clip)) as source:
        listed = [frame.index for tick in source.listing() for frame in tick]
        read = [frame.index for tick in iter(source.read, None) for frame in tick]
    assert listed == read and 0 < len(read) < 100
