"""`extract --ray` on a real multi-node Ray cluster on loopback (separate `ray start` processes),
against single-process extract: same plan, same layout, same features; a node killed mid-job,
an interrupted job resumed, token authentication, and a bad address."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from raycluster import LoopbackCluster, can_hide  # noqa: E402
from test_transfer import class_folders  # noqa: E402
from tiny_bundle import write_tiny_bundle  # noqa: E402

TOKEN = "ab" * 32


@pytest.fixture(scope="module")
def cluster():
    with LoopbackCluster() as running:
        yield running.start(workers=1)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("ray") / "tiny")


def driver_env(**extra: str) -> dict[str, str]:
    """What a user's shell would have: no Ray settings of ours leaking in from the test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "RAY_AUTH_MODE": "disabled", "COLUMNS": "200", **extra}


def same_features(a: Path, b: Path) -> None:
    """Same index (plan, order, shard and row) and features equal to float32 rounding: onnxruntime
    with another thread count may sum in another order, which moves the last bits."""
    from edgeft.transfer import load_features

    assert (a / "index.csv").read_text() == (b / "index.csv").read_text()
    assert (a / "features.json").read_text() == (b / "features.json").read_text()
    x, y = load_features(a), load_features(b)
    assert x.labels == y.labels and list(x.splits) == list(y.splits)
    np.testing.assert_allclose(x.x, y.x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dataset", ["driving log", "class folders", "ROS bag"])
def test_ray_extract_equals_single_process(cluster, bundle, tmp_path, dataset, carphone) -> None:
    if dataset == "driving log":
        assert edgeft("sample", tmp_path / "data", "--frames", 24).returncode == 0
        data = tmp_path / "data" / "driving_log.csv"
    elif dataset == "class folders":
        data = class_folders(tmp_path / "data", per_class=20)
    else:
        pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
        from bagfiles import footage, write_rig_bag

        data = write_rig_bag(tmp_path / "drive.bag", footage(carphone, 30)).path
    args = ["extract", data, "--model", bundle, "--rows-per-shard", 16, "--augment", "flip"]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    proc = edgeft(*args, "--out", tmp_path / "ray", "--ray", cluster.address, env=driver_env())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    same_features(tmp_path / "ray", tmp_path / "local")
    assert re.search(r"frames in [\d.]+ s on 2 node\(s\)", proc.stdout), proc.stdout  # both nodes did work
    assert len(re.findall(r"node [0-9a-f]{8} \(", proc.stdout)) == 2


def run_rows(folder: Path) -> list[dict[str, str]]:
    """A `--source` folder's index lines without t_capture, the wall clock when a frame was read."""
    with open(folder / "index.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "t_capture"} for row in csv.DictReader(fh)]


def same_run_features(a: Path, b: Path) -> None:
    from edgeft.runtime import read_features

    meta_a, _, x = read_features(a)
    meta_b, _, y = read_features(b)
    assert meta_a == meta_b and run_rows(a) == run_rows(b) and len(x) > 0
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def image_folder(root: Path) -> Path:
    """Twenty photos, one file that is no image and one JPEG cut short: both leave gaps in the frame numbers."""
    rng = np.random.default_rng(1)
    root.mkdir()
    for i in range(20):
        cv2.imwrite(str(root / f"{i}.jpg"), rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    (root / "5.jpg").write_bytes(b"not a jpeg")
    (root / "9.jpg").write_bytes((root / "9.jpg").read_bytes()[:600])
    return root


@pytest.mark.parametrize("kind", ["video", "image folder", "driving log", "ROS bag"])
def test_ray_extract_of_a_recorded_source_equals_single_process(cluster, bundle, tmp_path, kind, carphone) -> None:
    if kind == "video":
        spec = str(carphone)
    elif kind == "image folder":
        spec = str(image_folder(tmp_path / "photos"))
    elif kind == "driving log":
        assert edgeft("sample", tmp_path / "data", "--frames", 30).returncode == 0
        spec = str(tmp_path / "data")
    else:
        pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
        from bagfiles import footage, write_rig_bag

        spec = str(write_rig_bag(tmp_path / "drive.bag", footage(carphone, 30)).path)
    args = ["extract", "--source", spec, "--model", bundle, "--rows-per-shard", 16, "--batch", 4]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    proc = edgeft(*args, "--out", tmp_path / "ray", "--ray", cluster.address, env=driver_env())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    same_run_features(tmp_path / "ray", tmp_path / "local")
    assert re.search(r"frames in [\d.]+ s on 2 node\(s\)", proc.stdout), proc.stdout
    if kind == "image folder":
        assert [row["frame"] for row in run_rows(tmp_path / "ray")] == [str(i) for i in range(20) if i not in (5, 9)]
        assert "2 unreadable frames left out" in proc.stdout


def test_ray_completes_a_partly_extracted_source(cluster, bundle, tmp_path) -> None:
    assert edgeft("sample", tmp_path / "data", "--frames", 40).returncode == 0
    args = ["extract", "--source", tmp_path / "data", "--model", bundle, "--rows-per-shard", 16]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    assert edgeft(*args, "--out", tmp_path / "part").returncode == 0
    index = (tmp_path / "part" / "index.csv").read_text().splitlines(keepends=True)
    kept = [line for line in index if "shard-00005" not in line and "shard-00006" not in line and "shard-00007" not in line]
    (tmp_path / "part" / "index.csv").write_text("".join(kept))
    for number in (5, 6, 7):
        (tmp_path / "part" / f"shard-0000{number}.npy").unlink()
    proc = edgeft(*args, "--out", tmp_path / "part", "--resume", "--ray", cluster.address, env=driver_env())
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^{len(index) - len(kept)} frames in", proc.stdout, re.M), proc.stdout  # only what was missing
    same_run_features(tmp_path / "part", tmp_path / "local")


@pytest.mark.skipif(not can_hide(), reason="hiding a folder from one node needs a mount namespace (root and unshare)")
def test_a_node_that_cannot_see_the_data_is_named(bundle, tmp_path) -> None:
    data = class_folders(tmp_path / "data", per_class=4)
    with LoopbackCluster() as blind:
        blind.start(workers=1, head_cpus=0, hide=tmp_path / "data")  # every actor lands on the node that sees an empty folder
        proc = edgeft("extract", data, "--model", bundle, "--out", tmp_path / "out", "--ray", blind.address, env=driver_env())
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip() and not line.startswith("edgeft: running ")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr  # one line (beside the backend's): no Ray log, no traceback
    assert re.search(rf"node [0-9a-f]{{8}} \(.+\) cannot read '{re.escape(str(data))}/\w+/[^']+', which the driver can: give the "
                     "workers a path every node sees", proc.stderr), proc.stderr


def big_dataset(root: Path, per_class: int = 400) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / name / f"{i}.jpg"), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    return root


def wait_for_shards(folder: Path, count: int, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while len(list(folder.glob("shard-*.npy"))) < count and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)


def test_a_worker_node_killed_mid_job_changes_nothing(bundle, tmp_path) -> None:
    data = big_dataset(tmp_path / "data", per_class=700)
    args = ["extract", data, "--model", bundle, "--rows-per-shard", 32, "--batch", 8]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    with LoopbackCluster() as spare:
        spare.start(workers=2)
        proc = subprocess.Popen([sys.executable, "-m", "edgeft", *map(str, args), "--out", str(tmp_path / "ray"), "--ray",
                                 spare.address], env=driver_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_shards(tmp_path / "ray", 2, proc)
        assert proc.poll() is None, "the job ended before a node could be killed"
        spare.kill(spare.nodes[-1])  # a whole worker node: raylet, agents and its actors
        out, errors = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + errors
    same_features(tmp_path / "ray", tmp_path / "local")


def test_an_interrupted_ray_job_resumes(cluster, bundle, tmp_path) -> None:
    data = big_dataset(tmp_path / "data", per_class=1000)  # long enough that the interrupt lands mid-job
    args = ["extract", data, "--model", bundle, "--rows-per-shard", 16, "--batch", 8]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "edgeft", *map(str, args), "--out", str(tmp_path / "ray"), "--ray",
                             cluster.address], env=driver_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_shards(tmp_path / "ray", 3, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    written = len(list((tmp_path / "ray").glob("shard-*.npy")))
    assert 3 <= written < 125
    proc = edgeft(*args, "--out", tmp_path / "ray", "--ray", cluster.address, "--resume", env=driver_env())
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^{2000 - written * 16} frames in", proc.stdout, re.M), proc.stdout  # only what was missing
    same_features(tmp_path / "ray", tmp_path / "local")


def test_token_authentication(bundle, tmp_path) -> None:
    data = class_folders(tmp_path / "data", per_class=4)
    with LoopbackCluster(env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}) as secured:
        secured.start(workers=0)
        args = ["extract", data, "--model", bundle, "--ray", secured.address]
        proc = edgeft(*args, "--out", tmp_path / "with", env=driver_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN))
        assert proc.returncode == 0, proc.stderr
        proc = edgeft(*args, "--out", tmp_path / "without", env=driver_env())
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "token authentication: set RAY_AUTH_MODE=token" in proc.stderr, proc.stderr


def test_local_cluster_and_bad_addresses(bundle, tmp_path) -> None:
    data = class_folders(tmp_path / "data", per_class=4)
    home = tmp_path / "home"  # a new local cluster writes its token to ~/.ray
    env = {k: v for k, v in driver_env(HOME=str(home)).items() if k != "RAY_AUTH_MODE"}  # Ray's own default
    proc = edgeft("extract", data, "--model", bundle, "--out", tmp_path / "local", "--ray", "local", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (home / ".ray" / "auth_token").is_file()  # Ray turns token authentication on for new local clusters
    for address, message in (("127.0.0.2:1", "cannot reach a Ray cluster at 127.0.0.2:1"), ("nowhere", "is not auto, local or HOST:PORT")):
        proc = edgeft("extract", data, "--model", bundle, "--out", tmp_path / "bad", "--ray", address, env=driver_env())
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    proc = edgeft("extract", "--source", "camera0", "--model", bundle, "--out", tmp_path / "cam", "--ray", "127.0.0.2:1", env=driver_env())
    assert proc.returncode == 1 and "'camera0' is live (a camera, a stream, or --rate): extract it on this machine" in proc.stderr
    assert not (tmp_path / "cam").exists()


@pytest.fixture(scope="module")
def proved_bundle(tmp_path_factory) -> Path:
    """With probes, so that --device auto may pick OpenVINO BF16 on a CPU that has it."""
    return write_tiny_bundle(tmp_path_factory.mktemp("ray-proved") / "tiny", proof=True)


def test_ray_runs_the_drivers_choice_of_backend_and_records_it(cluster, proved_bundle, tmp_path) -> None:
    """`--device auto` on one process and on the cluster: the same backend and precision (OpenVINO
    BF16 where the CPU has it), recorded in features.json, the same features."""
    import json

    from edgeft.runtime import Engine

    data = class_folders(tmp_path / "data", per_class=12)
    args = ["extract", data, "--model", proved_bundle, "--rows-per-shard", 8]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    proc = edgeft(*args, "--out", tmp_path / "ray", "--ray", cluster.address, env=driver_env())
    assert proc.returncode == 0, proc.stderr
    same_features(tmp_path / "ray", tmp_path / "local")
    meta = json.loads((tmp_path / "ray" / "features.json").read_text())
    chosen = Engine.load(proved_bundle)  # what auto picks on this machine
    assert meta["computed_by"] == {"device": chosen.target.device, "precision": chosen.precision, "backend": chosen.provider}
    assert meta["computed_on"].startswith(__import__("edgeft.runtime.cpu", fromlist=["cpu_info"]).cpu_info().model)


def test_no_bundle_copy_is_left_behind_on_the_workers(bundle, tmp_path) -> None:
    scratch = tmp_path / "worker-tmp"
    scratch.mkdir()
    data = class_folders(tmp_path / "data", per_class=6)
    with LoopbackCluster(env={"TMPDIR": str(scratch)}) as own:
        own.start(workers=1)
        proc = edgeft("extract", data, "--model", bundle, "--out", tmp_path / "out", "--ray", own.address, env=driver_env())
        assert proc.returncode == 0, proc.stderr
        assert not list(scratch.glob("edgeft-bundle-*"))  # while the actors are still alive, too


def test_losing_the_head_mid_job_is_said_and_the_job_resumes(bundle, tmp_path) -> None:
    data = big_dataset(tmp_path / "data", per_class=500)
    args = ["extract", data, "--model", bundle, "--rows-per-shard", 16, "--batch", 8]
    assert edgeft(*args, "--out", tmp_path / "local").returncode == 0
    with LoopbackCluster() as doomed:
        doomed.start(workers=1)
        proc = subprocess.Popen([sys.executable, "-m", "edgeft", *map(str, args), "--out", str(tmp_path / "ray"), "--ray",
                                 doomed.address], env=driver_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_shards(tmp_path / "ray", 2, proc)
        assert proc.poll() is None, "the job ended before the head could be killed"
        doomed.kill(doomed.nodes[0])  # the head: GCS, raylet and its actors
        began = time.monotonic()
        _, errors = proc.communicate(timeout=120)
        took = time.monotonic() - began
    assert proc.returncode == 1 and took < 60, (took, errors)
    lines = [line for line in errors.splitlines() if line.strip()]
    assert lines[-1].startswith("error: lost the Ray cluster's head") and "--resume" in lines[-1], errors
    assert "Traceback" not in errors
    with LoopbackCluster() as again:
        again.start(workers=1)
        proc = edgeft(*args, "--out", tmp_path / "ray", "--ray", again.address, "--resume", env=driver_env())
    assert proc.returncode == 0, proc.stderr
    same_features(tmp_path / "ray", tmp_path / "local")
