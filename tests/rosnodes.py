"""Genuine rclpy processes for the ROS 2 tests, and the domain each test has to itself.

    python tests/rosnodes.py camera --out LOG --hz 25 --seconds 30 --footage CLIP cam=/cam:bgr8 ...
        publishes real footage: kinds bgr8, mono8, padded (bgr8 rows with padding), jpeg
        (CompressedImage), yuv422 (an encoding edgeft does not read); every message it sends is
        logged (topic, index, stamp) to LOG
    python tests/rosnodes.py listen --out LOG --seconds 20 /edgeft/prediction=std_msgs/msg/String ...
        logs every message it receives, and each topic's publisher count as the graph sees it

Both write JSON lines and flush each one, so a test can follow them while they run. A test's
processes share a ROS_DOMAIN_ID no other running test holds (a lock file per domain), with
discovery limited to this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from bagfiles import footage  # what a camera publishes (the tests compute the same frames)

DOMAINS = range(120, 231)
SIZE = (96, 72)  # footage is published this small: the tests are about transport, not pixels
FRAMES_DEFAULT = 40  # frames of footage a camera cycles through (index % 40)


@contextlib.contextmanager
def ros_domain() -> Iterator[dict[str, str]]:
    """An environment for a test's processes: a domain held by no other test on this machine."""
    for domain in DOMAINS:
        handle = open(Path(tempfile.gettempdir()) / f"edgeft-test-ros-domain-{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        try:
            yield dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
        finally:
            handle.close()
        return
    raise RuntimeError("every test ROS domain is taken")


class Process:
    """A child process with its output in a file, stopped (SIGTERM, then SIGKILL) when the test ends."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "w")
        self.popen = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)
        finally:
            self._out.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(signal.SIGKILL if exc[0] else signal.SIGTERM)


RICHER_MSGS = Path(__file__).resolve().parent / "rosmsgs" / ".out" / "install"  # tests/rosmsgs/build.sh


def with_richer_msgs(env: dict[str, str]) -> dict[str, str]:
    """`env` with the ackermann_msgs and vision_msgs that build.sh made importable (extended, not
    replaced: rclpy's wheels put their own libraries on LD_LIBRARY_PATH)."""
    site = next(RICHER_MSGS.glob("lib/python3*/site-packages"))
    joined = {name: os.pathsep.join(filter(None, (str(path), env.get(name, ""))))
              for name, path in (("PYTHONPATH", site), ("LD_LIBRARY_PATH", RICHER_MSGS / "lib"))}
    return {**env, **joined}


def start(kind: str, args: list[str], env: dict[str, str], log: Path) -> Process:
    return Process([sys.executable, str(Path(__file__)), kind, *args], env, log)


def edgeft(args: list[str], env: dict[str, str], log: Path) -> Process:
    return Process([sys.executable, "-m", "edgeft", *args], env, log)


def read_lines(path: Path) -> list[dict]:
    """The complete lines written so far."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def wait_for(condition, timeout: float, what: str):
    """Poll `condition` until it gives something true; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def jpeg(frame: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def published_image(kind: str, frame: np.ndarray) -> np.ndarray:
    """The image a camera of `kind` shows for `frame`, decoded as any reader would."""
    if kind == "mono8":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if kind == "jpeg":
        return cv2.imdecode(np.frombuffer(jpeg(frame), np.uint8), cv2.IMREAD_COLOR)
    return frame


def _message(kind: str, frame: np.ndarray):
    from sensor_msgs.msg import CompressedImage, Image

    if kind == "jpeg":
        return CompressedImage(format="jpeg", data=jpeg(frame))
    if kind == "yuv422":  # an encoding edgeft does not decode: its frames are reported invalid, never guessed at
        height, width = frame.shape[:2]
        return Image(height=height, width=width, encoding="yuv422", is_bigendian=0, step=width * 2, data=bytes(width * 2 * height))
    pixels = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if kind == "mono8" else frame
    height, width = pixels.shape[:2]
    row = pixels[0].nbytes
    step = row + (13 if kind == "padded" else 0)  # an odd pad, as some drivers align rows
    data = np.full((height, step), 0xAB, np.uint8)
    data[:, :row] = pixels.reshape(height, row)
    return Image(height=height, width=width, encoding="mono8" if kind == "mono8" else "bgr8", is_bigendian=0, step=step,
                 data=data.tobytes())


def run_camera(args: argparse.Namespace) -> None:
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    frames = footage(Path(args.footage), args.frames, SIZE)
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("test_camera")
    reliability = ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT
    qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
    cameras = []
    rng = np.random.default_rng(args.seed)
    for spec in args.cameras:  # name=/topic:kind
        name, rest = spec.split("=", 1)
        topic, kind = rest.rsplit(":", 1)
        msg_type = type(_message(kind, frames[0]))
        cameras.append((name, topic, kind, node.create_publisher(msg_type, topic, qos)))
    log = open(args.out, "a")
    period, started = 1.0 / args.hz, time.monotonic()
    index = args.first_index
    try:
        publish(cameras, frames, rng, log, args, started, period, index)
    finally:  # SIGTERM too: the node leaves the graph at once (SIGKILL is what tests use for a driver that dies)
        node.destroy_node()
        rclpy.shutdown()


def publish(cameras, frames, rng, log, args, started: float, period: float, index: int) -> None:
    while time.monotonic() - started < args.seconds:
        now = time.time_ns()
        for name, topic, kind, publisher in cameras:
            msg = _message(kind, frames[index % len(frames)])
            stamp = now + int(rng.uniform(-args.jitter_ms, args.jitter_ms) * 1e6)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            msg.header.frame_id = f"{name}_optical"
            publisher.publish(msg)
            log.write(json.dumps({"camera": name, "topic": topic, "kind": kind, "index": index, "stamp_ns": stamp}) + "\n")
        log.flush()
        index += 1
        time.sleep(max(0.0, started + (index - args.first_index) * period - time.monotonic()))


def _plain(msg) -> object:
    """A received message as JSON values."""
    kind = type(msg).__name__
    if kind == "DiagnosticArray":
        return [{"name": s.name, "level": s.level[0] if isinstance(s.level, bytes) else int(s.level), "message": s.message,
                 "hardware_id": s.hardware_id, "values": {kv.key: kv.value for kv in s.values}} for s in msg.status]
    if kind == "Float32MultiArray":
        return {"data": [float(v) for v in msg.data], "label": msg.layout.dim[0].label if msg.layout.dim else None}
    if kind in ("AckermannDriveStamped", "Classification"):
        header = {"stamp_ns": msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, "frame_id": msg.header.frame_id}
        if kind == "AckermannDriveStamped":
            return {**header, "steering_angle": msg.drive.steering_angle, "speed": msg.drive.speed}
        return {**header, "results": [[h.class_id, h.score] for h in msg.results]}
    return msg.data if kind in ("String", "Float32", "Float64") else str(msg)


def run_listener(args: argparse.Namespace) -> None:
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("test_listener")
    log = open(args.out, "a")
    qos = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

    def logger(topic: str):
        def write(msg) -> None:
            log.write(json.dumps({"topic": topic, "t": time.time(), "data": _plain(msg)}) + "\n")
            log.flush()

        return write

    topics = []
    for spec in args.topics:  # /topic=pkg/msg/Type
        topic, type_name = spec.split("=", 1)
        package, _, message = type_name.split("/")
        node.create_subscription(getattr(importlib.import_module(f"{package}.msg"), message), topic, logger(topic), qos)
        topics.append(topic)
    started, last_count = time.monotonic(), 0.0
    while time.monotonic() - started < args.seconds:
        rclpy.spin_once(node, timeout_sec=0.05)
        if time.monotonic() - last_count >= 0.25:
            last_count = time.monotonic()
            counts = {topic: node.count_publishers(topic) for topic in topics}
            log.write(json.dumps({"topic": "#publishers", "t": time.time(), "data": counts}) + "\n")
            log.flush()
    node.destroy_node()
    rclpy.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="kind", required=True)
    camera = sub.add_parser("camera")
    camera.add_argument("--out", required=True)
    camera.add_argument("--footage", required=True)
    camera.add_argument("--frames", type=int, default=FRAMES_DEFAULT)
    camera.add_argument("--hz", type=float, default=25.0)
    camera.add_argument("--seconds", type=float, default=30.0)
    camera.add_argument("--jitter-ms", type=float, default=0.0)
    camera.add_argument("--first-index", type=int, default=0)
    camera.add_argument("--seed", type=int, default=0)
    camera.add_argument("--reliable", action="store_true")
    camera.add_argument("cameras", nargs="+")
    listen = sub.add_parser("listen")
    listen.add_argument("--out", required=True)
    listen.add_argument("--seconds", type=float, default=30.0)
    listen.add_argument("topics", nargs="+")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # rclpy's own handlers are not installed
    (run_camera if args.kind == "camera" else run_listener)(args)


if __name__ == "__main__":
    main()
