"""Every drive can become training data (--record-log, read back by extract) and is written like a
run (--output); edgeft drive's command line: Ctrl-C sends a stop, bad settings are one line."""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("websockets", reason="the drive extra (websockets) is not installed")
pytest.importorskip("onnx", reason="building the tiny steering bundle needs the onnx package")

from drive_helpers import expected_steering, steering_frames, udacity_drive  # noqa: E402
from tiny_bundle import write_tiny_bundle, write_tiny_steering_bundle  # noqa: E402
from unity_client import UnityClient  # noqa: E402

from edgeft.drive import Command, DriveLog  # noqa: E402
from edgeft.runtime import Engine, SinkError, open_sinks  # noqa: E402
from edgeft.runtime.sources.drivelog import stamp_in_name  # noqa: E402

from helpers import edgeft, free_port  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_steering_bundle(tmp_path_factory.mktemp("outputs") / "steer")


def test_a_recorded_drive_is_a_driving_log_that_extract_reads(bundle, tmp_path) -> None:
    engine = Engine.load(bundle, device="cpu")
    frames = steering_frames()
    sinks = open_sinks([f"predictions:{tmp_path / 'p.jsonl'}"], engine.manifest)
    with udacity_drive(engine, sinks=sinks, log=DriveLog(tmp_path / "rec")) as running:
        t = UnityClient(running.port, frames, null_every=7).run(40, timeout_s=60, hold=0.5)
    rows = list(csv.reader((tmp_path / "rec" / "driving_log.csv").read_text().splitlines()))
    assert rows and len(rows) <= running.stats.ticks and all(len(r) == 7 and r[1] == r[2] == "" for r in rows)
    sent = {frame for frame in frames}
    for center, _, _, steering, throttle, brake, speed in rows:
        image = (tmp_path / "rec" / center).read_bytes()
        assert image in sent  # the JPEG exactly as the simulator sent it
        assert float(steering) == pytest.approx(expected_steering(image), abs=2e-4)  # the command sent for it
        assert float(throttle) >= 0 and float(brake) >= 0 and float(speed) == 10.0
        assert stamp_in_name(center) == pytest.approx(time.time(), abs=120)  # Udacity's center_YYYY_MM_DD_HH_MM_SS_mmm.jpg
    names = [r[0] for r in rows]
    assert names == sorted(names) and len(set(names)) == len(names)
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(predictions) == len(rows) and all(p["valid"] and p["source"] == "center" for p in predictions)
    assert len([r for r in t.replies if r.kind == "steer"]) >= len(rows)

    features = edgeft("extract", tmp_path / "rec", "--model", write_tiny_bundle(tmp_path / "tiny"), "--out", tmp_path / "feat")
    assert features.returncode == 0, features.stderr
    index = list(csv.DictReader((tmp_path / "feat" / "index.csv").read_text().splitlines()))
    assert len(index) == len(rows)
    assert sorted(round(float(r["label"]), 4) for r in index) == sorted(round(float(r[3]), 4) for r in rows)


def test_a_recording_is_never_replaced_without_force(tmp_path) -> None:
    folder = tmp_path / "rec"
    log = DriveLog(folder)
    log.write(b"\xff\xd8jpeg", Command(0.1, 0.2), 9.0, time.time())
    log.close()
    with pytest.raises(SinkError, match="already holds a recording: pass --force"):
        DriveLog(folder)
    proc = edgeft("drive", "--model", tmp_path / "missing", "--record-log", folder)
    assert proc.returncode == 1 and "already holds a recording" in proc.stderr and "Traceback" not in proc.stderr
    assert len(list((folder / "IMG").iterdir())) == 1  # untouched
    DriveLog(folder, force=True).close()
    assert not list((folder / "IMG").iterdir()) and (folder / "driving_log.csv").read_text() == ""
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="is a file"):
        DriveLog(tmp_path / "file")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_sends_a_stop_before_closing(bundle, tmp_path, sig) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgeft", "drive", "--model", str(bundle), "--device", "cpu", "--port", str(port),
                             "--record-log", str(tmp_path / "rec")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = UnityClient(port, steering_frames())
    result: dict = {}

    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "t" not in result:
            try:
                result["t"] = client.run(10**9, timeout_s=60)
            except OSError:
                time.sleep(0.2)  # not listening yet

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(client.transcript.replies) < 30 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    thread.join(30)
    t = result["t"]
    assert proc.returncode == 128 + sig, err
    assert t.closed_by_server and t.received[-1] == '42["steer",{"steering_angle":"0.0000","throttle":"0.0000"}]'
    assert f"stopped by signal {int(sig)}" in out and "final command (wheel straight, no throttle)" in out
    rows = (tmp_path / "rec" / "driving_log.csv").read_text().splitlines()
    # whole rows, closed properly: one per tick decided, and a tick answers at most the client's two telemetry chains
    assert len(rows) >= 30 // 2 and all(line.count(",") == 6 for line in rows)


def test_bad_drive_settings_are_one_line(bundle, tmp_path) -> None:
    for args, message in [(("--sim", "carla"), "--sim must be udacity or donkey"), (("--max-age-ms", "0"), "--max-age-ms must be"),
                          (("--smoothing", "1"), "--smoothing must be in [0, 1)"), (("--max-ticks", "0"), "--max-ticks must be")]:
        proc = edgeft("drive", "--model", bundle, *args)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = edgeft("drive", "--model", write_tiny_bundle(tmp_path / "classifier"))
    assert proc.returncode == 1 and "needs a steering bundle" in proc.stderr and "classification bundle" in proc.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = edgeft("drive", "--model", bundle, "--port", taken.getsockname()[1], "--record-log", tmp_path / "never")
    assert proc.returncode == 1 and "cannot listen on 127.0.0.1" in proc.stderr
    assert not (tmp_path / "never" / "driving_log.csv").exists()  # nothing left behind by a drive that never started
    proc = edgeft("sim", "--port", free_port(), "--connect-timeout", "0.5")
    assert proc.returncode == 1 and "cannot reach edgeft drive" in proc.stderr and "Traceback" not in proc.stderr


def test_record_writes_the_frames_the_car_saw_to_mcap(bundle, tmp_path) -> None:
    pytest.importorskip("foxglove", reason="the foxglove extra (foxglove-sdk) is not installed")
    mcap_reader = pytest.importorskip("mcap.reader", reason="the test extra (mcap) is not installed")
    decoder = pytest.importorskip("mcap_protobuf.decoder", reason="the test extra (mcap-protobuf-support) is not installed")
    engine = Engine.load(bundle, device="cpu")
    frames = steering_frames()
    sinks = open_sinks([f"mcap:{tmp_path / 'drive.mcap'}"], engine.manifest)
    with udacity_drive(engine, sinks=sinks) as running:
        UnityClient(running.port, frames).run(20, timeout_s=60, hold=0.3)
    with open(tmp_path / "drive.mcap", "rb") as fh:
        reader = mcap_reader.make_reader(fh, decoder_factories=[decoder.DecoderFactory()])
        images = [bytes(d.data) for _, _, _, d in reader.iter_decoded_messages(topics=["/edgeft/center/image"])]
    assert 0 < len(images) <= running.stats.ticks and all(image in frames for image in images)  # as the simulator sent them
