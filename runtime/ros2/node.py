"""One rclpy context, node and executor thread per domain and node name in this process, shared
by the ROS 2 sources and sinks of a run (one DDS participant, one discovery) and released with
the last of them: executor shut down, its thread joined, node destroyed, context shut down.

The context is edgeft's own, never rclpy's default one, and installs no signal handlers: a
program embedding edgeft keeps its own rclpy and its own Ctrl-C handling.
"""

from __future__ import annotations

import logging
import os
import threading

from ..errors import first_line
from .env import ros
from .options import MAX_DOMAIN, RosError, RosOptions

log = logging.getLogger("edgeft")
JOIN_S = 5.0


def check_environment_domain(domain: int | None) -> None:
    """ROS_DOMAIN_ID, when it is the one used, must be one DDS can open (Fast DDS would print its
    own error and give up)."""
    value = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if domain is None and value and not (value.isdigit() and int(value) <= MAX_DOMAIN):
        raise RosError(f"ROS_DOMAIN_ID={value} is not a ROS 2 domain (0 to {MAX_DOMAIN}): fix it, or pass --ros-domain")


class RosNode:
    _shared: dict[tuple[int | None, str], RosNode] = {}
    _lock = threading.Lock()

    def __init__(self, domain: int | None, name: str):
        r = ros()
        check_environment_domain(domain)
        self.key, self.users = (domain, name), 0
        self.context = r.rclpy.Context()
        try:
            r.rclpy.init(context=self.context, domain_id=domain)  # a context of its own: no signal handlers
        except Exception as exc:  # noqa: BLE001 - rclpy's RCLError and the RMW's own errors
            rmw = os.environ.get("RMW_IMPLEMENTATION")
            raise RosError(f"ROS 2 cannot start{f' with RMW_IMPLEMENTATION={rmw}' if rmw else ''}: {first_line(exc)}") from None
        self.domain = self.context.get_domain_id()
        self.node = r.rclpy.create_node(name, context=self.context)
        self.executor = r.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stopping = False
        self._thread = threading.Thread(target=self._spin, name=f"edgeft-ros2-{name}", daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls, options: RosOptions, name: str = "edgeft") -> RosNode:
        with cls._lock:
            shared = cls._shared.get((options.domain, name))
            if shared is None:
                shared = cls._shared[(options.domain, name)] = cls(options.domain, name)
            shared.users += 1
            return shared

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            del self._shared[self.key]
        self._stopping = True
        self.executor.shutdown(JOIN_S)
        self._thread.join(JOIN_S)
        if self._thread.is_alive():
            log.warning("edgeft: the ROS 2 executor thread did not stop within %g s", JOIN_S)
        self.node.destroy_node()
        self.context.try_shutdown()

    def _spin(self) -> None:
        """Run callbacks until released; one that raises is logged, and the others go on."""
        while not self._stopping and self.context.ok():
            try:
                self.executor.spin()
            except ros().ExternalShutdownException:
                return
            except RuntimeError as exc:
                # rclpy's InvalidHandle: a source or sink destroyed its entity while the executor was building
                # its wait set (sources and sinks share this node and close in turn); the next spin rebuilds it
                if type(exc).__name__ != "InvalidHandle":
                    log.exception("edgeft: a ROS 2 callback failed")
            except Exception:  # noqa: BLE001 - a failed callback must not silence the node
                log.exception("edgeft: a ROS 2 callback failed")
