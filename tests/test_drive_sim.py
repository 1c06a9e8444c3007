"""The built-in simulator: its car follows the road's curvature, it speaks the Unity client's
dialect, and it closes the loop with edgeft drive (a head that always steers left leaves the road;
the quick start's head stays on it)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import pytest

pytest.importorskip("websockets", reason="the drive extra (websockets) is not installed")

from drive_helpers import udacity_drive  # noqa: E402

from edgeft.drive import Car, DriveError, SimConfig, Simulator, curvature  # noqa: E402
from edgeft.drive.car import MPH, ROAD_HALF_M  # noqa: E402
from edgeft.drive.road import expert_steering  # noqa: E402

from helpers import edgeft, free_port  # noqa: E402


def test_steering_the_curvature_follows_the_road_and_the_expert_recovers() -> None:
    car = Car(speed=4.0)
    while car.s < 240:  # a lap, open loop: the road's own curvature (mid-tick), in steering units
        car.step(curvature(car.s + car.speed * 0.01), 0.1, 0.02)
    assert abs(car.offset) < 0.02 and abs(car.heading) < 0.002 and car.speed > 4.0
    car = Car(offset=1.0, heading=0.1, speed=4.0)  # off to the right and pointing further right
    worst = 0.0
    for tick in range(400):
        car.step(expert_steering(car.view()), 0.3 * (4.0 - car.speed), 0.05)  # at about 9 mph
        worst = max(worst, abs(car.offset)) if tick > 100 else worst
    assert worst < 0.5 and not car.off_road  # back near the centre line within 5 s, and kept there


def test_negative_throttle_brakes_above_5_mph_and_reverses_below() -> None:
    car = Car(speed=10 * MPH)
    car.step(0.0, -1.0, 0.2)
    assert 0 < car.speed < 10 * MPH  # braking
    car = Car(speed=0.0)
    car.step(0.0, -1.0, 0.5)
    assert car.speed < 0  # the Udacity car's quirk: reverse


def test_a_head_that_always_steers_left_leaves_the_road(tmp_path) -> None:
    pytest.importorskip("onnx")
    from tiny_bundle import write_tiny_steering_bundle

    from edgeft.runtime import Engine

    engine = Engine.load(write_tiny_steering_bundle(tmp_path / "left", gain=0.0, bias=-0.5), device="cpu")
    with udacity_drive(engine) as running:
        metrics = Simulator(SimConfig(port=running.port, distance_m=100, max_off_road_s=2.0)).run()
    assert not metrics.completed and metrics.ended == "off the road for 2 s"
    assert metrics.off_road_s >= 2.0 and metrics.off_road_events >= 1 and metrics.distance_m < 100
    assert metrics.max_abs_cte_m > ROAD_HALF_M
    assert metrics.ticks <= running.stats.ticks <= metrics.ticks + 1  # the other chain's answer may come as it leaves


class RecordingServer:
    """Accepts one sim, records what it sends, and answers as a server would (or wrongly)."""

    def __init__(self, numeric: bool):
        from websockets.sync.server import serve

        self.numeric, self.received = numeric, []
        self.server = serve(self.handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, ws) -> None:
        self.path = ws.request.path
        self.received.append(ws.recv(timeout=10))  # the first telemetry, on open
        ws.send('0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
        for _ in range(2):  # the ping, and the second telemetry (either order)
            self.received.append(ws.recv(timeout=10))
        ws.send("2")
        self.received.append(ws.recv(timeout=10))
        value = 0.1 if self.numeric else '"0.1000"'
        ws.send(f'42["steer",{{"steering_angle":{value},"throttle":{value}}}]')
        if not self.numeric:
            self.received.append(ws.recv(timeout=10))
        try:
            while True:
                self.received.append(ws.recv(timeout=10))
        except Exception:  # noqa: BLE001 - the sim left
            pass


@pytest.mark.parametrize("numeric", [False, True], ids=["strings", "numbers"])
def test_the_sim_speaks_the_unity_clients_dialect(numeric) -> None:
    server = RecordingServer(numeric)
    server.thread.start()
    try:
        sim = Simulator(SimConfig(port=server.port, distance_m=1e-6, decimal_comma=True))
        if numeric:
            with pytest.raises(DriveError, match="steering_angle is 0.1, not a string: the released simulator would ignore it"):
                sim.run()
        else:
            assert sim.run().ended == "distance reached"
    finally:
        server.server.shutdown()
        server.thread.join(10)
    assert server.path == "/socket.io/?EIO=4&transport=websocket"
    first, *rest = server.received
    assert first.startswith('42["telemetry",{"steering_angle":"0,0000","throttle":"0,0000","speed":"0,0000","image":"/9j/')
    assert "2" in rest[:2] and "40" not in server.received  # its own ping; never a CONNECT
    assert sum(m.startswith('42["telemetry"') for m in rest[:2]) == 1  # the second chain, on the open packet
    assert rest[2] == "3"  # the server's ping answered
    if not numeric:
        assert rest[3:5] == ["41", "1"]  # SocketIOComponent.Close
    telemetry = json.loads(first[2:])[1]
    assert list(telemetry) == ["steering_angle", "throttle", "speed", "image"] and all(isinstance(v, str) for v in telemetry.values())


def drive_and_sim(bundle, distance: float, *sim_args: str, cwd=None):
    """`edgeft drive --once` and `edgeft sim --json` as two processes, as the quick start runs them."""
    port = free_port()
    drive = subprocess.Popen([sys.executable, "-m", "edgeft", "drive", "--model", str(bundle), "--port", str(port), "--once",
                              "--quiet", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    try:
        sim = edgeft("sim", "--port", port, "--distance", distance, "--json", "--quiet", *sim_args, cwd=cwd)
        out, err = drive.communicate(timeout=60)
    finally:
        if drive.poll() is None:
            drive.kill()
    assert drive.returncode == 0, err
    return sim, json.loads(out)


def test_sim_cli_reports_metrics_and_strict_fails_a_car_that_left(tmp_path) -> None:
    pytest.importorskip("onnx")
    from tiny_bundle import write_tiny_steering_bundle

    bundle = write_tiny_steering_bundle(tmp_path / "left", gain=0.0, bias=-0.5)
    sim, summary = drive_and_sim(bundle, 50, "--strict", "--max-off-road", "1")
    assert sim.returncode == 1 and "error: the run did not complete: off the road for 1 s" in sim.stderr
    metrics = json.loads(sim.stdout)
    assert metrics["completed"] is False and metrics["off_road_s"] >= 1.0
    assert summary["sessions"] == 1 and metrics["ticks"] <= summary["ticks"] <= metrics["ticks"] + 1 and summary["safe_stops"] == {}


@pytest.mark.slow
def test_the_quick_start_head_stays_on_the_road(tmp_path, deepsort_weights) -> None:
    """The quick start's recipe (sample, extract --augment flip, train-head, export --head), then a
    closed loop on the built-in road."""
    size = ("--input-size", "160x320")
    steps = [("sample", "drive"), ("export", "MobileNetV2", "--weights", deepsort_weights, *size, "--name", "base"),
             ("extract", "drive", "--model", "models/base", "--out", "feat", "--augment", "flip"),
             ("train-head", "feat", "--out", "head"),
             ("export", "MobileNetV2", "--weights", deepsort_weights, *size, "--head", "head/head.keras", "--name", "steer")]
    for step in steps:
        proc = edgeft(*step, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    sim, summary = drive_and_sim(tmp_path / "models" / "steer", 120, "--strict", cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr
    metrics = json.loads(sim.stdout)
    assert metrics["completed"] and metrics["off_road_s"] == 0 and metrics["distance_m"] >= 120
    assert metrics["mean_abs_cte_m"] < 0.5 and math.isfinite(metrics["max_abs_cte_m"])
    assert metrics["ticks"] <= summary["ticks"] <= metrics["ticks"] + 1 and summary["safe_stops"] == {}
