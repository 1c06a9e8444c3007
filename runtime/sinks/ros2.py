"""`--publish ros2:[NAMESPACE]`: results and diagnostics as ROS 2 topics (default namespace
`/edgeft`), on the node the run's ROS 2 cameras use, or one of its own; `ros2.publisher` has
the topics and their types."""

from __future__ import annotations

from pathlib import Path

from ..manifest import Manifest
from ..results import Result
from ..ros2.env import ros
from ..ros2.messages import richer_types
from ..ros2.node import RosNode
from ..ros2.options import DEFAULT_NAMESPACE
from ..ros2.publisher import RosPublisher, valid_namespace
from .base import SinkOptions


def namespace_of(target: Path) -> str:
    """`ros2:` -> the default; `ros2:/car/model` -> '/car/model' (the spec's target, as a Path)."""
    return DEFAULT_NAMESPACE if str(target) in ("", ".") else str(target)


class Ros2Sink:
    @classmethod
    def check(cls, target: Path, options: SinkOptions) -> None:
        ros()  # rclpy is there (one line saying how to get it otherwise)
        valid_namespace(namespace_of(target))
        richer_types(options.ros.types)

    def __init__(self, target: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        self._node = RosNode.acquire(options.ros, options.ros.node_name)
        try:
            self.publisher = RosPublisher(self._node.node, manifest, options.ros, namespace_of(target))
        except BaseException:
            self._node.release()
            raise

    def bind(self, pipeline) -> None:
        self.publisher.bind(pipeline)

    def write(self, result: Result) -> None:
        self.publisher.write(result)

    def close(self) -> None:
        if self._node is not None:
            self.publisher.close()
            self._node.release()
            self._node = None

    def discard(self) -> None:
        self.close()
