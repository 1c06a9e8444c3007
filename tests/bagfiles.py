"""Test helper: ROS bags written with rosbags' own writers from real footage, with the faults
real rigs have (jittered stamps, dropped frames, steering at its own rate)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

STEERING_MSG = """std_msgs/Header header
float32 steering_wheel_angle
float32 speed
"""
STEERING_TYPE = "dbw_mkz_msgs/msg/SteeringReport"
OTHER_STEERING_MSG = """std_msgs/Header header
float32 angle
"""
T0 = 1_479_425_441.0  # stamps like Udacity's 2016 recordings
CAMERAS = ("left", "center", "right")


def steering_at(t: float) -> float:
    """The known truth signal: linear in time, so linear interpolation reproduces it exactly."""
    return 0.25 - 0.03 * (t - T0)


@dataclass
class RigBag:
    path: Path
    stamps: dict[str, list[float]]  # per camera, per tick (NaN where the frame was dropped)
    jpegs: dict[str, list[bytes]] = field(repr=False)
    truth_range: tuple[float, float] = (0.0, 0.0)


def footage(video: Path, count: int, size=(96, 72)) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(video)), []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    return frames


def typestore(ros1: bool):
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg(STEERING_MSG, STEERING_TYPE))
    store.register(get_types_from_msg(OTHER_STEERING_MSG, "other_msgs/msg/Steer"))
    return store


def write_rig_bag(path: Path, frames: list[np.ndarray], period: float = 0.05, jitter: float = 0.004,
                  dropped: dict[str, set[int]] | None = None, raw: bool = False, truth_hz: float = 37.0,
                  truth_margin: tuple[float, float] = (0.12, 0.1), seed: int = 0, truth_nan: frozenset[int] = frozenset(),
                  truth_type: str = "dbw_mkz_msgs/msg/SteeringReport") -> RigBag:
    """Three cameras in Udacity's layout (the views shifted left/right of centre) plus a steering
    report; `.bag` writes ROS 1, a folder name ROS 2 sqlite3, a `.mcap` name ROS 2 mcap. The
    steering samples numbered in `truth_nan` are NaN, as a CAN reader writes an invalid reading;
    `truth_type` "other_msgs/msg/Steer" puts a type without `steering_wheel_angle` on the topic."""
    from rosbags.rosbag1 import Writer as Writer1
    from rosbags.rosbag2 import StoragePlugin
    from rosbags.rosbag2 import Writer as Writer2

    ros1 = path.suffix == ".bag"
    store = typestore(ros1)
    types = store.types
    Time = types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(seed)
    dropped = dropped or {}
    if ros1:
        writer = Writer1(path)
    else:
        plugin = StoragePlugin.MCAP if path.suffix == ".mcap" else StoragePlugin.SQLITE3
        writer = Writer2(path.with_suffix("") if path.suffix == ".mcap" else path, version=9, storage_plugin=plugin)
    serialize = store.serialize_ros1 if ros1 else store.serialize_cdr
    image_type = "sensor_msgs/msg/Image" if raw else "sensor_msgs/msg/CompressedImage"
    steer_type = truth_type

    def header(stamp: float):
        sec = int(stamp)
        time = Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9)))
        fields = {"stamp": time, "frame_id": "base_link"}
        return types["std_msgs/msg/Header"](seq=0, **fields) if ros1 else types["std_msgs/msg/Header"](**fields)

    records = []  # (record time, topic, message)
    bag = RigBag(path, {c: [] for c in CAMERAS}, {c: [] for c in CAMERAS})
    for i, frame in enumerate(frames):
        for shift, camera in zip((-12, 0, 12), CAMERAS):
            view = np.roll(frame, shift, axis=1)
            jpeg = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            if i in dropped.get(camera, set()):
                bag.stamps[camera].append(float("nan"))
                bag.jpegs[camera].append(b"")
                continue
            stamp = T0 + i * period + float(rng.uniform(-jitter, jitter))
            bag.stamps[camera].append(stamp)
            bag.jpegs[camera].append(jpeg)
            if raw:
                rgb = cv2.cvtColor(view, cv2.COLOR_BGR2RGB)
                msg = types[image_type](header=header(stamp), height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                                        is_bigendian=0, step=rgb.shape[1] * 3, data=rgb.reshape(-1))
            else:
                msg = types[image_type](header=header(stamp), format="jpeg", data=np.frombuffer(jpeg, np.uint8))
            topic = f"/{camera}_camera/image_color" + ("" if raw else "/compressed")
            records.append((stamp + 0.002, topic, image_type, msg))
    start, end = T0 + truth_margin[0], T0 + (len(frames) - 1) * period - truth_margin[1]
    bag.truth_range = (start, end)
    for n, t in enumerate(np.arange(start, end + 1e-9, 1.0 / truth_hz)):
        value = np.float32("nan" if n in truth_nan else steering_at(float(t)))
        fields = {"steering_wheel_angle": value, "speed": np.float32(10)} if steer_type == STEERING_TYPE else {"angle": value}
        msg = types[steer_type](header=header(float(t)), **fields)
        records.append((float(t) + 0.001, "/vehicle/steering_report", steer_type, msg))
    records.sort(key=lambda r: r[0])
    with writer:
        connections = {}
        for record_time, topic, msgtype, msg in records:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], int(record_time * 1e9), serialize(msg, msgtype))
    if not ros1 and path.suffix == ".mcap":
        bag.path = path.with_suffix("") / f"{path.with_suffix('').name}.mcap"
    return bag


def write_image_bag(path: Path, images: list[np.ndarray], topic: str = "/camera/image_raw", period: float = 0.05) -> Path:
    """One camera of raw bgr8 `sensor_msgs/Image`s, as given: a 0x0 array becomes a message with
    no pixels (height, width and step 0), as a misbehaving driver publishes it."""
    from rosbags.rosbag1 import Writer

    store = typestore(True)
    types = store.types
    with Writer(path) as writer:
        connection = writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=store)
        for i, image in enumerate(images):
            stamp = T0 + i * period
            sec = int(stamp)
            header = types["std_msgs/msg/Header"](seq=i, stamp=types["builtin_interfaces/msg/Time"](
                sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id="camera")
            height, width = image.shape[:2]
            msg = types["sensor_msgs/msg/Image"](header=header, height=height, width=width, encoding="bgr8", is_bigendian=0,
                                                 step=width * 3, data=np.ascontiguousarray(image).reshape(-1))
            writer.write(connection, int((stamp + 0.002) * 1e9), store.serialize_ros1(msg, "sensor_msgs/msg/Image"))
    return path
