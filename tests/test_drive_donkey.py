"""edgeft drive --sim donkey against a stand-in of the DonkeyCar simulator's TCP server (written
from its C#): the handshake, 20 Hz telemetry, string controls, one message per read."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("onnx", reason="building the tiny steering bundle needs the onnx package")

from donkey_server import DonkeyServer  # noqa: E402
from drive_helpers import expected_steering, steering_frames  # noqa: E402
from tiny_bundle import write_tiny_steering_bundle  # noqa: E402

from edgeft.drive import DonkeyClient, DonkeyConfig, DriveConfig, DriveError, DriveStats, Outputs, SafetyConfig, drive  # noqa: E402
from edgeft.drive.safety import SILENCE, STALE  # noqa: E402
from edgeft.runtime import Engine  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_steering_bundle(tmp_path_factory.mktemp("donkey") / "steer")


@pytest.fixture(scope="module")
def engine(bundle) -> Engine:
    return Engine.load(bundle, device="cpu")


def run_donkey(engine, port: int, config: DriveConfig = DriveConfig(), scene: str = "generated_road", max_ticks=None):
    stats = DriveStats()
    outputs = Outputs([], None, stats)
    client = DonkeyClient(engine, config, stats, outputs, DonkeyConfig(port=port, scene=scene, connect_timeout_s=10))
    outcome = drive(client, outputs, stats, max_ticks, handle_signals=False)
    return outcome, stats


@pytest.mark.parametrize("comma", [False, True], ids=["dot-decimal", "comma-decimal-locale"])
def test_handshake_20hz_telemetry_and_string_controls(engine, comma) -> None:
    frames = steering_frames()
    with DonkeyServer(frames, telemetries=60, comma=comma, ctes=[0.5, -0.25], hit_at=7) as server:
        outcome, stats = run_donkey(engine, server.port)
    log = server.log
    assert outcome.error is None and not log.violations  # every read held exactly one message
    kinds = [m["msg_type"] for m in log.received]
    assert kinds[:3] == ["get_scene_names", "load_scene", "control"] and log.received[1]["scene_name"] == "generated_road"
    hold, *driving = log.controls
    assert (hold.steering, hold.throttle, hold.brake) == (0.0, 0.0, 1.0)  # on car_loaded: held until a frame is run
    matched = []
    for control in driving:
        assert -1 <= control.steering <= 1 and 0 <= control.throttle <= 1 and 0 <= control.brake <= 1
        recent = range(max(0, control.newest - len(frames) + 1), control.newest + 1)  # one of each steering
        candidates = [i for i in recent if abs(expected_steering(frames[i % len(frames)]) - control.steering) < 2e-4]
        assert len(candidates) == 1, f"steering {control.steering} answers none of the last frames {list(recent)}"
        matched.append(candidates[0])
    assert matched == sorted(matched), matched[-5:]  # never an older frame after a newer one
    assert stats.telemetry == 60 and stats.ticks + stats.drops == 60 and len(driving) == stats.ticks  # answered or replaced
    assert stats.score.as_dict() == {"mean_abs_cte": 0.375, "max_abs_cte": 0.5, "hits": 1, "frames": 60}


def test_max_ticks_ends_with_a_final_brake(engine) -> None:
    with DonkeyServer(steering_frames(), telemetries=200) as server:
        outcome, stats = run_donkey(engine, server.port, max_ticks=10)
    final = server.log.controls[-1]
    assert stats.ticks >= 10 and (final.steering, final.throttle, final.brake) == (0.0, 0.0, 1.0)
    assert len(server.log.controls) == 1 + stats.ticks + 1 and not server.log.violations


def test_stale_frames_get_a_brake(engine) -> None:
    with DonkeyServer(steering_frames(), telemetries=20) as server:
        _, stats = run_donkey(engine, server.port, DriveConfig(safety=SafetyConfig(max_age_ms=0.001)))
    assert all((c.steering, c.throttle, c.brake) == (0.0, 0.0, 1.0) for c in server.log.controls)
    assert stats.safe_stops[STALE] == stats.ticks > 0


def test_telemetry_that_stops_gets_a_brake(engine) -> None:
    """The simulator hangs for a second: the car, told to drive, is told to brake."""
    with DonkeyServer(steering_frames(), telemetries=20, pause=(10, 1.0)) as server:
        _, stats = run_donkey(engine, server.port)
    silence = [c for c in server.log.controls if c.newest == 9 and (c.throttle, c.brake) == (0.0, 1.0)]
    assert silence and stats.safe_stops[SILENCE] == 1


def test_an_unknown_scene_or_no_simulator_is_one_clear_error(engine) -> None:
    with DonkeyServer(steering_frames(), telemetries=1) as server:
        outcome, _ = run_donkey(engine, server.port, scene="moon")
        server._loaded.set()  # let the stand-in finish
    assert "scene 'moon' is not one the Donkey simulator offers: generated_road, warehouse" in outcome.error
    stats = DriveStats()
    client = DonkeyClient(engine, DriveConfig(), stats, Outputs([], None, stats), DonkeyConfig(port=server.port, connect_timeout_s=0.5))
    with pytest.raises(DriveError, match="cannot reach the Donkey simulator at 127.0.0.1"):
        drive(client, Outputs([], None, stats), stats, handle_signals=False)


def test_sigterm_sends_a_stop_before_closing(bundle) -> None:
    with DonkeyServer(steering_frames(), telemetries=400) as server:
        proc = subprocess.Popen([sys.executable, "-m", "edgeft", "drive", "--model", str(bundle), "--device", "cpu", "--sim", "donkey",
                                 "--port", str(server.port), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while len(server.log.controls) < 20 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 143, err
    final = server.log.controls[-1]
    assert (final.steering, final.throttle, final.brake) == (0.0, 0.0, 1.0)
    assert "final command (wheel straight, full brake)" in out and "stopped by signal 15" in out
