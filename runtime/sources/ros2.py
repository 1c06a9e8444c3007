"""Live ROS 2 camera topics as a rig, through rclpy: `ros2:/front/image_raw`, or several named
cameras (`center=ros2:/front/image_raw --source left=ros2:/left/image_raw`) that become one
source, paired by header stamp with the bags' own `Synchroniser`.

`sensor_msgs/Image` and `CompressedImage` are told apart by the topic's type on the graph and
decoded by `rosimage`, as bag messages are. The subscription callback only files the message:
the newest tick wins (a tick replaced before it was read is counted as dropped) and decoding
happens in `read`, on the pipeline's capture thread, in one place (`_frames`). A camera that stops
publishing is waited for, never reopened: the subscription matches its publisher again when the
driver comes back, and `health()` says how long it has been silent meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..ros2.env import ros
from ..ros2.graph import full_name, message_class, wait_for_cameras
from ..ros2.node import RosNode
from ..ros2.options import RosError
from ..ros2.qos import camera_qos, incompatible, mismatch, reliability
from ..stats import Histogram
from .base import Frame, Source, SourceError, SourceOptions, Tick
from .rosimage import ImageDecodeError, message_to_bgr, recorded_jpeg
from .sync import Synchroniser

log = logging.getLogger("edgeft")
SCHEME = "ros2:"
POLL_S = 0.2  # read() gives an empty tick after this long without one, so a stop is never kept waiting
CLOCK_JUMP_NS = 1_000_000_000  # a camera's stamps going back this far: its clock restarted, pairing starts over


def is_ros2(spec: str) -> bool:
    return spec.startswith(SCHEME)


def mismatch_left(publishers: list[Any]) -> bool:
    """Whether a best-effort publisher (which a reliable subscription never matches) is still there."""
    return any(reliability(p.qos_profile) == "best effort" for p in publishers)


def camera_name(topic: str) -> str:
    """`/front/image_raw` -> 'front', as bag topics are named."""
    return topic.strip("/").split("/")[0] or "camera"


@dataclass
class CameraHealth:
    """What diagnostics say about one camera topic (a snapshot: `Ros2Source.health`)."""

    camera: str
    topic: str
    msgtype: str
    qos: str
    received: int = 0
    last_mono: float | None = None  # when its newest message arrived
    publishers: int = 0
    incompatible: str | None = None  # a publisher whose QoS can never match, in one line
    unstamped: bool = False  # its headers carry no stamp: frames are stamped on arrival


@dataclass(frozen=True)
class _Arrived:
    camera: str
    stamp_ns: int
    msg: Any
    wall: float
    mono: float


class Ros2Source(Source):
    live = True

    def __init__(self, name: str, spec: str, options: SourceOptions, cameras: dict[str, str] | None = None):
        super().__init__(name, spec, options)
        topic = spec[len(SCHEME):] if is_ros2(spec) else spec
        self.named = cameras or ({name: topic} if topic else None)  # None: the graph's only image topic
        self.cameras: dict[str, str] = {}
        self._ros: RosNode | None = None
        self._subscriptions: list[Any] = []

    @property
    def camera_names(self) -> list[str]:
        return list(self.cameras)

    def _open(self) -> None:
        bag = self.options.bag
        if bag.truth_topic or bag.truth_field or bag.start_s is not None or bag.end_s is not None:
            raise SourceError("--truth-topic, --truth-field, --start and --end are for recorded bags, not live ROS 2 topics")
        ros, topics = self.options.ros, {c: full_name(t) for c, t in self.named.items()} if self.named else None
        self._ros = RosNode.acquire(ros, ros.node_name)
        try:
            types = wait_for_cameras(self._ros, list(topics.values()) if topics else None, ros.wait_s)
            self.cameras = topics or {camera_name(t): t for t in types}
            self._start(types)
        except BaseException:
            self._close()
            raise

    def _start(self, types: dict[str, str]) -> None:
        node, choice = self._ros.node, self.options.ros.qos
        for topic in self.cameras.values():
            reason = mismatch(topic, node.get_publishers_info_by_topic(topic), choice)
            if reason:
                raise RosError(reason)
        self._cond = threading.Condition()
        self._pending: list[_Arrived] | None = None
        self._formed = self._dropped = self._index = 0
        self._health = {c: CameraHealth(c, t, types[t], choice) for c, t in self.cameras.items()}
        self._sync = self._synchroniser()
        self._skews = Histogram(low=1e-6, high=10.0)
        self._last_stamp: dict[str, int] = {}
        self._subscriptions = [node.create_subscription(message_class(types[topic]), topic, self._receiver(camera), camera_qos(choice),
                                                        event_callbacks=self._events(camera))
                               for camera, topic in self.cameras.items()]

    def _synchroniser(self) -> Synchroniser | None:
        bag = self.options.bag
        return Synchroniser(list(self.cameras), bag.tolerance_s, bag.skip_incomplete, eager=True) if len(self.cameras) > 1 else None

    def _events(self, camera: str) -> Any:
        return ros().SubscriptionEventCallbacks(incompatible_qos=lambda event: self._incompatible(camera, event))

    def _close(self) -> None:
        if self._ros is None:
            return
        for subscription in self._subscriptions:
            self._ros.node.destroy_subscription(subscription)
        self._subscriptions = []
        self._ros.release()
        self._ros = None

    def read(self) -> Tick | None:
        with self._cond:
            if self._pending is None:
                self._cond.wait(POLL_S)
            tick, self._pending = self._pending, None
            if tick is None:
                return []
            dropped, self._dropped, index = self._dropped, 0, self._index
        return self._frames(index, tick, dropped)

    def _frames(self, index: int, tick: list[_Arrived], dropped: int) -> list[Frame]:
        """The tick's messages decoded side by side (the decode pool, as bags do), at the model's size."""
        frames = []
        for arrived, decoded in zip(tick, self.decoder.map(self._decode, tick)):
            msg = arrived.msg
            image, invalid = (None, f"{arrived.camera}: {decoded}") if isinstance(decoded, str) else (decoded, None)
            frames.append(Frame(arrived.camera, index, image, t_capture=arrived.wall, t_mono=arrived.mono,
                                stamp=arrived.stamp_ns / 1e9, stamp_ns=arrived.stamp_ns, frame_id=msg.header.frame_id,
                                invalid=invalid, jpeg=recorded_jpeg(msg) if image is not None else None, dropped=dropped))
        return frames

    def _decode(self, arrived: _Arrived) -> np.ndarray | str:
        """The message's image, or why it holds none."""
        try:
            return message_to_bgr(arrived.msg, self.fit)
        except ImageDecodeError as exc:
            return str(exc)

    def _receiver(self, camera: str):
        def receive(msg: Any) -> None:
            wall, mono = time.time(), time.monotonic()
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with self._cond:
                health = self._health[camera]
                health.received, health.last_mono = health.received + 1, mono
                if stamp_ns == 0:
                    health.unstamped, stamp_ns = True, time.time_ns()
                self._file(_Arrived(camera, stamp_ns, msg, wall, mono))

        return receive

    def _file(self, arrived: _Arrived) -> None:
        """Single camera: the message is the tick. A rig: paired by stamp, complete ticks at once."""
        if self._sync is None:
            return self._offer([arrived])
        last = self._last_stamp.get(arrived.camera)
        if last is not None and arrived.stamp_ns < last - CLOCK_JUMP_NS:
            log.warning("edgeft: %s: stamps went back %.1f s (a restarted clock?): camera pairing starts over",
                        arrived.camera, (last - arrived.stamp_ns) / 1e9)
            self._sync, self._last_stamp = self._synchroniser(), {}
        self._last_stamp[arrived.camera] = arrived.stamp_ns
        self._sync.add(arrived.camera, arrived.stamp_ns / 1e9, arrived)
        while (tick := self._sync.pop()) is not None:
            if len(tick.frames) > 1:
                self._skews.add(tick.skew)
            self._offer([w.payload for w in tick.frames])

    def _offer(self, tick: list[_Arrived]) -> None:
        if self._pending is not None:
            self._dropped += 1
        self._pending, self._index = tick, self._formed
        self._formed += 1
        self._cond.notify()

    def _incompatible(self, camera: str, event: Any) -> None:
        reason = incompatible(self.cameras[camera], event, self.options.ros.qos)
        with self._cond:
            first = self._health[camera].incompatible is None
            self._health[camera].incompatible = reason
        if first:
            log.warning("edgeft: %s", reason)

    def health(self) -> list[CameraHealth]:
        """Each camera's state now, for diagnostics."""
        if self._ros is None:
            return []
        with self._cond:
            snapshot = [replace(h) for h in self._health.values()]
        for health in snapshot:
            publishers = self._ros.node.get_publishers_info_by_topic(health.topic)
            health.publishers = len(publishers)
            if health.incompatible and self.options.ros.qos == "reliable" and not mismatch_left(publishers):
                with self._cond:  # the best-effort publisher that could not match has gone
                    self._health[health.camera].incompatible = health.incompatible = None
        return snapshot

    def end_notes(self) -> list[str]:
        notes = [f"{h.camera}: ros2:{h.topic} has no header stamps: its frames were stamped on arrival"
                 for h in self._health.values() if h.unstamped] if self._opened else []
        sync = self._sync if self._opened else None
        if sync is not None and sync.tolerance is not None:
            p50, p99 = self._skews.percentiles((50, 99)) if self._skews.count else (0.0, 0.0)
            policy = "skipped" if self.options.bag.skip_incomplete else "run on the cameras present"
            notes.append(f"{self.name}: {len(self.cameras)} cameras paired within ±{sync.tolerance * 1000:.1f} ms; cross-camera "
                         f"skew p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; {sync.incomplete} incomplete ticks ({policy})")
        return notes
