"""How edgeft meets a ROS 2 graph: domain, camera QoS, what it publishes and when it calls a
stream stale. Plain data, importable without rclpy."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import EdgeftError

QOS_CHOICES = ("sensor", "reliable")
RICHER_TYPES = ("ackermann", "vision")
MAX_DOMAIN = 232  # the highest ROS_DOMAIN_ID whose DDS ports fit (ROS 2's own limit on Linux)
DEFAULT_NAMESPACE = "/edgeft"


class RosError(EdgeftError):
    """ROS 2 is missing or cannot start, or a topic cannot be used as asked."""


@dataclass(frozen=True)
class RosOptions:
    domain: int | None = None  # None: ROS_DOMAIN_ID as the environment sets it (ROS' default 0)
    qos: str = "sensor"  # camera subscriptions: sensor (best effort, keep last 5) | reliable
    wait_s: float = 10.0  # how long opening waits for a camera topic to appear on the graph (inf: for ever)
    features: bool = False  # also publish the feature vector (Float32MultiArray: large)
    types: tuple[str, ...] = ()  # richer stamped outputs where installed: ackermann, vision
    stale_s: float = 2.0  # diagnostics: a camera without a new frame this long is STALE
    max_age_s: float = 0.5  # diagnostics: WARN when a frame's stamp is this old by the time it is published
    node_name: str = "edgeft"  # the node a run's sources and outputs share

    def __post_init__(self) -> None:
        if self.domain is not None and not 0 <= self.domain <= MAX_DOMAIN:
            raise RosError(f"--ros-domain must be 0 to {MAX_DOMAIN}, got {self.domain}")
        if self.qos not in QOS_CHOICES:
            raise RosError(f"--ros-qos must be {' or '.join(QOS_CHOICES)}, got '{self.qos}'")
        unknown = sorted(set(self.types) - set(RICHER_TYPES))
        if unknown:
            raise RosError(f"--ros-types knows {', '.join(RICHER_TYPES)}, not {', '.join(unknown)}")
        if math.isnan(self.wait_s) or self.wait_s < 0:
            raise RosError(f"--ros-wait must be 0 or more seconds (inf: wait for ever), got {self.wait_s}")
        for name in ("stale_s", "max_age_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise RosError(f"{name} must be a positive number of seconds, got {value}")


def node_name_for(namespace: str | None) -> str:
    """The node a run is seen as: its output namespace's last part (`/car/lane` -> 'lane'), else 'edgeft'."""
    last = (namespace or "").strip("/").rsplit("/", 1)[-1]
    return last or "edgeft"
