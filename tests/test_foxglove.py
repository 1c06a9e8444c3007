"""Runs as Foxglove sees them: an MCAP recording read back with `mcap`, and the live WebSocket
server subscribed to by a client speaking the Foxglove protocol on loopback."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import edgeft, free_port

pytest.importorskip("foxglove", reason="the foxglove extra (foxglove-sdk) is not installed")
mcap_reader = pytest.importorskip("mcap.reader", reason="the test extra (mcap) is not installed")
pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from bagfiles import footage, write_rig_bag  # noqa: E402
from tiny_bundle import write_tiny_bundle  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("foxglove") / "tiny")


@pytest.fixture(scope="module")
def bag(tmp_path_factory, carphone):
    return write_rig_bag(tmp_path_factory.mktemp("rig") / "drive.bag", footage(carphone, 30), dropped={"left": {3}})


def test_record_writes_an_mcap_foxglove_opens(bundle, bag, tmp_path) -> None:
    out = tmp_path / "run.mcap"
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--record", out, "--output", tmp_path / "p.jsonl", "--quiet")
    assert proc.returncode == 0, proc.stderr
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    with open(out, "rb") as fh:
        reader = mcap_reader.make_reader(fh)
        summary = reader.get_summary()
        topics = {c.id: c.topic for c in summary.channels.values()}
        counts = {topics[i]: n for i, n in summary.statistics.channel_message_counts.items()}
        schemas = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        assert counts["/edgeft/predictions"] == len(predictions) == 89
        for camera, frames in (("left", 29), ("center", 30), ("right", 30)):
            assert counts[f"/edgeft/{camera}/image"] == counts[f"/edgeft/{camera}/annotations"] == frames
            assert schemas[f"/edgeft/{camera}/image"] == "foxglove.CompressedImage"
            assert schemas[f"/edgeft/{camera}/annotations"] == "foxglove.ImageAnnotations"
        assert schemas["/edgeft/predictions"] == "edgeft.Prediction"
        stamps = sorted(p["stamp"] for p in predictions)
        recorded = sorted(m.log_time for _, _, m in reader.iter_messages(topics=["/edgeft/predictions"]))
        assert np.abs(np.array(recorded) - np.array(stamps) * 1e9).max() < 1000  # the recording's time (float seconds: < 1 us)
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
        assert metadata["edgeft"]["bundle"] == "tiny"


def test_annotations_carry_the_caption_and_image_is_a_jpeg(bundle, bag, tmp_path) -> None:
    decoder = pytest.importorskip("mcap_protobuf.decoder", reason="the test extra (mcap-protobuf-support) is not installed")
    out = tmp_path / "run.mcap"
    assert edgeft("run", "--model", bundle, "--source", bag.path, "--record", out, "--quiet").returncode == 0
    with open(out, "rb") as fh:
        reader = mcap_reader.make_reader(fh, decoder_factories=[decoder.DecoderFactory()])
        messages = list(reader.iter_decoded_messages(topics=["/edgeft/center/image", "/edgeft/center/annotations"]))
    images = [d for _, c, _, d in messages if c.topic.endswith("image")]
    notes = [d for _, c, _, d in messages if c.topic.endswith("annotations")]
    assert images[0].format == "jpeg" and bytes(images[0].data[:2]) == b"\xff\xd8"
    assert any(t.text.startswith(("red", "blue")) for t in notes[0].texts)


def center_images(path: Path) -> list[bytes]:
    decoder = pytest.importorskip("mcap_protobuf.decoder", reason="the test extra (mcap-protobuf-support) is not installed")
    with open(path, "rb") as fh:
        reader = mcap_reader.make_reader(fh, decoder_factories=[decoder.DecoderFactory()])
        return [bytes(d.data) for _, _, _, d in reader.iter_decoded_messages(topics=["/edgeft/center/image"])]


def test_recorded_jpegs_go_out_as_recorded_and_raw_frames_are_encoded(bundle, bag, tmp_path, carphone) -> None:
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(bag.path)]) as reader:
        connections = [c for c in reader.connections if c.topic.startswith("/center_camera")]
        recorded = [bytes(reader.deserialize(raw, c.msgtype).data) for c, _, raw in reader.messages(connections=connections)]
    assert edgeft("run", "--model", bundle, "--source", bag.path, "--record", tmp_path / "jpeg.mcap", "--quiet").returncode == 0
    assert center_images(tmp_path / "jpeg.mcap") == recorded  # byte for byte: not decoded and encoded again
    raw = write_rig_bag(tmp_path / "raw.bag", footage(carphone, 5), raw=True)
    assert edgeft("run", "--model", bundle, "--source", raw.path, "--record", tmp_path / "raw.mcap", "--quiet").returncode == 0
    images = center_images(tmp_path / "raw.mcap")
    assert len(images) == 5 and all(image[:2] == b"\xff\xd8" for image in images)  # sensor_msgs/Image frames, JPEG-encoded here


def test_jpeg_files_go_out_as_they_are(bundle, tmp_path) -> None:
    from edgeft.runtime.sources import read_log, resolve_image

    assert edgeft("sample", tmp_path / "drive", "--frames", 4).returncode == 0
    log = tmp_path / "drive" / "driving_log.csv"
    files = [resolve_image(row.paths["center"], log.parent).read_bytes() for row in read_log(log)]
    assert edgeft("run", "--model", bundle, "--source", log, "--record", tmp_path / "run.mcap", "--quiet").returncode == 0
    assert center_images(tmp_path / "run.mcap") == files


def test_a_killed_recording_is_readable_up_to_its_last_chunk(bundle, tmp_path, carphone) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2

    for i, frame in enumerate(footage(carphone, 8)):
        cv2.imwrite(str(frames / f"{i}.jpg"), frame)
    out = tmp_path / "run.mcap"
    proc = subprocess.Popen([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(frames), "--loop",
                             "--record", str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(6)
    proc.kill()
    proc.wait()
    from mcap.exceptions import McapError

    count = 0
    with open(out, "rb") as fh:
        try:
            for _ in mcap_reader.NonSeekingReader(fh).iter_messages(log_time_order=False):
                count += 1
        except McapError:
            pass
    assert count > 100


async def subscribe(port: int, wanted: set[str], deadline_s: float = 20.0) -> dict[str, int]:
    """A Foxglove WebSocket client: wait for the advertised channels, subscribe, count messages."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    received: dict[str, int] = {}
    async with connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"], max_size=None) as ws:
        channels: dict[int, str] = {}
        end = time.monotonic() + deadline_s
        subscribed: dict[int, str] = {}
        while time.monotonic() < end and not all(received.get(t, 0) >= 2 for t in wanted):
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.monotonic()))
            except (TimeoutError, ConnectionClosed):
                break
            if isinstance(message, str):
                data = json.loads(message)
                if data["op"] == "advertise":
                    channels.update({c["id"]: c["topic"] for c in data["channels"]})
                    fresh = [(cid, topic) for cid, topic in channels.items() if topic in wanted and topic not in subscribed.values()]
                    if fresh:
                        subs = [{"id": 100 + cid, "channelId": cid} for cid, _ in fresh]
                        subscribed.update({100 + cid: topic for cid, topic in fresh})
                        await ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
            elif message[0] == 1:
                subscription = struct.unpack_from("<I", message, 1)[0]
                topic = subscribed[subscription]
                received[topic] = received.get(topic, 0) + 1
    return received


def test_live_server_streams_images_and_predictions_to_a_client(bundle, bag, tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--source", str(bag.path),
                             "--rate", "0.1", "--foxglove", str(port), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        received = {}
        for _ in range(50):  # the server comes up with the run
            try:
                received = asyncio.run(subscribe(port, {"/edgeft/center/image", "/edgeft/predictions"}))
                break
            except OSError:
                time.sleep(0.2)
        assert received.get("/edgeft/center/image", 0) >= 2 and received.get("/edgeft/predictions", 0) >= 2, received
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr


def test_bad_foxglove_address_and_busy_port_are_one_line_errors(bundle, bag, tmp_path) -> None:
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--foxglove", "nope")
    assert proc.returncode == 1 and "is not [HOST:]PORT" in proc.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = edgeft("run", "--model", bundle, "--source", bag.path, "--foxglove", busy.getsockname()[1])
    assert proc.returncode == 1 and "cannot start the server" in proc.stderr and "Traceback" not in proc.stderr
    proc = edgeft("run", "--model", bundle, "--source", bag.path, "--record", tmp_path / "x.txt")
    assert proc.returncode == 1 and "must end in .mcap" in proc.stderr
