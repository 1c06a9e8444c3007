"""`edgeft extract --ray ADDRESS`: the same extraction on a Ray cluster (the `ray` extra).

The plan, the shards and the index are exactly single-process extract's: the driver plans,
Ray Data maps the pending items over an actor pool (`map_batches`), and the driver writes each
shard as its rows come back, in order. Each actor materialises the bundle once from the object
store, verifies it against the manifest's sha256 (`load_bundle`), and runs one Engine with
onnxruntime's intra-op threads set to the CPUs Ray gave the actor (onnxruntime ignores
OMP_NUM_THREADS, so without this several actors would oversubscribe a node). Images are read and
decoded on the workers, from paths every node sees (a shared file system). A worker process or
node that dies is replaced: Ray Data's actor pools restart actors and retry their tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeft.runtime import EdgeftError, Engine, load_bundle
from edgeft.runtime.sources import FrameReader, frame_ref, parse_ref

from .datasets import Item, Plan
from .extract import ExtractConfig, Featurize, Shard, item_features, write_features

log = logging.getLogger("edgeft")


class RayError(EdgeftError):
    """The cluster cannot be reached or the job cannot run on it."""


@dataclass(frozen=True)
class RayConfig:
    address: str  # auto (a running cluster or RAY_ADDRESS) | local (start one here) | HOST:PORT
    actors: int | None = None  # default: the cluster's CPUs / cpus_per_actor
    cpus_per_actor: int = 1  # onnxruntime threads per actor
    batch: int | None = None  # frames per map_batches call; default: extract's --batch
    connect_timeout_s: float = 15.0


@dataclass
class RayReport:
    """What the job did: rows per node, and how long it took."""

    rows_per_node: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: float = 0.0
    actors: int = 0

    def lines(self) -> list[str]:
        total = sum(self.rows_per_node.values())
        out = [f"{total} frames in {self.seconds:.1f} s on {len(self.rows_per_node)} node(s), {self.actors} actors: "
               f"{total / max(self.seconds, 1e-9):.1f} frames/s"]
        out += [f"  node {node}: {rows} frames, {rows / max(self.seconds, 1e-9):.1f} frames/s"
                for node, rows in sorted(self.rows_per_node.items())]
        return out


class _Featurizer:
    """A Ray Data actor: one verified Engine, fed batches of planned items."""

    def __init__(self, bundle_files: list, threads: int | None):
        import ray

        files = ray.get(bundle_files[0])
        folder = Path(tempfile.mkdtemp(prefix="edgeft-bundle-"))
        for name, data in files.items():
            (folder / name).write_bytes(data)
        context = ray.get_runtime_context()
        cpus = threads or max(1, int(context.get_assigned_resources().get("CPU", 1)))
        self.engine = Engine(load_bundle(folder), _cpu_engine(cpus))  # verified here, on this node
        self.node = f"{context.get_node_id()[:8]} ({socket.gethostname()})"
        self.frames = FrameReader()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [Item(p, "", "", flip=bool(f), brightness=float(b)) for p, f, b in zip(batch["path"], batch["flip"], batch["brightness"])]
        for item, seen in zip(items, batch["seen_by_driver"]):
            if seen and not parse_ref(item.path) and not os.path.exists(item.path):
                raise RayError(f"node {self.node} cannot read '{item.path}', which the driver can: give the workers a path "
                               "every node sees (a shared file system)")
        shape = self.engine.manifest.output("features").shape[1:]
        rows, _ = item_features(self.engine, items, len(items), shape, self.frames)
        return {"position": batch["position"], "features": rows, "node": np.array([self.node] * len(items))}


def _cpu_engine(threads: int):
    from edgeft.runtime import EngineConfig

    return EngineConfig(device="cpu", threads=threads)


def connect(config: RayConfig) -> None:
    """ray.init for `auto`, `local` or HOST:PORT; an unreachable address is one line, in bounded time."""
    try:
        import ray
    except ImportError:
        raise RayError("--ray needs the ray extra: pip install 'edgeft[ray]'") from None
    # Ray's client retries a dead or refusing GCS for minutes; these (read at `import ray`) make it give up in
    # seconds. Its C++ log's warnings (connection retries; actor arguments held in the object store, which the
    # driver keeps alive) are not the user's business: failures reach the user as exceptions. Set any to override.
    for name, value in (("RAY_gcs_server_port_wait_time_s", "3"), ("RAY_gcs_rpc_server_connect_timeout_s", "3"),
                        ("RAY_py_gcs_connect_timeout_s", "5"), ("RAY_BACKEND_LOG_LEVEL", "fatal"), ("RAY_USAGE_STATS_ENABLED", "0")):
        os.environ.setdefault(name, value)
    address = None if config.address == "local" else config.address
    if address not in (None, "auto"):
        _reachable(address, config.connect_timeout_s)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        cause = f"{exc} {exc.__cause__ or ''}"
        hint = (" (the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH"
                " or ~/.ray/auth_token, as for its `ray start`)") if "uthentication" in cause else ""
        raise RayError(f"cannot connect to the Ray cluster at '{config.address}': {str(exc).strip().splitlines()[0]}{hint}") from None


def _reachable(address: str, timeout_s: float) -> None:
    """A TCP connect to the head's GCS port first: Ray's own client retries an unreachable
    address for minutes before it gives up."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayError(f"--ray '{address}' is not auto, local or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayError(f"cannot reach a Ray cluster at {host}:{port} ({exc.strerror or exc}): start one with "
                       f"`ray start --head --port {port}`, or pass --ray local") from None


def ray_features(bundle: Path, config: RayConfig, batch: int, report: RayReport) -> Featurize:
    def featurize(shards: list[Shard]) -> Iterator[tuple[int, np.ndarray, int]]:
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in plan order: shards fill one by one
        context.print_on_execution_start = False
        context.wait_for_min_actors_s = 120  # a pool the cluster can never place is an error, not a hang
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # our own progress bar and summary say it
        files = {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()}
        cpus = int(ray.cluster_resources().get("CPU", 1))
        report.actors = config.actors or max(1, cpus // config.cpus_per_actor)
        rows = [{"position": position, "path": _absolute(item.path), "flip": item.flip, "brightness": item.brightness,
                 "seen_by_driver": bool(parse_ref(item.path)) or os.path.exists(item.path)}
                for position, (_, items) in enumerate(shards) for item in items]
        dataset = ray.data.from_items(rows).map_batches(
            # the bundle goes to the object store once and reaches each node once; passed inside a list, so that the
            # actor fetches it (a bare ObjectRef argument makes Ray warn about restarts for nothing: we hold the ref)
            _Featurizer, fn_constructor_kwargs={"bundle_files": [ray.put(files)], "threads": config.cpus_per_actor},
            batch_size=config.batch or batch, batch_format="numpy",
            compute=ActorPoolStrategy(size=report.actors),  # actors on a node that dies are restarted, their tasks retried
            num_cpus=config.cpus_per_actor)
        yield from _in_shards(dataset.iter_batches(batch_size=None, batch_format="numpy"), shards, report)

    return featurize


def _in_shards(batches, shards: list[Shard], report: RayReport) -> Iterator[tuple[int, np.ndarray, int]]:
    """Rows arrive in plan order; each shard is yielded as soon as its last row is in."""
    pending = iter(shards)
    number, items = next(pending, (None, []))
    buffer: list[np.ndarray] = []
    held = 0
    for batch in batches:
        for node in batch["node"]:
            report.rows_per_node[str(node)] += 1
        buffer.append(batch["features"])
        held += len(batch["features"])
        while number is not None and held >= len(items):
            rows = np.concatenate(buffer)
            shard, rest = rows[: len(items)], rows[len(items) :]
            yield number, shard, int(np.isnan(shard.reshape(len(shard), -1)).any(axis=1).sum())
            buffer, held = [rest], len(rest)
            number, items = next(pending, (None, []))


def _absolute(path: str) -> str:
    """What a worker, whose working folder is not the driver's, must be told."""
    ref = parse_ref(path)
    if ref is None:
        return str(Path(path).resolve())
    bag, topic, log_time = ref
    return frame_ref(str(Path(bag).resolve()), topic, log_time)


def extract_on_ray(bundle: Path, plan: Plan, out: Path, settings: dict, config: ExtractConfig, ray_config: RayConfig,
                   progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[int, RayReport]:
    """`extract` with the features computed on the cluster; returns the unreadable count and the report."""
    manifest = load_bundle(bundle).manifest  # verified on the driver too, before anything is sent
    connect(ray_config)  # sets Ray's environment before `import ray` reads it
    import ray

    report = RayReport()
    start = time.perf_counter()
    try:
        # Ray's driver prints cluster events ("(raylet) ... will be retried") to sys.stdout: stdout is for our results
        with contextlib.redirect_stdout(sys.stderr):
            featurize = ray_features(bundle, ray_config, config.batch, report)
            unreadable = write_features(manifest, plan, out, settings, config, featurize, progress)
    except Exception as exc:  # noqa: BLE001 - Ray wraps a worker's error in its own exception types
        if isinstance(exc, EdgeftError) and not isinstance(exc, ray.exceptions.RayError):
            raise
        raise RayError(_worker_message(exc)) from None
    finally:
        report.seconds = time.perf_counter() - start
        ray.shutdown()
    return unreadable, report


def _worker_message(exc: BaseException) -> str:
    """The first line a user should see: our own error from a worker, else Ray's first line."""
    text = str(exc)
    for line in text.splitlines():
        if "RayError:" in line or "EdgeftError" in line or "cannot read" in line:
            return line.split("RayError:", 1)[-1].strip()
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
