"""Where the CPU of an `extract --ray` job goes, per process, against the same job in one process.

    .venv/bin/python benchmarks/ray_cpu_account.py [--frames 1200] [--nodes 2]

Every process's CPU time (utime + stime from /proc, sampled every 0.5 s so processes that end
are counted) over one InceptionV3 job on the class-folder frames of benchmarks/ray_extract.py, in
one process and then on a loopback cluster started before the clock. First, the idle cluster's
own cost over 20 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import WORK, cpu_line, ensure_bundle  # noqa: E402
from ray_extract import dataset  # noqa: E402
from raycluster import LoopbackCluster  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (command line, CPU seconds so far), for every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text.rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            table[int(stat.parent.name)] = (command[:80] or text[text.index("(") + 1 : text.rindex(")")],
                                            (int(fields[11]) + int(fields[12])) / HZ)
        except (OSError, IndexError, ValueError):
            continue
    return table


def account(work, label: str) -> None:
    """CPU seconds each process spent while `work()` ran, largest first."""
    before, seen, stop = cpu_seconds(), {}, threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.update(cpu_seconds())
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    work()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    seen.update(cpu_seconds())
    used = {pid: (cmd, cpu - before.get(pid, ("", 0.0))[1]) for pid, (cmd, cpu) in seen.items()}
    used = {pid: v for pid, v in used.items() if v[1] > 0 and pid != os.getpid()}
    ray = sum(cpu for cmd, cpu in used.values() if "ray" in cmd)
    print(f"\n{label}: {wall:.1f} s wall, {sum(c for _, c in used.values()):.1f} s CPU "
          f"({ray:.1f} s in Ray's processes, {100 * ray / wall:.1f}% of one core)")
    for cmd, cpu in sorted(used.values(), key=lambda v: -v[1])[:12]:
        print(f"  {cpu:7.1f} s  {cmd}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    print(f"CPU: {cpu_line()}")
    bundle, data = ensure_bundle("InceptionV3", 299), dataset(args.frames)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-m", "edgeft", "extract", str(data), "--model", str(bundle), "--out", str(WORK / "ray-account-out"),
               "--device", "cpu", "--force"]
    with LoopbackCluster(object_store_mb=512) as cluster:
        cluster.start(workers=args.nodes - 1, cpus=2 // args.nodes)
        time.sleep(3)
        account(lambda: time.sleep(20), f"idle cluster of {args.nodes} node(s), 20 s")
        account(lambda: subprocess.run([*command, "--ray", cluster.address], env=env, check=True, capture_output=True),
                f"Ray, {args.nodes} node(s), {args.frames} frames")
    account(lambda: subprocess.run(command, env=env, check=True, capture_output=True), f"one process, {args.frames} frames")


if __name__ == "__main__":
    main()
