"""ROS 2 end to end with genuine rclpy processes (tests/rosnodes.py) on loopback: a camera process
publishes real footage, a real `edgeft run` subscribes and publishes, a listener process
subscribes to what edgeft publishes. Each test has a ROS domain no other running test holds."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import edgeft as edgeft_run
from bagfiles import footage
from rosnodes import (FRAMES_DEFAULT, RICHER_MSGS, SIZE, edgeft, published_image, read_lines, ros_domain, start, wait_for,
                      with_richer_msgs)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("rclpy") is None, reason="the ros2 extra (rclpy wheels) is not installed")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

RIG = {"mono": "mono8", "padded": "padded", "jpeg": "jpeg", "odd": "yuv422"}
STRING, FLOAT, FLOATS, DIAGNOSTICS = "std_msgs/msg/String", "std_msgs/msg/Float32", "std_msgs/msg/Float32MultiArray", \
    "diagnostic_msgs/msg/DiagnosticArray"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("ros2") / "tiny")


@pytest.fixture(scope="module")
def frames(carphone) -> list[np.ndarray]:
    return footage(carphone, FRAMES_DEFAULT, SIZE)


@pytest.fixture(scope="module")
def rig(tmp_path_factory, carphone):
    """Four cameras (mono8, padded bgr8, CompressedImage, an encoding edgeft cannot read) published
    best effort at 20 Hz with stamps jittered ±4 ms, for the whole module."""
    folder = tmp_path_factory.mktemp("rig")
    with ros_domain() as env:
        args = ["--out", str(folder / "camera.jsonl"), "--footage", str(carphone), "--hz", "20", "--jitter-ms", "4",
                "--seconds", "150", *(f"{camera}=/rig/{camera}:{kind}" for camera, kind in RIG.items())]
        with start("camera", args, env, folder / "camera.log") as camera:
            yield SimpleNamespace(env=env, log=folder / "camera.jsonl", process=camera)


def sent(log: Path) -> dict[int, dict]:
    """What a camera process published, by stamp."""
    return {row["stamp_ns"]: row for row in read_lines(log)}


def received(log: Path, topic: str) -> list:
    return [row["data"] for row in read_lines(log) if row["topic"] == topic]


def predictions(log: Path, topic: str) -> list[dict]:
    return [json.loads(data) for data in received(log, topic)]


def stamp_of(prediction: dict) -> int:
    stamp = prediction["header"]["stamp"]
    return stamp["sec"] * 1_000_000_000 + stamp["nanosec"]


def interrupted(process) -> str:
    """Ctrl-C to an edgeft process that runs until told: it ends with 130 and no traceback; its output.
    A run that stops itself can end before a listener that matched late has what it was sent."""
    code = process.stop(signal.SIGINT)
    output = process.output()
    assert code == 130 and "Traceback" not in output, output
    return " ".join(output.split())


def finished(process, timeout: float = 60) -> str:
    """Wait for an edgeft process to end on its own; its output, which must hold no traceback."""
    assert process.popen.wait(timeout) == 0, process.output()
    output = process.output()
    assert "Traceback" not in output, output
    return " ".join(output.split())


def test_a_rig_is_paired_by_stamp_and_every_value_is_engine_predicts(bundle, frames, rig, tmp_path) -> None:
    from edgeft.runtime import Engine

    out = tmp_path / "got.jsonl"
    topics = [f"/car/{camera}/{name}={kind}" for camera in RIG for name, kind in (("prediction", STRING), ("label", STRING),
                                                                                  ("score", FLOAT))]
    with start("listen", ["--out", str(out), "--seconds", "60", *topics, f"/diagnostics={DIAGNOSTICS}"], rig.env, tmp_path / "l.log"):
        sources = [arg for camera in RIG for arg in ("--source", f"{camera}=ros2:/rig/{camera}")]
        # --decode full: the transport is what is checked here, against Engine.predict on the very frames sent
        with edgeft(["run", "--model", str(bundle), *sources, "--publish", "ros2:/car", "--quiet", "--decode", "full"], rig.env,
                    tmp_path / "edgeft.log") as node:
            wait_for(lambda: len(predictions(out, "/car/odd/prediction")) >= 50, 45, "the listener to have 50 predictions")
            summary = interrupted(node)
    assert re.search(r"4 cameras paired within ±\d+\.\d ms", summary), summary
    camera_log, engine = sent(rig.log), Engine.load(bundle)
    ticks: dict[int, dict[str, dict]] = {}
    for camera in RIG:
        for p in predictions(out, f"/car/{camera}/prediction"):
            ticks.setdefault(p["frame"], {})[camera] = p
            assert p["camera"] == camera and p["header"]["frame_id"] == f"{camera}_optical"
            assert stamp_of(p) in camera_log  # the stamp of a frame the camera sent, exactly
    assert len(ticks) >= 50
    for tick in ticks.values():
        assert set(tick) == set(RIG)
        indices = {camera_log[stamp_of(p)]["index"] for p in tick.values()}
        assert len(indices) == 1, tick  # one moment's frames, paired across the ±4 ms jitter
        stamps = [stamp_of(p) for p in tick.values()]
        assert max(stamps) - min(stamps) <= 8_000_000
        index = indices.pop()
        for camera, p in tick.items():
            if camera == "odd":
                assert not p["valid"] and "unknown encoding 'yuv422'" in p["reason"] and p["prediction"] == []
                continue
            expected = engine.predict(published_image(RIG[camera], frames[index % len(frames)])).outputs["prediction"]
            np.testing.assert_allclose(p["prediction"], expected, rtol=1e-5, atol=1e-7)
            assert p["label"] == ("red", "blue")[int(np.argmax(expected))] and p["score"] == pytest.approx(float(expected.max()))
    for camera in ("mono", "padded", "jpeg"):
        valid = [p for p in predictions(out, f"/car/{camera}/prediction")]
        labels, scores = received(out, f"/car/{camera}/label"), received(out, f"/car/{camera}/score")
        assert labels and labels == [p["label"] for p in valid][-len(labels):]  # the same frames, in the same order
        assert np.allclose(scores, np.float32([p["score"] for p in valid][-len(scores):]))
    assert received(out, "/car/odd/label") == []  # an unusable frame gets no made-up value
    statuses = {s["name"]: s for s in received(out, "/diagnostics")[-1]}
    assert statuses["car: odd"]["level"] == 2 and "frames cannot be used" in statuses["car: odd"]["message"]
    assert statuses["car: jpeg"]["level"] == 0 and statuses["car: jpeg"]["values"]["type"] == "sensor_msgs/msg/CompressedImage"
    assert statuses["car: pipeline"]["values"]["backend"].startswith("CPUExecutionProvider")


def test_topics_lists_the_graph_on_the_domain_asked(rig) -> None:
    with ros_domain() as elsewhere:  # the environment names another domain: --ros-domain wins
        env = dict(elsewhere, COLUMNS="200")
        started = time.time()
        proc = edgeft_run("topics", "ros2:", "--ros-domain", rig.env["ROS_DOMAIN_ID"], "--seconds", "3", env=env)
        ended = time.time()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stamps = [row["stamp_ns"] / 1e9 for row in read_lines(rig.log) if row["camera"] == "mono"]
    sent_hz = sum(started <= t <= ended for t in stamps) / (ended - started)  # what the camera managed (20 Hz unless starved)
    for camera, kind in RIG.items():
        msgtype = "sensor_msgs/msg/CompressedImage" if kind == "jpeg" else "sensor_msgs/msg/Image"
        row = re.search(rf"/rig/{camera}\s*│\s*{msgtype}\s*│\s*1\s*│\s*best effort\s*│\s*([\d.]+) Hz", proc.stdout)
        assert row and 0.75 * sent_hz - 1 <= float(row.group(1)) <= 1.25 * sent_hz + 1, (sent_hz, proc.stdout)


def test_a_reliable_subscription_to_a_best_effort_camera_is_said_in_one_line(bundle, rig) -> None:
    proc = edgeft_run("run", "--model", bundle, "--source", "ros2:/rig/mono", "--ros-qos", "reliable", "--quiet", env=rig.env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "published best effort" in errors[0] and "--ros-qos" in errors[0], proc.stderr


@pytest.mark.parametrize(("source", "said"), [
    ("ros2:/rig/nothing", "no publisher of ros2:/rig/nothing on ROS domain"),
    ("ros2:", "the ROS 2 graph has 4 image topics (/rig/jpeg, /rig/mono, /rig/odd, /rig/padded): name one"),
])
def test_a_camera_that_cannot_be_told_is_said_in_one_line(bundle, rig, source, said) -> None:
    proc = edgeft_run("run", "--model", bundle, "--source", source, "--ros-wait", "5", "--quiet", env=rig.env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and said in errors[0] and "/rig/jpeg" in errors[0], proc.stderr


@pytest.mark.slow
def test_steering_and_features_carry_their_frames_header_and_equal_engine_predict(steering_bundle, frames, carphone,
                                                                                   tmp_path) -> None:
    from edgeft.runtime import Engine

    out, camera_log = tmp_path / "got.jsonl", tmp_path / "camera.jsonl"
    topics = [f"/edgeft/prediction={STRING}", f"/edgeft/steering={FLOAT}", f"/edgeft/features={FLOATS}", f"/diagnostics={DIAGNOSTICS}"]
    with ros_domain() as env:
        camera_args = ["--out", str(camera_log), "--footage", str(carphone), "--hz", "25", "--reliable", "--seconds", "60", "front=/front/image_raw:bgr8"]
        with start("camera", camera_args, env, tmp_path / "camera.log"), \
                start("listen", ["--out", str(out), "--seconds", "60", *topics], env, tmp_path / "listen.log"):
            # Runs until the listener has 40 predictions: a subscriber that matches late misses what went before.
            with edgeft(["run", "--model", str(steering_bundle), "--source", "ros2:", "--publish", "ros2:",  # the only image topic
                         "--ros-features", "--quiet"], env, tmp_path / "edgeft.log") as node:
                wait_for(lambda: len(received(out, "/edgeft/steering")) >= 40, 45, "the listener to have 40 predictions")
                interrupted(node)
    camera, engine = sent(camera_log), Engine.load(steering_bundle)
    shown = predictions(out, "/edgeft/prediction")
    for p in shown:
        assert p["valid"] and p["camera"] == "front" and p["header"]["frame_id"] == "front_optical"
        expected = engine.predict(frames[camera[stamp_of(p)]["index"] % len(frames)]).outputs
        assert p["steering"] == pytest.approx(float(expected["prediction"][0]), rel=1e-5, abs=1e-7)
    steering, features = received(out, "/edgeft/steering"), received(out, "/edgeft/features")
    assert steering == pytest.approx([float(np.float32(p["steering"])) for p in shown][-len(steering):], abs=0)
    last = engine.predict(frames[camera[stamp_of(shown[-1])]["index"] % len(frames)]).outputs["features"]
    assert features[-1]["label"] == "features" and np.allclose(features[-1]["data"], last, rtol=1e-5, atol=1e-6)
    statuses = {s["name"]: s for s in received(out, "/diagnostics")[-1]}
    front = statuses["edgeft: front"]
    assert front["level"] == 0 and front["hardware_id"] == "/front/image_raw" and float(front["values"]["fps"]) > 15
    assert {"latency_p50_ms", "age_ms", "dropped", "backend", "precision", "publishers"} <= set(front["values"])


def test_a_camera_that_dies_goes_stale_and_comes_back_and_sigterm_ends_the_run_cleanly(bundle, carphone, tmp_path) -> None:
    out, camera_log = tmp_path / "got.jsonl", tmp_path / "camera.jsonl"
    camera_args = ["--out", str(camera_log), "--footage", str(carphone), "--hz", "25", "--seconds", "60", "cam=/cam:jpeg"]
    with ros_domain() as env:
        with start("listen", ["--out", str(out), "--seconds", "60", f"/edgeft/prediction={STRING}", f"/diagnostics={DIAGNOSTICS}"],
                   env, tmp_path / "listen.log"), \
                edgeft(["run", "--model", str(bundle), "--source", "ros2:/cam", "--publish", "ros2:", "--quiet"], env,
                       tmp_path / "edgeft.log") as node:
            with start("camera", camera_args, env, tmp_path / "camera1.log") as first:
                wait_for(lambda: len(received(out, "/edgeft/prediction")) >= 20, 30, "predictions from the first camera")
                first.stop(signal.SIGKILL)  # the driver dies: no goodbye on the graph
            killed = time.time()

            def camera_status(after: float) -> list[dict]:
                return [next(s for s in row["data"] if s["name"] == "edgeft: cam") for row in read_lines(out)
                        if row["topic"] == "/diagnostics" and row["t"] > after]

            stale = wait_for(lambda: [s for s in camera_status(killed) if s["level"] == 3], 10, "STALE diagnostics")
            assert stale[0]["message"].startswith("no frame for")
            with start("camera", [*camera_args, "--first-index", "1000"], env, tmp_path / "camera2.log"):
                restarted = time.time()
                wait_for(lambda: any(sent(camera_log).get(stamp_of(p), {}).get("index", 0) >= 1000
                                     for p in predictions(out, "/edgeft/prediction")), 30, "predictions from the restarted camera")
                wait_for(lambda: [s for s in camera_status(restarted) if s["level"] == 0], 10, "OK diagnostics again")
                assert node.popen.poll() is None
                node.popen.send_signal(signal.SIGTERM)
                assert node.popen.wait(15) == 143  # 128 + SIGTERM, after a clean stop
                gone = time.time()
            output = node.output()
            assert "Traceback" not in output and "(interrupted)" in output, output
            wait_for(lambda: any(row["topic"] == "#publishers" and row["t"] > gone and row["data"]["/edgeft/prediction"] == 0
                                 for row in read_lines(out)), 5, "edgeft to leave the graph (its context shut down)")
    camera = sent(camera_log)
    assert all(stamp_of(p) in camera for p in predictions(out, "/edgeft/prediction"))  # never a made-up frame


def test_publish_pipeline_puts_a_running_pipeline_on_the_callers_node(bundle, carphone, monkeypatch) -> None:
    """Vehicle code with a node of its own: a video paced like a camera, published on that node."""
    import threading

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from edgeft.runtime import Engine, Pipeline, PipelineConfig, SourceOptions, open_source
    from edgeft.runtime.ros2 import publish_pipeline

    with ros_domain() as env:
        monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
        node = rclpy.create_node("vehicle", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        got, diagnostics = [], []
        node.create_subscription(String, "/vehicle/model/prediction", lambda m: got.append(json.loads(m.data)), 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        try:
            with open_source(str(carphone), SourceOptions(rate=20)) as source, \
                    Pipeline(source, Engine.load(bundle), PipelineConfig(max_ticks=40)) as pipeline:
                publisher = publish_pipeline(pipeline, node, "/vehicle/model")
                results = list(pipeline)
                wait_for(lambda: len(got) >= len(results), 5, "the node's own subscription to get every result")
                publisher.close()
            assert [p["frame"] for p in got] == [r.frame for r in results]
            assert [stamp_of(p) for p in got] == [int(round(r.t_capture * 1e9)) for r in results]  # no ROS stamp: the capture time
            assert [p["label"] for p in got] == [("red", "blue")[int(np.argmax(r.outputs["prediction"]))] for r in results]
            assert diagnostics and diagnostics[-1].status[0].name == "vehicle/model: pipeline"
            names = {name for name, _ in node.get_publisher_names_and_types_by_node("vehicle", "/")}
            assert "/vehicle/model/prediction" not in names and "/diagnostics" not in names  # closed: gone from the node
        finally:
            executor.shutdown()
            spinner.join(5)
            node.destroy_node()
            context.try_shutdown()


def test_a_publisher_that_comes_later_with_an_incompatible_qos_is_reported(bundle, carphone, tmp_path) -> None:
    """A reliable subscription matches the reliable driver; a best-effort one starting later on the
    same topic never can: rclpy's event says so (a warning line, WARN in the diagnostics) while the
    frames of the first go on, and the WARN clears when it leaves."""
    out, camera = tmp_path / "got.jsonl", ["--footage", str(carphone), "--hz", "20", "--seconds", "60", "cam=/q:jpeg"]
    with ros_domain() as env:
        with start("camera", ["--out", str(tmp_path / "a.jsonl"), "--reliable", *camera], env, tmp_path / "a.log"), \
                start("listen", ["--out", str(out), "--seconds", "60", f"/diagnostics={DIAGNOSTICS}"], env, tmp_path / "l.log"), \
                edgeft(["run", "--model", str(bundle), "--source", "ros2:/q", "--ros-qos", "reliable", "--publish", "ros2:", "--quiet"],
                       env, tmp_path / "edgeft.log") as node:

            def levels(after: float) -> list[tuple[int, str]]:
                return [(s["level"], s["message"]) for row in read_lines(out) if row["topic"] == "/diagnostics" and row["t"] > after
                        for s in row["data"] if s["name"] == "edgeft: q"]

            wait_for(lambda: (0, "") in [(level, "") for level, _ in levels(0)], 30, "OK diagnostics from the reliable camera")
            with start("camera", ["--out", str(tmp_path / "b.jsonl"), *camera], env, tmp_path / "b.log"):
                late = time.time()
                warned = wait_for(lambda: [m for level, m in levels(late) if level == 1], 15, "WARN for the best-effort publisher")
                assert "a publisher's QoS is incompatible with this subscription (RELIABILITY)" in warned[0]
            gone = time.time()
            wait_for(lambda: [level for level, _ in levels(gone + 1)] and levels(gone + 1)[-1][0] == 0, 15, "OK again once it left")
            node.popen.send_signal(signal.SIGTERM)
            assert node.popen.wait(15) == 143
    assert "a publisher's QoS is incompatible" in node.output() and "Traceback" not in node.output()


@pytest.mark.skipif(not RICHER_MSGS.is_dir(), reason="ackermann_msgs and vision_msgs have no PyPI wheels: "
                                                     "tests/rosmsgs/build.sh builds them (CI runs it)")
def test_richer_types_carry_each_frames_header_and_its_prediction(steering_bundle, bundle, carphone, tmp_path) -> None:
    """--ros-types ackermann on a steering head and --ros-types vision on a classifier, side by side
    on one camera: an AckermannDriveStamped / Classification per prediction, with its frame's header."""
    out, camera_log = tmp_path / "got.jsonl", tmp_path / "camera.jsonl"
    topics = ["/steer/drive=ackermann_msgs/msg/AckermannDriveStamped", f"/steer/prediction={STRING}",
              "/cls/classification=vision_msgs/msg/Classification", f"/cls/prediction={STRING}"]
    with ros_domain() as plain:
        env = with_richer_msgs(plain)
        camera_args = ["--out", str(camera_log), "--footage", str(carphone), "--hz", "25", "--reliable", "--seconds", "90",
                       "front=/front/image_raw:jpeg"]
        with start("camera", camera_args, env, tmp_path / "camera.log"), \
                start("listen", ["--out", str(out), "--seconds", "90", *topics], env, tmp_path / "listen.log"), \
                edgeft(["run", "--model", str(steering_bundle), "--source", "ros2:/front/image_raw", "--publish", "ros2:/steer",
                        "--ros-types", "ackermann", "--quiet"], env, tmp_path / "steer.log") as steer, \
                edgeft(["run", "--model", str(bundle), "--source", "ros2:/front/image_raw", "--publish", "ros2:/cls",
                        "--ros-types", "vision", "--quiet"], env, tmp_path / "cls.log") as classify:
            wait_for(lambda: len(received(out, "/steer/drive")) >= 20 and len(received(out, "/cls/classification")) >= 20, 60,
                     "20 AckermannDriveStamped and 20 Classification messages")
            for node in (steer, classify):
                interrupted(node)
    camera = sent(camera_log)
    steering = {stamp_of(p): p for p in predictions(out, "/steer/prediction")}
    for drive in received(out, "/steer/drive"):
        shown = steering[drive["stamp_ns"]]  # the JSON prediction of the same frame
        assert drive["stamp_ns"] in camera and drive["frame_id"] == shown["header"]["frame_id"] == "front_optical"
        assert drive["steering_angle"] == float(np.float32(shown["steering"])) and drive["speed"] == 0.0
    labels = {stamp_of(p): p for p in predictions(out, "/cls/prediction")}
    for classification in received(out, "/cls/classification"):
        shown = labels[classification["stamp_ns"]]
        assert classification["stamp_ns"] in camera and classification["frame_id"] == "front_optical"
        assert classification["results"] == [[shown["label"], shown["score"]]] and shown["label"] in ("red", "blue")
