"""edgeft drive: round trip (telemetry in -> command out) vs pure decode + inference, side by side.

    .venv/bin/python benchmarks/drive_latency.py [--model models/mobilenetv2-steering] [--frames 300]

The same 320x160 road frames (JPEG q75, base64, as the Udacity simulator sends them) go through:
  pure      base64 decode + JPEG decode + Engine.predict + steering, in a loop (no network), back to back
            and with a 2 ms pause between frames (as a client's own work spaces them);
  udacity   a Unity-style client on loopback with one telemetry in flight at a time: the server's
            round trip (read off the socket -> reply written) and the client's (send -> reply read);
  unity x2  the released client's two telemetry chains: each frame may wait for the other's inference;
  donkey    a stand-in Donkey simulator pushing 20 Hz telemetry for 10 s: are frames answered, or queued?
Arms alternate (pure, udacity, pure, udacity, ...) so a busy neighbour on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import base64
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from edgeft.drive import DonkeyClient, DonkeyConfig, DriveConfig, DriveStats, Outputs, UdacityConfig, UdacityServer, drive  # noqa: E402
from edgeft.drive.road import View, curvature, render  # noqa: E402
from edgeft.runtime import Engine, Histogram, decode  # noqa: E402
from edgeft.runtime.cpu import cpu_info  # noqa: E402


def frames(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    views = [View(curvature(s), 0.3 * np.sin(s / 7), 0.05 * np.cos(s / 5), s) for s in np.linspace(0, 240, count)]
    return [cv2.imencode(".jpg", render(v, rng), [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes() for v in views]


def pure(engine: Engine, encoded: list[str], pause_s: float = 0.0) -> list[float]:
    """`pause_s` sleeps between frames as the loop's client does: on a machine shared with other
    busy processes the scheduler favours a thread that sleeps, so back-to-back frames run slower."""
    times = []
    for text in encoded:
        time.sleep(pause_s)
        start = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(base64.b64decode(text), np.uint8), cv2.IMREAD_COLOR)
        decode(engine.manifest, engine.predict(image).outputs)
        times.append((time.perf_counter() - start) * 1000)
    return times


def start_server(engine: Engine):
    stats = DriveStats()
    outputs = Outputs([], None, stats)
    server = UdacityServer(engine, DriveConfig(), stats, outputs, UdacityConfig(port=0))
    ready = threading.Event()
    thread = threading.Thread(target=lambda: drive(server, outputs, stats, handle_signals=False, started=ready.set), daemon=True)
    thread.start()
    ready.wait(30)
    return server, stats, thread


def one_in_flight(port: int, encoded: list[str]) -> list[float]:
    """The Unity client's framing, one chain: each telemetry waits for its reply."""
    from websockets.sync.client import connect

    times = []
    with connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", compression=None, ping_interval=None) as ws:
        ws.recv(timeout=10)  # the open packet
        for text in encoded:
            message = '42["telemetry",{"steering_angle":"0.0000","throttle":"0.3000","speed":"9.0000","image":"%s"}]' % text
            start = time.perf_counter()
            ws.send(message)
            while not ws.recv(timeout=10).startswith('42["steer"'):
                pass
            times.append((time.perf_counter() - start) * 1000)
        ws.send("41")
    return times


def two_chains(port: int, jpegs: list[bytes]) -> None:
    from unity_client import UnityClient

    UnityClient(port, jpegs, speed="9.0000").run(len(jpegs), timeout_s=300, hold=0.5)


def donkey(engine: Engine, jpegs: list[bytes], seconds: float = 10.0) -> dict:
    from donkey_server import DonkeyServer

    stats = DriveStats()
    outputs = Outputs([], None, stats)
    with DonkeyServer(jpegs, telemetries=int(20 * seconds)) as server:
        client = DonkeyClient(engine, DriveConfig(), stats, outputs, DonkeyConfig(port=server.port))
        drive(client, outputs, stats, handle_signals=False)
    return {"telemetry": stats.telemetry, "commands": stats.ticks, "drops": stats.drops,
            "round_trip": stats.as_dict()["round_trip_ms"], "controls": len(server.log.controls) - 1}


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mobilenetv2-steering")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.model.is_dir():
        raise SystemExit(f"{args.model} is not a bundle: run ./quickstart.sh first (it makes models/mobilenetv2-steering)")
    engine = Engine.load(args.model, device=args.device)
    jpegs = frames(args.frames)
    encoded = [base64.b64encode(j).decode() for j in jpegs]
    server, stats, thread = start_server(engine)
    pure(engine, encoded[:20])  # warm-up
    one_in_flight(server.port, encoded[:20])
    arms: dict[str, list[float]] = {"pure": [], "paced": [], "client": []}
    for _ in range(args.rounds):
        arms["pure"] += pure(engine, encoded)
        arms["paced"] += pure(engine, encoded, pause_s=0.002)
        before = stats.round_trip.count
        arms["client"] += one_in_flight(server.port, encoded)
        assert stats.round_trip.count - before == len(encoded)
    server_p50, server_p99 = stats.round_trip.percentiles((50, 99))
    stats.round_trip = Histogram()  # the two-chain arm gets its own
    two_chains(server.port, jpegs)
    chains_p50, chains_p99 = stats.round_trip.percentiles((50, 99))
    server.finished.set()
    thread.join(30)
    don = donkey(engine, jpegs)

    pure_p50 = p(arms["pure"], 50)
    print(f"edgeft drive latency: {args.model.name} on {engine.provider}, {len(jpegs)} frames x {args.rounds} rounds")
    print(f"CPU: {cpu_info().describe()}")
    print(f"{'arm':<44} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs pure':>12}")
    rows = [("pure: b64 + JPEG decode + inference", pure_p50, p(arms["pure"], 99)),
            ("pure, 2 ms pause between frames", p(arms["paced"], 50), p(arms["paced"], 99)),
            ("udacity, server: telemetry in -> command out", server_p50, server_p99),
            ("udacity, client: send -> reply read", p(arms["client"], 50), p(arms["client"], 99)),
            ("unity x2 chains, server round trip", chains_p50, chains_p99)]
    for name, p50, p99 in rows:
        print(f"{name:<44} {p50:>8.2f} {p99:>8.2f} {p50 / pure_p50:>11.2f}x")
    paced = p(arms["paced"], 50)
    print(f"protocol cost at p50: server round trip - pure {server_p50 - pure_p50:+.2f} ms, - paced pure {server_p50 - paced:+.2f} ms "
          f"({server_p50 / paced:.2f}x)")
    print(f"donkey at 20 Hz for 10 s: {don['telemetry']} frames, {don['commands']} commands, {don['drops']} replaced before "
          f"they ran, {don['controls']} controls received; round trip {don['round_trip']}")


if __name__ == "__main__":
    main()
