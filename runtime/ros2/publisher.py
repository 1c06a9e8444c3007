"""A pipeline's results as ROS 2 topics, on a node someone spins: edgeft's own (the `ros2:` output
of `edgeft run`) or the vehicle's (`publish_pipeline`, for code that already has a node).

Topics go under the namespace, per camera when the run has several (`/edgeft/steering`, or
`/edgeft/left/steering` ...; `messages` lists them), all reliable, keep last 10. Diagnostics go
to `/diagnostics` once a second from a timer on the node, so a camera that stops is reported
STALE even though no result comes to say so.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import first_line
from ..manifest import Manifest
from ..results import Result, decode
from .diagnostics import CameraWindow, camera_status, pipeline_status, to_message
from .env import ros
from .messages import features_message, header_of, prediction_json, richer_message, richer_types
from .options import DEFAULT_NAMESPACE, RosError, RosOptions
from .qos import output_qos

if TYPE_CHECKING:
    from ..pipeline import Pipeline

DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_PERIOD_S = 1.0
ACK_WAIT_S = 2.0  # closing waits this long at most for subscribers to acknowledge what was published


def valid_namespace(namespace: str) -> str:
    """`/edgeft`, `car/lane` -> `/car/lane`; an invalid one is one line."""
    from rclpy.validate_namespace import validate_namespace

    name = "/" + namespace.strip("/")
    try:
        validate_namespace(name)
    except Exception as exc:  # noqa: BLE001 - rclpy's InvalidNamespaceException
        raise RosError(f"ros2:{namespace} is not a valid ROS 2 namespace ({first_line(exc).rstrip(':')})") from None
    return name


class RosPublisher:
    """Publishes each result written to it (`write`) on `node`; `bind(pipeline)` tells it the
    run's cameras, engine and stats, which diagnostics report. Unbound, each camera gets its own
    topics. `close()` removes its publishers and timer from the node; the node stays the caller's."""

    def __init__(self, node: Any, manifest: Manifest, options: RosOptions = RosOptions(), namespace: str = DEFAULT_NAMESPACE):
        r = ros()
        self.node, self.manifest, self.options = node, manifest, options
        self.namespace = valid_namespace(namespace)
        self._richer = richer_types(options.types, manifest)
        self._features = [o.name for o in manifest.outputs if o.role == "features"] if options.features else []
        self._publishers: dict[str, dict[str, Any]] = {}  # camera -> short name -> publisher
        self._windows: dict[str, CameraWindow] = {}
        self._nested = True
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        self._diagnostics = node.create_publisher(r.DiagnosticArray, DIAGNOSTICS_TOPIC, output_qos())
        self._timer = node.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        self._closed = False

    def bind(self, pipeline: Pipeline) -> None:
        """The run these results come from: one camera gets the namespace's topics themselves."""
        cameras = [camera for source in pipeline.sources for camera in source.camera_names]
        with self._lock:
            self._pipeline, self._nested = pipeline, len(cameras) != 1
            for camera in cameras:  # on the graph from the start, not from the first frame
                self._windows.setdefault(camera, CameraWindow())
                self._publishers.get(camera) or self._create(camera)

    def topics(self, camera: str) -> dict[str, str]:
        """Short name -> full topic name of what one camera's results are published on."""
        prefix = f"{self.namespace.rstrip('/')}/{camera}" if self._nested else self.namespace.rstrip("/")
        task = self.manifest.task
        names = ["prediction"] + (["steering"] if task == "regression" else ["label", "score"] if task == "classification" else [])
        names += ["features"] if self._features else []
        names += [richer.topic for richer in self._richer]
        return {name: f"{prefix}/{name}" for name in names}

    def write(self, result: Result) -> None:
        decoded, header = decode(self.manifest, result.outputs), header_of(result)
        with self._lock:  # never on a publisher `close` is removing
            if not self._closed:
                self._publish(result, decoded, header)

    def _publish(self, result: Result, decoded: Any, header: Any) -> None:
        r = ros()
        publishers = self._publishers.get(result.source) or self._create(result.source)
        if result.valid:
            if decoded.steering is not None and "steering" in publishers:
                publishers["steering"].publish(r.Float32(data=float(decoded.steering)))
            if decoded.label is not None and "label" in publishers:
                publishers["label"].publish(r.String(data=decoded.label))
                publishers["score"].publish(r.Float32(data=float(decoded.score)))
            for name in self._features:
                publishers["features"].publish(features_message(result.outputs[name], name))
            for richer in self._richer:
                publishers[richer.topic].publish(richer_message(richer, decoded, header))
        publishers["prediction"].publish(r.String(data=prediction_json(result, decoded, header, self.manifest.name)))
        age_ms = (time.time_ns() - (header.stamp.sec * 1_000_000_000 + header.stamp.nanosec)) / 1e6
        window = self._windows.setdefault(result.source, CameraWindow())
        window.add(result.latency_ms, age_ms, result.valid, result.dropped, result.reason)

    def _create(self, camera: str) -> dict[str, Any]:
        r, qos = ros(), output_qos()
        types = {"prediction": r.String, "steering": r.Float32, "label": r.String, "score": r.Float32,
                 "features": r.Float32MultiArray, **{richer.topic: richer.msg_type for richer in self._richer}}
        created = {name: self.node.create_publisher(types[name], topic, qos) for name, topic in self.topics(camera).items()}
        self._publishers[camera] = created
        return created

    def publish_diagnostics(self) -> None:
        """One DiagnosticArray now (the node's timer calls this once a second)."""
        pipeline, now = self._pipeline, time.monotonic()
        health = {h.camera: h for source in (pipeline.sources if pipeline else []) if hasattr(source, "health")
                  for h in source.health()}
        engine = pipeline.engine if pipeline is not None else None
        common = {"backend": engine.provider, "precision": engine.precision} if engine is not None else {}
        prefix = self.namespace.strip("/") or "edgeft"
        with self._lock:
            cameras = [camera_status(prefix, camera, self._windows.get(camera), health.get(camera), self.options, now, common)
                       for camera in sorted(set(self._windows) | set(health))]
        statuses = [pipeline_status(prefix, cameras, pipeline.stats if pipeline else None, engine, self.manifest.name), *cameras]
        header = ros().Header()
        header.stamp = self.node.get_clock().now().to_msg()
        with self._lock:
            if not self._closed:
                self._diagnostics.publish(to_message(statuses, header))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._pipeline is not None and self.write in self._pipeline.observers:
            self._pipeline.observers.remove(self.write)
        from rclpy.duration import Duration

        self.node.destroy_timer(self._timer)
        publishers = [self._diagnostics, *(p for group in self._publishers.values() for p in group.values())]
        deadline = time.monotonic() + ACK_WAIT_S
        for publisher in publishers:  # the last results reach the subscribers that are there, then the publishers go
            publisher.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))
        for publisher in publishers:
            self.node.destroy_publisher(publisher)


def publish_pipeline(pipeline: Pipeline, node: Any, namespace: str = DEFAULT_NAMESPACE,
                     options: RosOptions = RosOptions()) -> RosPublisher:
    """Publish every result `pipeline` gives, and its diagnostics, on `node` (vehicle code's own,
    spun by its own executor). The caller keeps iterating the pipeline as before; `close()` the
    returned publisher when done (its publishers and timer leave the node)."""
    publisher = RosPublisher(node, pipeline.engine.manifest, options, namespace)
    publisher.bind(pipeline)
    pipeline.observers.append(publisher.write)
    return publisher
