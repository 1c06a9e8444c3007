"""ROS 2 through rclpy (the `ros2` extra, or a sourced ROS 2 install): camera topics in
(`sources.ros2`), predictions and diagnostics out (`publisher`), the graph listed (`graph`).
Nothing here imports rclpy until it is used."""

from .graph import GraphTopic, list_image_topics
from .options import DEFAULT_NAMESPACE, RosError, RosOptions, node_name_for
from .publisher import RosPublisher, publish_pipeline

__all__ = ["DEFAULT_NAMESPACE", "GraphTopic", "RosError", "RosOptions", "RosPublisher", "list_image_topics", "node_name_for",
           "publish_pipeline"]
