"""rclpy as this machine has it: a sourced ROS 2 install (used as it is: its RMW, its
ROS_DOMAIN_ID), else the PyPI wheels of the `ros2` extra, else one line saying how to get it.

The PyPI wheels need their libraries on LD_LIBRARY_PATH before Python starts; their own
`ros_wheels_bootstrapper` (a .pth file) restarts the interpreter with it set, so nothing is for
the user to set. When that did not happen (a parent process of another environment marked it
done), the import fails on a missing library, which is said in one line rather than as
rclpy's traceback.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from ..errors import first_line
from .options import RosError

INSTALL = ("ROS 2 needs rclpy: pip install 'edgeft[ros2]' (PyPI wheels, no ROS install needed), "
           "or source your ROS 2 install (source /opt/ros/<distro>/setup.bash)")


WHEELS_RMW = "rmw_fastrtps_cpp"  # the only RMW the PyPI wheels carry


def from_wheels() -> bool:
    """Whether `import rclpy` would load the PyPI wheels (not a sourced ROS 2 install)."""
    spec = importlib.util.find_spec("rclpy")
    try:
        home = Path(importlib.metadata.distribution("ros-rclpy").locate_file("")).resolve()
    except importlib.metadata.PackageNotFoundError:
        return False
    return spec is not None and spec.origin is not None and Path(spec.origin).resolve().is_relative_to(home)


@functools.cache
def ros() -> SimpleNamespace:
    """rclpy and the message types edgeft uses, imported once; RosError when they are missing."""
    rmw = os.environ.get("RMW_IMPLEMENTATION")
    if rmw and rmw != WHEELS_RMW and from_wheels():  # rcl would exit the process on import, with code 102
        raise RosError(f"RMW_IMPLEMENTATION={rmw}, but this rclpy is the PyPI wheels', which carry {WHEELS_RMW} only: unset it, "
                       f"or use a ROS 2 install that has {rmw}")
    try:
        import rclpy
    except ImportError as exc:
        if "shared object" in str(exc):
            raise RosError(f"rclpy is installed but cannot load its libraries ({first_line(exc)}): run edgeft from a "
                           f"fresh shell, or put {os.path.join(sys.prefix, 'lib')} on LD_LIBRARY_PATH") from None
        raise RosError(INSTALL) from None
    try:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from rclpy import qos
        from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import Float32, Float32MultiArray, Header, MultiArrayDimension, String
    except ImportError as exc:
        raise RosError(f"rclpy is there but a message package is not ({first_line(exc)}): pip install 'edgeft[ros2]', "
                       "or install sensor_msgs, std_msgs and diagnostic_msgs for your ROS 2 distribution") from None
    try:  # Iron and later; Humble calls it qos_event
        from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
    except ImportError:
        from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks
    return SimpleNamespace(rclpy=rclpy, qos=qos, SingleThreadedExecutor=SingleThreadedExecutor,
                           ExternalShutdownException=ExternalShutdownException,
                           PublisherEventCallbacks=PublisherEventCallbacks, SubscriptionEventCallbacks=SubscriptionEventCallbacks,
                           Image=Image, CompressedImage=CompressedImage, Float32=Float32, Float32MultiArray=Float32MultiArray,
                           MultiArrayDimension=MultiArrayDimension, String=String, Header=Header, DiagnosticArray=DiagnosticArray,
                           DiagnosticStatus=DiagnosticStatus, KeyValue=KeyValue)
