"""The ROS 2 parts that need no graph: live pairing by stamp, the diagnostics levels, options and
rig specs said in one line, ROS 2 missing said in one line, and the shared node's lifecycle."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time

import numpy as np
import pytest

from helpers import cli
from rosnodes import ros_domain

from edgeft.runtime.ros2 import RosError, RosOptions, node_name_for
from edgeft.runtime.ros2.diagnostics import ERROR, OK, STALE, WARN, CameraWindow, camera_status, pipeline_status
from edgeft.runtime.sources import CameraHealth, SourceError, SourceOptions, open_rig
from edgeft.runtime.sources.sync import Synchroniser

needs_rclpy = pytest.mark.skipif(importlib.util.find_spec("rclpy") is None, reason="the ros2 extra (rclpy wheels) is not installed")


def jittered(cameras: list[str], ticks: int, period: float = 0.05, jitter: float = 0.004, seed: int = 3):
    rng = np.random.default_rng(seed)
    return [(i, camera, 100.0 + i * period + float(rng.uniform(-jitter, jitter))) for i in range(ticks) for camera in cameras]


def test_live_pairing_gives_a_complete_tick_as_soon_as_it_is_complete() -> None:
    """Eager: each tick leaves when its last camera's frame arrives; bags' rule waits for the next frame."""
    cameras = ["left", "center", "right"]
    for eager in (True, False):
        sync, ticks, waited = Synchroniser(cameras, tolerance=0.025, eager=eager), [], 0
        for i, camera, stamp in jittered(cameras, 30):
            sync.add(camera, stamp, i)
            popped = list(iter(sync.pop, None))
            waited += camera == cameras[-1] and not any(t.frames[0].payload == i for t in popped)
            ticks += popped
        assert all({w.payload for w in t.frames} == {t.frames[0].payload} and not t.missing for t in ticks)  # one moment each
        assert [t.frames[0].payload for t in ticks] == list(range(len(ticks)))
        assert (waited, len(ticks)) == ((0, 30) if eager else (30, 29))


def test_live_pairing_does_not_wait_for_a_camera_that_stopped() -> None:
    sync = Synchroniser(["a", "b"], tolerance=0.025, eager=True)
    for i, camera, stamp in jittered(["a", "b"], 10):
        sync.add(camera, stamp, i)
    assert len(list(iter(sync.pop, None))) == 10
    for i in range(10, 40):  # b is gone; a goes on
        sync.add("a", 100.0 + i * 0.05, i)
    late = list(iter(sync.pop, None))
    assert late and all(t.missing == ("b",) for t in late) and late[-1].frames[0].payload >= 38


def health(**changes) -> CameraHealth:
    return CameraHealth(**{"camera": "front", "topic": "/front/image_raw", "msgtype": "sensor_msgs/msg/Image", "qos": "sensor",
                           "publishers": 1, **changes})


def window(results: list[tuple[float, float, bool]], now: float) -> CameraWindow:
    """Results `(seconds ago, stamp age ms, valid)`, oldest first."""
    w = CameraWindow()
    for ago, age_ms, valid in results:
        w.recent.append((now - ago, 5.0, age_ms, valid))
        w.frames, w.invalid, w.last_mono = w.frames + 1, w.invalid + (not valid), now - ago
    w.last_reason = "front: unknown encoding 'yuv422'" if w.invalid else None
    return w


@pytest.mark.parametrize(("results", "camera", "level", "said"), [
    ([(1.0 - i / 20, 4.0, True) for i in range(20)], {}, OK, "fps"),
    ([], {}, STALE, "waiting for the first frame"),
    ([], {"publishers": 0}, STALE, "(no publisher)"),
    ([(3.55 - i / 20, 4.0, True) for i in range(20)], {}, STALE, "no frame for 2.6 s"),
    ([(1.0 - i / 20, 900.0, True) for i in range(20)], {}, WARN, "900 ms old"),
    ([(1.0 - i / 20, 4.0, i % 4 != 0) for i in range(20)], {}, WARN, "5 of the last 20 frames unusable"),
    ([(1.0 - i / 20, 4.0, False) for i in range(20)], {}, ERROR, "frames cannot be used: front: unknown encoding"),
    ([], {"incompatible": "ros2:/front/image_raw: a publisher's QoS is incompatible"}, ERROR, "incompatible"),
    ([(1.0 - i / 20, 4.0, True) for i in range(20)], {"incompatible": "ros2:/x: QoS incompatible"}, WARN, "incompatible"),
])
def test_diagnostics_levels(results, camera, level, said) -> None:
    now = 1000.0
    status = camera_status("edgeft", "front", window(results, now), health(**camera), RosOptions(), now, {})
    assert status.level == level and said in status.message, status
    assert status.name == "edgeft: front" and status.hardware_id == "/front/image_raw"
    overall = pipeline_status("edgeft", [status], None, None, "steer")
    assert overall.level == level and overall.name == "edgeft: pipeline"


def test_diagnostics_say_fps_and_latency_of_the_last_seconds() -> None:
    now = time.monotonic()
    status = camera_status("edgeft", "front", window([(1.9 - i / 20, 4.0, True) for i in range(39)], now), None,
                           RosOptions(), now, {"backend": "CPUExecutionProvider fp32"})
    assert float(status.values["fps"]) == pytest.approx(20.0) and status.values["latency_p50_ms"] == "5.0"
    assert status.values["backend"] == "CPUExecutionProvider fp32" and status.hardware_id == "front"


@pytest.mark.parametrize(("options", "said"), [
    (dict(domain=233), "--ros-domain must be 0 to 232"),
    (dict(qos="fast"), "--ros-qos must be sensor or reliable"),
    (dict(types=("ackermann", "lidar")), "--ros-types knows ackermann, vision, not lidar"),
    (dict(wait_s=-1.0), "--ros-wait must be 0 or more"),
])
def test_bad_ros_options_are_one_line(options, said) -> None:
    with pytest.raises(RosError, match=said.replace("(", r"\(")):
        RosOptions(**options)


def test_node_names_follow_the_output_namespace() -> None:
    assert [node_name_for(n) for n in (None, "", "/", "/edgeft", "/car/lane_model/")] == ["edgeft"] * 4 + ["lane_model"]


@pytest.mark.parametrize(("specs", "said"), [
    (["ros2:", "left=ros2:/left"], "ros2: with no topic takes the graph's only image topic"),
    (["ros2:/front/image_raw", "ros2:/front/compressed"], "two ROS 2 cameras are called 'front'"),
])
def test_rig_specs_that_cannot_work_are_one_line(specs, said) -> None:
    with pytest.raises(SourceError, match=said):
        open_rig(specs, SourceOptions())


def test_without_rclpy_every_ros2_command_says_how_to_get_it(tmp_path, monkeypatch, carphone) -> None:
    pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
    from tiny_bundle import write_tiny_bundle

    from edgeft.runtime.ros2 import env

    bundle = write_tiny_bundle(tmp_path / "tiny")
    monkeypatch.setitem(sys.modules, "rclpy", None)  # as if it were not installed: `import rclpy` fails
    env.ros.cache_clear()
    try:
        for args in (("run", "--model", bundle, "--source", "ros2:/cam"), ("run", "--model", bundle, "--source", carphone, "--publish", "ros2:"),
                     ("topics", "ros2:")):
            result = cli(*args)
            errors = [line for line in result.output.splitlines() if line.startswith("error:")]
            assert result.exit_code == 1 and len(errors) == 1 and "pip install 'edgeft[ros2]'" in errors[0], result.output
            assert "source /opt/ros/<distro>/setup.bash" in errors[0] and "Traceback" not in result.output
    finally:
        env.ros.cache_clear()


@needs_rclpy
def test_a_runs_sources_and_outputs_share_one_node_released_with_the_last() -> None:
    from edgeft.runtime.ros2.node import RosNode

    with ros_domain() as env:
        options = RosOptions(domain=int(env["ROS_DOMAIN_ID"]))
        source_side, output_side = RosNode.acquire(options), RosNode.acquire(options)
        assert source_side is output_side and source_side.domain == options.domain
        spinning = [t for t in threading.enumerate() if t.name == "edgeft-ros2-edgeft"]
        source_side.release()
        assert len(spinning) == 1 and spinning[0].is_alive() and output_side.context.ok()
        output_side.release()
        assert not spinning[0].is_alive() and not output_side.context.ok()  # thread joined, context shut down
        again = RosNode.acquire(options)
        assert again is not source_side
        again.release()


@needs_rclpy
@pytest.mark.parametrize(("environment", "args", "said"), [
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, ("topics", "ros2:"), "this rclpy is the PyPI wheels', which carry rmw_fastrtps_cpp only"),
    ({"ROS_DOMAIN_ID": "250"}, ("topics", "ros2:"), "ROS_DOMAIN_ID=250 is not a ROS 2 domain (0 to 232)"),
    ({}, ("run", "--source", "CLIP", "--publish", "ros2:/9lives"), "ros2:/9lives is not a valid ROS 2 namespace"),
    ({}, ("run", "--source", "CLIP", "--publish", "ros2:", "--ros-types", "vision"), "--ros-types vision needs vision_msgs"),
    ({}, ("run", "--source", "CLIP", "--publish", "foxglove:8765"), "--publish takes ros2:[NAMESPACE]"),
    ({}, ("run", "--source", "ros2:/bad//name"), "ros2:/bad//name is not a valid ROS 2 topic name"),
])
def test_ros2_misconfigurations_are_one_line(environment, args, said, tmp_path, monkeypatch, carphone) -> None:
    """Said before any camera is waited for or output opened: rcl would otherwise exit the process
    (a foreign RMW) and Fast DDS print its own error (a domain past its ports)."""
    pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
    from tiny_bundle import write_tiny_bundle

    from edgeft.runtime.ros2 import env

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    env.ros.cache_clear()
    model = ("--model", write_tiny_bundle(tmp_path / "tiny")) if args[0] == "run" else ()
    result = cli(*(str(carphone) if a == "CLIP" else a for a in args), *model)
    env.ros.cache_clear()
    errors = [line for line in result.output.replace(str(carphone), "CLIP").splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and said in errors[0] and "Traceback" not in result.output, result.output
