"""Faults mid-run: a network stream whose server dies and comes back; Ctrl-C and SIGTERM."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine, Pipeline, PipelineConfig
from helpers import free_port, open_when_up

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

FFMPEG = shutil.which("ffmpeg")


def serve(video: Path, url: str) -> subprocess.Popen:
    """ffmpeg as a one-client HTTP server on loopback, streaming MPEG-TS in real time, looping."""
    return subprocess.Popen(
        [FFMPEG, "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video), "-c:v", "mpeg2video",
         "-q:v", "5", "-f", "mpegts", "-listen", "1", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg (Debian package; CI installs it) is needed to serve a stream")
def test_stream_reconnects_after_its_server_is_killed(tmp_path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(50):
        writer.write(np.full((48, 64, 3), (i * 5) % 256, np.uint8))
    writer.release()
    url = f"http://127.0.0.1:{free_port()}/live.ts"
    server = serve(video, url)
    try:
        engine = Engine.load(write_tiny_bundle(tmp_path / "tiny"))
        config = PipelineConfig(reconnect_first_s=0.2, reconnect_max_s=1.0, reconnect_timeout_s=30)
        pipeline = Pipeline(open_when_up(url), engine, config)
        before, after, deadline = 0, 0, time.monotonic() + 60
        for _ in pipeline:
            if server.poll() is None and before < 10:
                before += 1
                if before == 10:
                    server.kill()  # the stream dies mid-run
                    server.wait()
                    server = serve(video, url)  # ... and its server comes back
            elif pipeline.stats.reconnects > 0:
                after += 1
            if after >= 10 or time.monotonic() > deadline:
                pipeline.stop()
        assert before == 10 and after >= 10, (before, after, pipeline.stats.as_dict())
        assert pipeline.stats.reconnects >= 1 and not pipeline.stats.errors
    finally:
        server.kill()


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg (Debian package; CI installs it) is needed to serve a stream")
def test_stream_that_never_returns_gives_up_with_a_clear_error(tmp_path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for _ in range(25):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    url = f"http://127.0.0.1:{free_port()}/live.ts"
    server = serve(video, url)
    engine = Engine.load(write_tiny_bundle(tmp_path / "tiny"))
    pipeline = Pipeline(open_when_up(url), engine, PipelineConfig(reconnect_first_s=0.1, reconnect_max_s=0.2, reconnect_timeout_s=1.0))
    for count, _ in enumerate(pipeline, start=1):
        if count == 3:
            server.kill()
    assert pipeline.stats.errors and "gave up reconnecting after 1 s" in pipeline.stats.errors[0]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_flushes_sinks_and_prints_the_summary(tmp_path, sig, code) -> None:
    bundle = write_tiny_bundle(tmp_path / "tiny")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(7):
        cv2.imwrite(str(images / f"{i}.png"), np.full((8, 12, 3), i, np.uint8))
    feat, preds = tmp_path / "feat", tmp_path / "p.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(images), "--loop",
         "--features", str(feat), "--output", str(preds), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (feat / "shard-00001.npy").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "interrupted" in stdout and "throughput" in stdout and "Traceback" not in stderr
    assert not list(feat.glob(".*")), "a partial shard was left behind"
    index = list(csv.DictReader(open(feat / "index.csv")))
    shards = {name: np.load(feat / name) for name in {r["shard"] for r in index}}
    assert sum(len(s) for s in shards.values()) == len(index) > 1024  # the last, partial shard was committed whole
    for r in index[:: max(1, len(index) // 50)]:
        assert shards[r["shard"]][int(r["row"])][0] == pytest.approx(int(r["frame"]) % 7)
    lines = preds.read_text().splitlines()
    assert len(lines) >= len(index) and all(json.loads(line)["valid"] for line in lines)


def test_ctrl_c_stops_a_command_started_with_sigint_ignored(tmp_path) -> None:
    """Background jobs of non-interactive shells (how CI and schedulers start things) inherit SIGINT
    ignored; every edgeft command sets its own handler, so Ctrl-C / SIGINT still stops it."""
    proc = subprocess.Popen(["bash", "-c", f'trap "" INT; exec "{sys.executable}" -m edgeft sample "{tmp_path / "drive"}" --frames 100000'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "drive").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
