"""The QoS edgeft asks for, and a mismatch said in one line.

Cameras: sensor-data QoS by default (best effort, keep last 5), which matches every publisher,
best effort or reliable; `reliable` asks more and never matches a best-effort driver, which is
caught on the graph before subscribing and, for publishers that come later, by rclpy's
incompatible-QoS event. Outputs: reliable, keep last 10, which every subscriber matches.
"""

from __future__ import annotations

from typing import Any

from .env import ros

OUTPUT_DEPTH = 10


def camera_qos(choice: str) -> Any:
    q = ros().qos
    if choice == "sensor":
        return q.qos_profile_sensor_data
    return q.QoSProfile(depth=5, history=q.HistoryPolicy.KEEP_LAST, reliability=q.ReliabilityPolicy.RELIABLE,
                        durability=q.DurabilityPolicy.VOLATILE)


def output_qos() -> Any:
    q = ros().qos
    return q.QoSProfile(depth=OUTPUT_DEPTH, history=q.HistoryPolicy.KEEP_LAST, reliability=q.ReliabilityPolicy.RELIABLE,
                        durability=q.DurabilityPolicy.VOLATILE)


def reliability(profile: Any) -> str:
    """'best effort' or 'reliable' (or rmw's own word for anything else)."""
    q = ros().qos
    names = {q.ReliabilityPolicy.BEST_EFFORT: "best effort", q.ReliabilityPolicy.RELIABLE: "reliable"}
    return names.get(profile.reliability) or q.ReliabilityPolicy(profile.reliability).name.lower().replace("_", " ")


def mismatch(topic: str, publishers: list[Any], choice: str) -> str | None:
    """Why no publisher of `topic` can match a subscription with QoS `choice`, or None."""
    if choice != "reliable" or not publishers:
        return None
    offered = {reliability(p.qos_profile) for p in publishers}
    if offered == {"best effort"}:
        return (f"ros2:{topic} is published best effort, which a reliable subscription (--ros-qos reliable) never "
                "receives: leave --ros-qos at its default (sensor)")
    return None


def incompatible(topic: str, event: Any, choice: str) -> str:
    """rclpy's requested-incompatible-QoS event as one line."""
    policy = ros().qos.qos_policy_name_from_kind(event.last_policy_kind)
    hint = ": leave --ros-qos at its default (sensor)" if choice == "reliable" and policy == "RELIABILITY" else ""
    return f"ros2:{topic}: a publisher's QoS is incompatible with this subscription ({policy}){hint}"
