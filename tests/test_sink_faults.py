"""Outputs under faults: a frame with no pixels, a recording whose disk fills, fifty viewers that
never read. Each must end the run cleanly or not slow it, never hang it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("foxglove", reason="the foxglove extra (foxglove-sdk) is not installed")
mcap_reader = pytest.importorskip("mcap.reader", reason="the test extra (mcap) is not installed")
pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from bagfiles import footage, write_image_bag  # noqa: E402
from test_foxglove import free_port, subscribe  # noqa: E402
from tiny_bundle import write_tiny_bundle  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("sinkfaults") / "tiny")


@pytest.fixture(scope="module")
def empty_frame_bag(tmp_path_factory, carphone) -> Path:
    """Twelve real frames, the sixth a message with no pixels (0x0), as a broken driver sends."""
    frames = footage(carphone, 12, size=(160, 120))
    frames[5] = np.zeros((0, 0, 3), np.uint8)
    return write_image_bag(tmp_path_factory.mktemp("empty") / "cam.bag", frames)


def mcap_counts(path: Path) -> dict[str, int]:
    with open(path, "rb") as fh:
        summary = mcap_reader.make_reader(fh).get_summary()
    topics = {c.id: c.topic for c in summary.channels.values()}
    return {topics[i]: n for i, n in summary.statistics.channel_message_counts.items()}


def video_frames(path: Path) -> int:
    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        count += 1
    return count


def assert_invalid_sixth(rows_file: Path) -> None:
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(12))
    assert [r["valid"] for r in rows] == [True] * 5 + [False] + [True] * 6
    assert "the frame is empty (0x0 pixels)" in rows[5]["reason"]


@pytest.mark.parametrize("output", ["--record", "--save-video"])
def test_an_empty_image_is_an_invalid_result_and_outputs_keep_the_rest(bundle, empty_frame_bag, tmp_path, output) -> None:
    target = tmp_path / ("run.mcap" if output == "--record" else "run.mp4")
    proc = subprocess.run([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(empty_frame_bag),
                           output, str(target), "--output", str(tmp_path / "p.jsonl"), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert_invalid_sixth(tmp_path / "p.jsonl")
    if output == "--record":
        counts = mcap_counts(target)
        assert counts["/edgeft/predictions"] == 12  # the invalid result is recorded, as invalid
        assert counts["/edgeft/camera/image"] == counts["/edgeft/camera/annotations"] == 11  # no made-up picture
    else:
        assert video_frames(target) == 11


def test_an_empty_image_does_not_stop_the_live_server(bundle, empty_frame_bag, tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(empty_frame_bag),
                             "--rate", "0.25", "--loop", "--foxglove", str(port), "--output", str(tmp_path / "p.jsonl"),
                             "--max-frames", "36", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        received = {}
        for _ in range(50):
            try:
                received = asyncio_run(subscribe(port, {"/edgeft/camera/image", "/edgeft/predictions"}, deadline_s=12))
                break
            except OSError:
                time.sleep(0.2)
        assert received.get("/edgeft/camera/image", 0) >= 2, received  # images keep coming after the empty one
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr


def asyncio_run(coroutine):
    import asyncio

    return asyncio.run(coroutine)


def test_a_file_size_limit_under_record_is_one_line_and_the_summary(bundle, carphone, tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(footage(carphone, 6, size=(352, 288))):
        cv2.imwrite(str(frames / f"{i}.png"), frame)  # PNG: every frame is encoded by the recorder
    out = tmp_path / "run.mcap"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    proc = subprocess.run([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(frames), "--loop",
                           "--record", str(out), "--max-frames", "100000"],
                          capture_output=True, text=True, preexec_fn=limit, timeout=180)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("edgeft: running")]
    assert len(lines) == 1 and "File too large" in lines[0] and f"--record '{out}'" in lines[0], proc.stderr
    assert "throughput" in proc.stdout  # the summary was printed
    from mcap.exceptions import McapError

    count = 0
    with open(out, "rb") as fh:
        try:
            for _ in mcap_reader.NonSeekingReader(fh).iter_messages(log_time_order=False):
                count += 1
        except McapError:
            pass
    assert count > 20  # what was flushed before the limit stays readable


SILENT_VIEWERS = textwrap.dedent("""
    import asyncio, json, sys
    from websockets.asyncio.client import connect

    async def main(port, count):
        viewers = []
        for _ in range(count):
            ws = await connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"], max_size=None, max_queue=1)
            while (data := json.loads(await ws.recv()))["op"] != "advertise":
                pass
            subscriptions = [{"id": c["id"], "channelId": c["id"]} for c in data["channels"]]
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
            viewers.append(ws)  # and never read again
        print("ready", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
""")


def live_throughput(bundle: Path, images: Path, viewers: int) -> float:
    """Frames/s of a pipeline writing to a live Foxglove server that `viewers` clients subscribed
    to everything on and then stopped reading (in another process)."""
    from edgeft.runtime import Engine, Pipeline, PipelineConfig, open_sink, open_source, run
    from edgeft.runtime.sources import SourceOptions

    engine = Engine.load(bundle, device="cpu")
    sink = open_sink(f"foxglove:{free_port()}", engine.manifest)
    crowd = None
    try:
        # each camera channel appears with its first image: one warm-up frame, so viewers see them all
        sink.write(next(iter(Pipeline(open_source(str(images)), engine, PipelineConfig(max_ticks=1)))))
        time.sleep(0.3)
        if viewers:
            crowd = subprocess.Popen([sys.executable, "-c", SILENT_VIEWERS, str(sink.port), str(viewers)],
                                     stdout=subprocess.PIPE, text=True)
            assert crowd.stdout.readline().strip() == "ready"
            time.sleep(0.5)  # their sockets fill
        pipeline = Pipeline(open_source(str(images), SourceOptions(loop=True)), engine, PipelineConfig(max_ticks=3000))
        outcome = run(pipeline, [sink], handle_signals=False)
        assert outcome.error is None
        return outcome.stats.fps
    finally:
        if crowd is not None:
            crowd.kill()
            crowd.wait()
        sink.close()


def test_fifty_silent_viewers_do_not_slow_the_pipeline(bundle, carphone, tmp_path) -> None:
    """Measured side by side, alternating, best of three each: the work per viewer is bounded."""
    images = tmp_path / "frames"
    images.mkdir()
    for i, frame in enumerate(footage(carphone, 4, size=(160, 120))):
        cv2.imwrite(str(images / f"{i}.png"), frame)
    alone, crowded = [], []
    for _ in range(3):
        alone.append(live_throughput(bundle, images, 0))
        crowded.append(live_throughput(bundle, images, 50))
    assert max(crowded) >= 0.85 * max(alone), (alone, crowded)
