"""Datasets in object storage: `extract s3://bucket/...`, on this machine and on a real loopback
Ray cluster, against extraction of the same files on local disk.

The bucket lives in moto's standalone S3 server on 127.0.0.2, an S3-compatible HTTP endpoint
(no cloud, no internet); edgeft reaches it as it would reach AWS, through universal-pathlib and
s3fs, with AWS_ENDPOINT_URL and credentials in the environment of the driver and of every node.
"""

from __future__ import annotations

import csv
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from helpers import edgeft

pytest.importorskip("upath", reason="the cloud extra (universal-pathlib) is not installed")
pytest.importorskip("s3fs", reason="the cloud extra (s3fs) is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] (test extra) is not installed: no local S3 endpoint")
pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from test_transfer import class_folders  # noqa: E402
from tiny_bundle import write_tiny_bundle  # noqa: E402

BUCKET = "rig"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A running S3 endpoint, and the environment that reaches it."""
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.2", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.2:{port}", "AWS_ACCESS_KEY_ID": "edgeft", "AWS_SECRET_ACCESS_KEY": "edgeft",
           "AWS_DEFAULT_REGION": "us-east-1"}
    yield env
    server.stop()


@pytest.fixture(scope="module")
def data(s3, tmp_path_factory) -> Path:
    """Class folders and a driving log on disk, uploaded to the bucket under the same names."""
    import boto3

    root = tmp_path_factory.mktemp("storage")
    class_folders(root / "classes", per_class=6)
    assert edgeft("sample", root / "drive", "--frames", 12).returncode == 0
    client = boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"], aws_access_key_id="edgeft", aws_secret_access_key="edgeft",
                          region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".mp4":
            client.upload_file(str(path), BUCKET, path.relative_to(root).as_posix())
    return root


def with_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}, "RAY_AUTH_MODE": "disabled", **extra}


def index_without_paths(folder: Path) -> list[dict[str, str]]:
    with open(folder / "index.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "path"} for row in csv.DictReader(fh)]


@pytest.mark.parametrize("dataset", ["classes", "drive"])
def test_a_dataset_in_object_storage_extracts_as_on_disk(s3, data, tmp_path, dataset) -> None:
    from edgeft.transfer import load_features

    bundle = write_tiny_bundle(tmp_path / "tiny")
    args = ["--model", bundle, "--rows-per-shard", 8]
    assert edgeft("extract", data / dataset, *args, "--out", tmp_path / "disk").returncode == 0
    proc = edgeft("extract", f"s3://{BUCKET}/{dataset}", *args, "--out", tmp_path / "s3", env=with_env(**s3))
    assert proc.returncode == 0, proc.stderr
    paths = [row["path"] for row in csv.DictReader(open(tmp_path / "s3" / "index.csv", newline=""))]
    assert paths and all(p.startswith(f"s3://{BUCKET}/{dataset}/") for p in paths)
    assert index_without_paths(tmp_path / "s3") == index_without_paths(tmp_path / "disk")
    np.testing.assert_array_equal(load_features(tmp_path / "s3").x, load_features(tmp_path / "disk").x)


def test_ray_workers_read_object_storage(s3, data, tmp_path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from raycluster import LoopbackCluster
    from test_ray import same_features

    bundle = write_tiny_bundle(tmp_path / "tiny")
    args = ["extract", f"s3://{BUCKET}/drive", "--model", bundle, "--rows-per-shard", 8]
    assert edgeft(*args, "--out", tmp_path / "local", env=with_env(**s3)).returncode == 0
    with LoopbackCluster(env=s3) as cluster:  # each node reads with its own environment, as on a real cluster
        cluster.start(workers=1)
        proc = edgeft(*args, "--out", tmp_path / "ray", "--ray", cluster.address, env=with_env(**s3))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"on 2 node\(s\)", proc.stdout), proc.stdout
    same_features(tmp_path / "ray", tmp_path / "local")


def test_object_storage_failures_are_one_line(s3, data, tmp_path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from raycluster import LoopbackCluster

    bundle = write_tiny_bundle(tmp_path / "tiny")
    proc = edgeft("extract", f"s3://{BUCKET}/nothing-here", "--model", bundle, "--out", tmp_path / "a", env=with_env(**s3))
    assert proc.returncode == 1 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = edgeft("extract", "nosuchfs://x/y", "--model", bundle, "--out", tmp_path / "b", env=with_env(**s3))
    assert proc.returncode == 1 and "cannot read 'nosuchfs://x/y'" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    closed = {**s3, "AWS_ENDPOINT_URL": "http://127.0.0.2:9"}  # the storage endpoint is down
    proc = edgeft("extract", f"s3://{BUCKET}/classes", "--model", bundle, "--out", tmp_path / "d", env=with_env(**closed))
    lines = said(proc)
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: cannot read"), proc.stderr
    with LoopbackCluster(env=closed) as cluster:
        cluster.start(workers=0)
        proc = edgeft("extract", f"s3://{BUCKET}/classes", "--model", bundle, "--out", tmp_path / "c", "--ray", cluster.address,
                      env=with_env(**s3))
    assert proc.returncode == 1 and len(said(proc)) == 1, proc.stderr
    assert re.search(rf"node [0-9a-f]{{8}} \(.+\): cannot read 's3://{BUCKET}/classes/\w+/\d+\.png'", proc.stderr), proc.stderr


def said(proc) -> list[str]:
    """stderr's lines but the one naming the backend that runs: no library's log around the error."""
    return [line for line in proc.stderr.strip().splitlines() if line.strip() and not line.startswith("edgeft: running ")]
