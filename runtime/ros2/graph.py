"""The live graph: which image topics have publishers, waiting for a camera to appear, and what
`edgeft topics ros2:` shows (types, publishers, their reliability, measured rates)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..errors import first_line
from .env import ros
from .node import RosNode
from .options import RosError, RosOptions
from .qos import camera_qos, reliability

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
POLL_S = 0.1
SETTLE_S = 1.0  # `ros2:` with no topic: discovery goes on this long after the first image topic shows


def full_name(topic: str) -> str:
    """`/front/image_raw` as given, `front/image_raw` made absolute; an invalid name is one line."""
    ros()  # rclpy is there, or one line says how to get it
    from rclpy.validate_full_topic_name import validate_full_topic_name

    name = topic if topic.startswith("/") else f"/{topic}"
    try:
        validate_full_topic_name(name)
    except Exception as exc:  # noqa: BLE001 - rclpy's InvalidTopicNameException
        raise RosError(f"ros2:{topic} is not a valid ROS 2 topic name ({first_line(exc).rstrip(':')})") from None
    return name


def message_class(msgtype: str) -> Any:
    return ros().Image if msgtype == IMAGE_TYPES[0] else ros().CompressedImage


def image_topics(node: Any) -> dict[str, str]:
    """Topic -> message type, for image topics with at least one publisher."""
    return {name: types[0] for name, types in node.get_topic_names_and_types()
            if len(types) == 1 and types[0] in IMAGE_TYPES and node.count_publishers(name)}


def wait_for_cameras(ros_node: RosNode, topics: list[str] | None, wait_s: float) -> dict[str, str]:
    """Topic -> message type of every named topic once each has a publisher (or, with none named,
    of the graph's only image topic), waiting up to `wait_s` for discovery."""
    node, deadline = ros_node.node, time.monotonic() + wait_s
    first_seen = None
    while True:
        found = dict(node.get_topic_names_and_types())
        if topics is not None:
            ready = {t: found[t] for t in topics if t in found and node.count_publishers(t)}
            if len(ready) == len(topics):
                return {t: _image_type(t, types) for t, types in ready.items()}
        else:
            images = image_topics(node)
            first_seen = first_seen or (time.monotonic() if images else None)
            if first_seen and time.monotonic() - first_seen >= SETTLE_S:
                if len(images) == 1:
                    return images
                raise RosError(f"the ROS 2 graph has {len(images)} image topics ({', '.join(sorted(images))}): "
                               "name one, e.g. --source ros2:TOPIC")
        if time.monotonic() >= deadline:
            raise RosError(_not_found(node, topics, wait_s, ros_node.domain))
        time.sleep(POLL_S)


def _image_type(topic: str, types: list[str]) -> str:
    if len(types) != 1 or types[0] not in IMAGE_TYPES:
        raise RosError(f"ros2:{topic} carries {', '.join(types)}, not sensor_msgs/msg/Image or CompressedImage")
    return types[0]


def _not_found(node: Any, topics: list[str] | None, wait_s: float, domain: int) -> str:
    images = ", ".join(sorted(image_topics(node))) or "none"
    what = " or ".join(f"ros2:{t}" for t in topics if not node.count_publishers(t)) if topics else "an image topic"
    return (f"no publisher of {what} on ROS domain {domain} after {wait_s:g} s (image topics there: {images}; "
            "a camera on another domain needs --ros-domain or ROS_DOMAIN_ID, --ros-wait waits longer)")


@dataclass(frozen=True)
class GraphTopic:
    topic: str
    msgtype: str
    publishers: int
    reliability: str  # of its publishers: best effort, reliable, or both
    messages: int  # received while listening
    rate_hz: float | None  # measured; None when fewer than two messages came


def list_image_topics(options: RosOptions, seconds: float) -> tuple[int, list[GraphTopic]]:
    """The ROS domain and its image topics, each listened to (undecoded) for up to `seconds`."""
    ros_node = RosNode.acquire(options, name="edgeft_topics")
    node, seen, subscriptions = ros_node.node, {}, []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for topic, msgtype in image_topics(node).items():
                if topic not in seen:
                    seen[topic] = [0, 0.0, 0.0]  # messages, first, last (monotonic)
                    subscriptions.append(node.create_subscription(message_class(msgtype), topic, _counter(seen[topic]),
                                                                  camera_qos("sensor"), raw=True))
            time.sleep(POLL_S)
        types = dict(node.get_topic_names_and_types())
        return ros_node.domain, [_described(node, topic, types[topic][0] if topic in types else "?", *counts)
                                 for topic, counts in sorted(seen.items())]
    finally:
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
        ros_node.release()


def _counter(counts: list) -> Any:
    def count(_raw: bytes) -> None:
        now = time.monotonic()
        counts[1] = counts[1] if counts[0] else now
        counts[0], counts[2] = counts[0] + 1, now

    return count


def _described(node: Any, topic: str, msgtype: str, messages: int, first: float, last: float) -> GraphTopic:
    publishers = node.get_publishers_info_by_topic(topic)
    offered = sorted({reliability(p.qos_profile) for p in publishers})
    rate = (messages - 1) / (last - first) if messages > 1 and last > first else None
    return GraphTopic(topic, msgtype, len(publishers), " and ".join(offered) or "-", messages, rate)
