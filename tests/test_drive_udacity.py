"""edgeft drive --sim udacity against the released simulator's dialect (a client written from its
C#) and against a real python-socketio 5 client; loopback only, every wait bounded."""

from __future__ import annotations

import base64
import queue
import re
import urllib.error
import urllib.request

import pytest

pytest.importorskip("websockets", reason="the drive extra (websockets) is not installed")
pytest.importorskip("onnx", reason="building the tiny steering bundle needs the onnx package")

from drive_helpers import STEERINGS, expected_steering, jpeg, steering_frames, udacity_drive  # noqa: E402
from tiny_bundle import steering_frame, write_tiny_steering_bundle  # noqa: E402
from unity_client import UnityClient  # noqa: E402

from edgeft.drive import DriveConfig, SafetyConfig  # noqa: E402
from edgeft.drive.safety import LATE, NON_FINITE, STALE, UNDECODABLE, UNREADABLE  # noqa: E402
from edgeft.runtime import Engine  # noqa: E402

STEER = re.compile(r'42\["steer",\{"steering_angle":"(-?\d+\.\d{4})","throttle":"(-?\d+\.\d{4})"\}\]')


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine.load(write_tiny_steering_bundle(tmp_path_factory.mktemp("drive") / "steer"), device="cpu")


def follows(transcript, frames: list[bytes], null_every: int | None) -> int:
    """Every steer answers its own frame or a newer one already sent (the newest queued frame is
    run for all queued telemetries); returns how many answered exactly their own."""
    def frame_of(index: int) -> bytes:
        return frames[index % len(frames)]

    own = 0
    for reply in (r for r in transcript.replies if r.kind == "steer"):
        candidates = [i for i in range(reply.answers, reply.newest + 1) if not (null_every and i % null_every == null_every - 1)]
        matches = [i for i in candidates if abs(expected_steering(frame_of(i)) - reply.steering) < 2e-4]
        assert matches, f"steering {reply.steering} answers none of frames {candidates}"
        own += matches[0] == reply.answers
    return own


@pytest.mark.parametrize("comma", [False, True], ids=["dot-decimal", "comma-decimal-locale"])
def test_a_unity_faithful_client_drives_100_frames(engine, comma) -> None:
    frames = steering_frames()
    with udacity_drive(engine) as running:
        client = UnityClient(running.port, frames, speed="10,0000" if comma else "10.0000", null_every=10, comma=comma)
        t = client.run(100, timeout_s=60, hold=0.5)
    stats = running.stats
    assert t.received[0].startswith("0{") and t.open_packet["upgrades"] == [] and t.open_packet["pingInterval"] > 0
    assert not any(m.startswith("40") for m in t.received), "a CONNECT reply the Unity client never asked for"
    assert "3" in t.received, "the client's ping was not answered"
    assert not t.stalled
    telemetries = [m for m in t.sent if m.startswith('42["telemetry"')]
    assert len(t.replies) == len(telemetries) >= 100  # one reply per telemetry, both chains kept alive
    manual = [r for r in t.replies if r.kind == "manual"]
    assert manual and all(r.raw == '42["manual",{}]' for r in manual) and len(manual) == stats.manual
    for reply in (r for r in t.replies if r.kind == "steer"):
        assert STEER.fullmatch(reply.raw), reply.raw  # string values, dot decimal, whatever the client's locale
        assert -1 <= reply.steering <= 1 and -1 <= reply.throttle <= 1
    assert follows(t, frames, 10) > 0
    nearest = {min(STEERINGS, key=lambda s: abs(s - r.steering)) for r in t.replies if r.kind == "steer"}
    assert nearest == set(STEERINGS)  # the steering follows the frames, all of them
    assert stats.sessions == 1 and stats.ticks + stats.manual == stats.telemetry == len(telemetries)
    assert stats.stopped == 0 and stats.round_trip.count == stats.ticks


def test_server_pings_are_answered_and_keep_the_connection(engine) -> None:
    with udacity_drive(engine, ping_interval_s=0.2) as running:
        t = UnityClient(running.port, steering_frames()).run(10, timeout_s=30, hold=1.2)
    assert t.received.count("2") >= 3 and t.sent.count("3") >= 3 and not t.closed_by_server


def socketio_client():
    socketio = pytest.importorskip("socketio", reason="python-socketio (test extra) is not installed")
    return socketio, socketio.Client(reconnection=False)


def test_a_python_socketio_5_client_drives_100_frames(engine) -> None:
    socketio, sio = socketio_client()
    got: queue.Queue = queue.Queue()
    sio.on("steer", lambda data: got.put(("steer", data)))
    sio.on("manual", lambda data: got.put(("manual", data)))
    frames = steering_frames()
    with udacity_drive(engine, ping_interval_s=0.2) as running:
        sio.connect(f"http://127.0.0.1:{running.port}", transports=["websocket"], wait_timeout=10)
        try:
            for i in range(100):
                frame = frames[i % len(frames)]
                speed = 12.5 if i % 2 else "12.5000"  # a modern client may send numbers; both are read
                sio.emit("telemetry", {"steering_angle": "0.0000", "throttle": "0.0000", "speed": speed,
                                       "image": base64.b64encode(frame).decode()})
                kind, data = got.get(timeout=10)
                assert kind == "steer" and all(isinstance(v, str) for v in data.values())
                assert float(data["steering_angle"]) == pytest.approx(expected_steering(frame), abs=2e-4)
                assert -1 <= float(data["throttle"]) <= 1
            sio.emit("telemetry", None)  # manual driving
            assert got.get(timeout=10) == ("manual", {})
            sio.sleep(1.0)  # several server pings, answered by the client's engine.io
            assert sio.connected
            sio.emit("telemetry", {"speed": "1.0", "image": base64.b64encode(frames[0]).decode()})
            assert got.get(timeout=10)[0] == "steer"
        finally:
            sio.disconnect()
    assert running.stats.ticks == 101 and running.stats.manual == 1


def test_polling_is_refused_with_a_line_saying_what_to_do(engine) -> None:
    socketio, sio = socketio_client()
    with udacity_drive(engine) as running:
        with pytest.raises(socketio.exceptions.ConnectionError):
            sio.connect(f"http://127.0.0.1:{running.port}", wait_timeout=5)  # polling first, as the default
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{running.port}/socket.io/?EIO=4&transport=polling", timeout=10)
        assert refused.value.code == 400 and b"transports=['websocket']" in refused.value.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{running.port}/other", timeout=10)
        assert missing.value.code == 404


def one_by_one(port: int, telemetries: list[dict]) -> list[dict]:
    """Send each telemetry and wait for its reply (a single chain, so each reply is that frame's)."""
    socketio, sio = socketio_client()
    got: queue.Queue = queue.Queue()
    sio.on("steer", lambda data: got.put(data))
    sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
    try:
        replies = []
        for telemetry in telemetries:
            sio.emit("telemetry", telemetry)
            replies.append(got.get(timeout=10))
        return replies
    finally:
        sio.disconnect()


def test_nan_outputs_and_unusable_frames_get_a_brake_never_a_steer(engine) -> None:
    good, nan = jpeg(steering_frame(0.3)), jpeg(steering_frame(0.3, green=0))  # no green: the model says NaN
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    telemetries = [{"speed": "12.0", "image": b64(good)}, {"speed": "12.0", "image": b64(nan)},
                   {"speed": "3.0", "image": b64(nan)},  # below 5 mph a negative throttle reverses: no throttle instead
                   {"speed": "12.0", "image": b64(b"\xff\xd8 not a jpeg")}, {"speed": "fast", "image": b64(good)},
                   {"speed": "12.0"}, {"speed": "12.0", "image": b64(good)}]
    with udacity_drive(engine) as running:
        replies = one_by_one(running.port, telemetries)
    values = [(float(r["steering_angle"]), float(r["throttle"])) for r in replies]
    assert values[0][0] == pytest.approx(expected_steering(good), abs=2e-4) and values[6][0] == values[0][0]
    assert values[1] == (0.0, -1.0) and values[2] == (0.0, 0.0) and values[3] == (0.0, -1.0)
    assert values[4] == (0.0, 0.0)  # speed unknown: a negative throttle might reverse, so none
    assert values[5] == (0.0, -1.0)
    stops = running.stats.safe_stops
    assert stops[NON_FINITE] == 2 and stops[UNDECODABLE] == 1 and stops[UNREADABLE] == 2 and running.stats.stopped == 5


def test_frames_older_than_max_age_get_a_brake(engine) -> None:
    config = DriveConfig(safety=SafetyConfig(max_age_ms=0.001))  # every answer is later than this
    with udacity_drive(engine, config) as running:
        t = UnityClient(running.port, steering_frames()).run(30, timeout_s=30, hold=0.3)
    assert all((r.steering, r.throttle) == (0.0, -1.0) for r in t.replies)
    stats = running.stats
    assert stats.stopped == stats.ticks == stats.telemetry and stats.safe_stops[STALE] + stats.safe_stops[LATE] == stats.ticks


def test_a_slow_model_is_answered_by_the_watchdog_within_max_age(steering_bundle) -> None:
    """A real MobileNetV2 takes milliseconds; with max-age below that, every telemetry is answered
    once, with a brake: by the watchdog while inference runs, or as stale after it."""
    engine = Engine.load(steering_bundle, device="cpu")
    config = DriveConfig(safety=SafetyConfig(max_age_ms=0.5))
    frames = [jpeg(f) for f in (steering_frame(0.2), steering_frame(-0.2))]
    with udacity_drive(engine, config) as running:
        t = UnityClient(running.port, frames).run(20, timeout_s=60, hold=0.5)
    stats = running.stats
    assert all((r.steering, r.throttle) == (0.0, -1.0) for r in t.replies) and len(t.replies) == stats.telemetry
    assert stats.ticks == stats.telemetry == stats.safe_stops[LATE] + stats.safe_stops[STALE]
    assert stats.inference.count > 0
