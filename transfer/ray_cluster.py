"""Reaching a Ray cluster (the `ray` extra): `auto`, `local` or HOST:PORT, in bounded time, with
one-line errors; and the session a job runs in, which turns a worker's failure into one line."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from edgeft.export import native_stderr_muted
from edgeft.runtime import EdgeftError, first_line


class RayError(EdgeftError):
    """The cluster cannot be reached or the job cannot run on it."""


@dataclass(frozen=True)
class RayConfig:
    address: str  # auto (a running cluster or RAY_ADDRESS) | local (start one here) | HOST:PORT
    actors: int | None = None  # default: the cluster's CPUs / cpus_per_actor
    cpus_per_actor: int = 1  # onnxruntime threads per actor
    batch: int | None = None  # frames per map_batches call; default: extract's --batch
    decode: str = "reduced"  # how workers decode JPEG frames (`edgeft.runtime.sources.jpeg`)
    connect_timeout_s: float = 15.0
    head_lost_s: float = 10.0  # the head's GCS unreachable this long mid-job: the job stops, and says so


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
        with native_stderr_muted():  # the C++ core's "Set ray log level from environment variable", before that level holds
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        cause = f"{exc} {exc.__cause__ or ''}"
        hint = (" (the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH"
                " or ~/.ray/auth_token, as for its `ray start`)") if "uthentication" in cause else ""
        raise RayError(f"cannot connect to the Ray cluster at '{config.address}': {first_line(exc)}{hint}") from None


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


@contextlib.contextmanager
def cluster_session(config: RayConfig, report: RayReport) -> Iterator[None]:
    """Connected for the block, then shut down; its time goes into `report`. A worker's error
    (Ray wraps it in its own types) leaves as one RayError line."""
    connect(config)  # sets Ray's environment before `import ray` reads it
    import ray

    start = time.perf_counter()
    watch = HeadWatch(ray.get_runtime_context().gcs_address, config.head_lost_s)
    try:
        # Ray's driver prints cluster events ("(raylet) ... will be retried") to sys.stdout: stdout is for our results
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except Exception as exc:  # noqa: BLE001 - Ray wraps a worker's error in its own exception types
        if isinstance(exc, EdgeftError) and not isinstance(exc, ray.exceptions.RayError):
            raise
        raise RayError(_worker_message(exc)) from None
    finally:
        watch.stop()
        report.seconds = time.perf_counter() - start
        ray.shutdown()


class HeadWatch(threading.Thread):
    """Ray's driver, once the head's GCS is gone, waits about a minute and then ends the process
    from C++ with exit code 1 and not a word. This watch connects to the GCS every second and,
    when it has been unreachable for `lost_s`, says what happened and ends the job itself: the
    features folder holds every shard finished so far (shards are written whole), so the same
    command with --resume continues it."""

    def __init__(self, address: str, lost_s: float):
        super().__init__(name="edgeft-ray-head-watch", daemon=True)
        host, _, port = address.rpartition(":")
        self.host, self.port, self.lost_s = host, int(port), lost_s
        self._stopped = threading.Event()
        self.start()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        since = None
        while not self._stopped.wait(1.0):
            try:
                socket.create_connection((self.host, self.port), timeout=1.0).close()
                since = None
            except OSError:
                since = since or time.monotonic()
                if time.monotonic() - since >= self.lost_s and not self._stopped.is_set():
                    self._give_up()

    def _give_up(self) -> None:
        sys.stderr.write(f"error: lost the Ray cluster's head at {self.host}:{self.port} mid-job (unreachable for "
                         f"{self.lost_s:g} s): the features folder keeps every shard finished so far; run the same "
                         "command with --resume once the cluster is back\n")
        sys.stderr.flush()
        os._exit(1)  # the driver's threads are inside Ray's C++ client: nothing else would end them in time


def _worker_message(exc: BaseException) -> str:
    """The first line a user should see: our own error from a worker (Ray chains it, or wraps it
    in a type derived from both its own and ours), else Ray's first line."""
    from ray.exceptions import RayError as RaysError

    chain, seen = [exc], set()
    while chain:
        error = chain.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, EdgeftError) and not isinstance(error, RaysError) and str(error).strip():
            return first_line(error)
        chain += [error.__cause__, error.__context__, getattr(error, "cause", None)]
    text = str(exc).strip()
    ours = [line for line in text.splitlines() if "RayError: " in line and "raise " not in line]
    return ours[0].split("RayError: ", 1)[1].strip() if ours else first_line(exc)
