"""Test helper: a real multi-node Ray cluster on loopback, one `ray start` process per node.

127.0.0.2, not 127.0.0.1: Ray rewrites 127.0.0.1 and localhost to the machine's outward
address, which a sandbox may firewall. Each node runs in its own session, and a node is
stopped by SIGKILL of its process group and every descendant (actors have groups of their
own): `ray stop` would kill every Ray process on the machine, and a SIGTERMed GCS can hang.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
HOST = "127.0.0.2"


def _children() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return table


class LoopbackCluster:
    def __init__(self, env: dict[str, str] | None = None, object_store_mb: int = 100):
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        self.temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # unix socket paths must stay short
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
                    # a killed node is declared dead in about a second, not fifteen
                    "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                    "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "0", **(env or {})}
        self.nodes: list[int] = []
        self.object_store_mb = object_store_mb

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def _start(self, *args: str, cpus: int = 1, hide: Path | None = None) -> int:
        common = ["--node-ip-address", HOST, "--temp-dir", self.temp, "--object-store-memory", str(self.object_store_mb << 20),
                  "--disable-usage-stats", "--include-log-monitor=false", "--num-cpus", str(cpus)]
        command = [RAY, "start", *args, *common]
        if hide is not None:  # the node's processes live in a mount namespace where `hide` is an empty tmpfs
            command = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(hide), *command]
        proc = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill(proc.pid)
            raise RuntimeError("ray start timed out") from None
        if proc.returncode != 0:
            self.kill(proc.pid)
            raise RuntimeError(f"ray start failed: {out.decode()[-2000:]}")
        self.nodes.append(proc.pid)  # the session leader's pid is the node's process group
        return proc.pid

    def start(self, workers: int = 1, cpus: int = 1, head_cpus: int | None = None, hide: Path | None = None) -> LoopbackCluster:
        """A head and `workers` more nodes, `cpus` CPUs each (the head `head_cpus`, when given);
        the workers cannot see the folder `hide` (root only: see `can_hide`)."""
        self._start("--head", "--port", str(self.port), "--include-dashboard=false", cpus=cpus if head_cpus is None else head_cpus)
        for _ in range(workers):
            self._start("--address", self.address, cpus=cpus, hide=hide)
        return self

    def kill(self, group: int) -> None:
        table = _children()
        doomed = {pid for pid in table if _group_of(pid) == group}
        while True:
            more = {pid for pid, parent in table.items() if parent in doomed} - doomed
            if not more:
                break
            doomed |= more
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if group in self.nodes:
            self.nodes.remove(group)

    def shutdown(self) -> None:
        for group in reversed(list(self.nodes)):
            self.kill(group)
        time.sleep(0.2)
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def can_hide() -> bool:
    """Whether nodes can be given a folder they cannot see: a mount namespace of their own."""
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
