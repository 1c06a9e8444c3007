"""ROS 2 latency and soak: camera stamp -> prediction published, against decode + Engine.predict.

    .venv/bin/python benchmarks/ros2_latency.py latency [--seconds 30] [--models mobilenetv2,inceptionv3]
    .venv/bin/python benchmarks/ros2_latency.py soak [--minutes 10]

Three genuine rclpy processes on one ROS domain (loopback): a camera publishing real footage
upscaled to 1280x720 as sensor_msgs/Image bgr8, stamped when sent; a real `edgeft run --source
ros2:/cam --publish ros2:`; a listener that notes, for every /edgeft/prediction, the time it
arrived minus the frame's header stamp. That is the whole path a vehicle sees (serialise, DDS,
deserialise, decode, resize, infer, publish, DDS again). First, the transport alone: the same
camera to a plain rclpy subscriber of its Image, so the node's own share can be told apart from
what any subscriber of a 2.7 MB frame pays. The camera's Fast DDS gets a shared-memory
segment that holds a 2.7 MB frame (`fastdds_large_shm.xml`: with the default 512 KB segment, best-
effort 720p frames go as UDP fragments and most are lost); edgeft runs as installed. Beside it, in this process and in the
same run, the same messages are decoded with `rosimage.message_to_bgr` and run with
`Engine.predict`, before and after the ROS run. Bundles are random-weight exports, made once
into benchmarks/.work (InceptionV3 takes ~6.5 GB and ~20 s to export).

`soak`: three 720p cameras at 20 Hz into one MobileNetV2 rig for `--minutes`; every 30 s the
edgeft process's RSS and the last window's end-to-end latency and drops, so a queue that grows
shows as latency that grows.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clip_frames, cpu_line, ensure_bundle, pct  # noqa: E402

SIZE = (1280, 720)
LARGE_SHM = Path(__file__).resolve().parent / "fastdds_large_shm.xml"  # the camera's Fast DDS: 2.7 MB frames fit shared memory
MODELS = {"mobilenetv2": ("MobileNetV2", 224), "inceptionv3": ("InceptionV3", 299)}


def frames_720p(count: int) -> list[np.ndarray]:
    return [cv2.resize(f, SIZE, interpolation=cv2.INTER_CUBIC) for _, f in zip(range(count), clip_frames())]


def image_message(frame: np.ndarray, stamp_ns: int):
    from sensor_msgs.msg import Image

    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", is_bigendian=0, step=frame.shape[1] * 3,
                data=array.array("B", frame.tobytes()))  # an array: rclpy copies it whole, bytes it checks one by one
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = "camera_optical"
    return msg


def camera(topics: list[str], hz: float, seconds: float) -> None:
    """Publish real 720p footage on every topic at `hz`, stamped at sending (sensor-data QoS)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    frames = frames_720p(32)
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_camera")
    publishers = [node.create_publisher(Image, topic, qos_profile_sensor_data) for topic in topics]
    started, index = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        for publisher in publishers:
            publisher.publish(image_message(frames[index % len(frames)], time.time_ns()))
        index += 1
        time.sleep(max(0.0, started + index / hz - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown()


def listen(topics: list[str], out: str, seconds: float) -> None:
    """For every prediction: arrival - header stamp (ms), edgeft's own latency and frame age, drops.
    A topic given as `TOPIC:image` is a camera's: arrival - stamp of each Image (the transport alone)."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_listener")
    log = open(out, "w")

    def arrived(msg) -> None:
        now, p = time.time_ns(), json.loads(msg.data)
        stamp = p["header"]["stamp"]["sec"] * 1_000_000_000 + p["header"]["stamp"]["nanosec"]
        log.write(json.dumps({"t": now / 1e9, "e2e_ms": (now - stamp) / 1e6, "edgeft_ms": p["latency_ms"],
                              "dropped": p["dropped"], "camera": p["camera"]}) + "\n")
        log.flush()

    def image(msg) -> None:
        now, stamp = time.time_ns(), msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        log.write(json.dumps({"t": now / 1e9, "e2e_ms": (now - stamp) / 1e6, "dropped": 0}) + "\n")
        log.flush()

    for topic in topics:
        if topic.endswith(":image"):
            node.create_subscription(Image, topic.removesuffix(":image"), image, qos_profile_sensor_data)
        else:
            node.create_subscription(String, topic, arrived, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


def helper(kind: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, kind, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ros_env(domain: int) -> dict:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")


def in_process(bundle: Path, device: str, count: int) -> tuple[list[float], str]:
    """decode (message_to_bgr) + Engine.predict per 720p message, ms; and what ran it."""
    from edgeft.runtime import Engine
    from edgeft.runtime.sources.rosimage import message_to_bgr

    engine = Engine.load(bundle, device=device)
    messages = [image_message(f, 0) for f in frames_720p(16)]
    for msg in messages[:4]:
        engine.predict(message_to_bgr(msg))
    times = []
    for i in range(count):
        start = time.perf_counter()
        engine.predict(message_to_bgr(messages[i % len(messages)]))
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.02)  # paced like the camera, not back to back
    return times, engine.provider


def ros_run(bundle: Path, device: str, hz: float, seconds: float, cameras: int, domain: int, work: Path,
            sample=None) -> list[dict]:
    """The three processes for `seconds` of frames; the listener's rows. `sample(pid)` is called
    every 30 s while edgeft runs (the soak)."""
    env, out = ros_env(domain), work / f"listen-{domain}.jsonl"
    topics = [f"/cam{i}" for i in range(cameras)]
    sources = [arg for i, t in enumerate(topics) for arg in ("--source", f"cam{i}=ros2:{t}")]
    predictions = ["/edgeft/prediction"] if cameras == 1 else [f"/edgeft/cam{i}/prediction" for i in range(cameras)]
    listener = helper("listen", "--out", str(out), "--seconds", str(seconds + 40), *predictions, env=env)
    node = subprocess.Popen([sys.executable, "-m", "edgeft", "run", "--model", str(bundle), "--device", device, *sources,
                             "--publish", "ros2:", "--ros-wait", "60", "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # imports, bundle, discovery
    camera_env = {"FASTDDS_DEFAULT_PROFILES_FILE": str(LARGE_SHM), **env}  # a driver set up for large frames (see the file)
    cam = helper("camera", "--hz", str(hz), "--seconds", str(seconds), *topics, env=camera_env)
    started = time.monotonic()
    while cam.poll() is None:
        time.sleep(1)
        if sample is not None and time.monotonic() - started >= 30 * (len(sample.rows) + 1):
            sample(node.pid)
    time.sleep(2)
    node.terminate()
    _, errors = node.communicate(timeout=30)
    listener.wait(60)
    if node.returncode not in (0, 143):
        raise SystemExit(f"edgeft run failed ({node.returncode}): {errors[-2000:]}")
    return [json.loads(line) for line in out.read_text().splitlines()]


def transport(hz: float, seconds: float, domain: int, work: Path) -> list[float]:
    """Camera stamp -> a plain rclpy subscriber holding the Image, ms: what any node pays for the
    frame (the camera's serialising, DDS, rclpy deserialising) before its own work begins."""
    env, out = ros_env(domain), work / f"transport-{domain}.jsonl"
    listener = helper("listen", "--out", str(out), "--seconds", str(seconds + 8), "/cam0:image", env=env)
    time.sleep(3)
    cam = helper("camera", "--hz", str(hz), "--seconds", str(seconds), "/cam0",
                 env={"FASTDDS_DEFAULT_PROFILES_FILE": str(LARGE_SHM), **env})
    cam.wait(seconds + 30)
    listener.wait(60)
    return [json.loads(line)["e2e_ms"] for line in out.read_text().splitlines()][20:]


def latency(args: argparse.Namespace, work: Path) -> None:
    print(f"CPU: {cpu_line()}\nlatency, ms; camera 1280x720 bgr8 Image at the rate given; machine shared with other jobs\n")
    ride = transport(args.hz, 15.0, args.domain + 50, work)
    print(f"transport alone (camera stamp -> a plain rclpy subscriber has the Image), {args.hz:g} Hz: p50 {pct(ride, 50):.1f} ms, "
          f"p99 {pct(ride, 99):.1f} ms, {len(ride)} frames\n")
    print("| model | device | camera Hz | decode+predict p50 / p99 (before, after) | camera stamp -> prediction published p50 / p99 "
          "| overhead p50 | of which the node's, past the transport | frames published / sent | drops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (key, hz) in enumerate((m.split("@")[0], float(m.split("@")[1]) if "@" in m else args.hz) for m in args.models.split(",")):
        name, size = MODELS[key]
        bundle = ensure_bundle(name, size)
        before, provider = in_process(bundle, args.device, 200)
        rows = ros_run(bundle, args.device, hz, args.seconds, 1, args.domain + i, work)
        after, _ = in_process(bundle, args.device, 200)
        e2e = [r["e2e_ms"] for r in rows[20:]]  # past the start
        base = pct(before + after, 50)
        print(f"| {name} {size} | {provider} | {hz:g} | {pct(before, 50):.1f} / {pct(before, 99):.1f}, {pct(after, 50):.1f} / "
              f"{pct(after, 99):.1f} | {pct(e2e, 50):.1f} / {pct(e2e, 99):.1f} | {pct(e2e, 50) - base:+.1f} | "
              f"{pct(e2e, 50) - base - pct(ride, 50):+.1f} | "
              f"{len(rows)} / {int(args.seconds * hz)} | {sum(r['dropped'] for r in rows)} |", flush=True)


class Sampler:
    def __init__(self, out: Path):
        self.out, self.rows = out, []

    def __call__(self, pid: int) -> None:
        rss = next((int(line.split()[1]) / 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("VmRSS:")), float("nan"))
        lines = self.out.read_text().splitlines() if self.out.exists() else []
        window = [json.loads(line) for line in lines if json.loads(line)["t"] > time.time() - 30]
        e2e = [r["e2e_ms"] for r in window] or [float("nan")]
        self.rows.append((len(self.rows) * 30 + 30, rss, pct(e2e, 50), pct(e2e, 99), len(window) / 30,
                          sum(r["dropped"] for r in window)))
        t, rss, p50, p99, fps, drops = self.rows[-1]
        print(f"| {t} | {rss:.0f} | {p50:.1f} | {p99:.1f} | {fps:.1f} | {drops} |", flush=True)


def soak(args: argparse.Namespace, work: Path) -> None:
    name, size = MODELS["mobilenetv2"]
    bundle = ensure_bundle(name, size)
    print(f"CPU: {cpu_line()}\nsoak: 3 x 1280x720 bgr8 Image at {args.hz:g} Hz into {name} {size} (--device {args.device}), "
          f"{args.minutes:g} min; machine shared with other jobs\n")
    print("| s | edgeft RSS MB | e2e p50 ms | e2e p99 ms | predictions/s (3 cameras) | drops in window |")
    print("|---|---|---|---|---|---|")
    sampler = Sampler(work / f"listen-{args.domain}.jsonl")
    ros_run(bundle, args.device, args.hz, args.minutes * 60, 3, args.domain, work, sample=sampler)
    rss = [r[1] for r in sampler.rows]
    half = rss[len(rss) // 2:]
    slope = np.polyfit(np.arange(len(half)) * 0.5, half, 1)[0] if len(half) > 1 else float("nan")
    print(f"\nRSS start {rss[0]:.0f} MB, peak {max(rss):.0f}, end {rss[-1]:.0f}; second half {slope:+.2f} MB/min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in ("latency", "soak"):
        p = sub.add_parser(kind)
        p.add_argument("--hz", type=float, default=20.0)
        p.add_argument("--device", default="cpu")
        p.add_argument("--domain", type=int, default=171)
    sub.choices["latency"].add_argument("--seconds", type=float, default=30.0)
    sub.choices["latency"].add_argument("--models", default="mobilenetv2,inceptionv3",
                                        help="comma separated, each optionally @HZ (e.g. inceptionv3@10)")
    sub.choices["soak"].add_argument("--minutes", type=float, default=10.0)
    cam = sub.add_parser("camera")
    cam.add_argument("--hz", type=float)
    cam.add_argument("--seconds", type=float)
    cam.add_argument("topics", nargs="+")
    lis = sub.add_parser("listen")
    lis.add_argument("--out")
    lis.add_argument("--seconds", type=float)
    lis.add_argument("topics", nargs="+")
    args = parser.parse_args()
    if args.kind == "camera":
        return camera(args.topics, args.hz, args.seconds)
    if args.kind == "listen":
        return listen(args.topics, args.out, args.seconds)
    with tempfile.TemporaryDirectory(prefix="edgeft-ros2-bench-") as work:
        (latency if args.kind == "latency" else soak)(args, Path(work))


if __name__ == "__main__":
    main()
