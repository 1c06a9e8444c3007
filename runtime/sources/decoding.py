"""A tick's frames decoded side by side: the small pool any source with several cameras uses.

A bag or a driving log delivers its cameras as one tick, read by one capture thread. JPEG and
PNG decoding in OpenCV releases the GIL, so the cameras of a tick can decode at once on other
cores while the tick stays one unit: results come back in camera order, and the tick is handed
on whole, so the pipeline's latest-frame and back-pressure policies see exactly what a serial
decode would give them. The pool holds at most `workers` threads (default: the cores this
process may use), started only when a tick has two frames or more, and only ever busy with the
one tick its capture thread is waiting for: nothing queues up behind it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class DecodePool:
    """`map` a decoder over one tick's payloads, in order; `seconds` is the time spent in it."""

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers if workers is not None else usable_cores())
        self.seconds = 0.0  # wall time the caller spent decoding (the capture thread's "decode" stage)
        self._executor: ThreadPoolExecutor | None = None

    def map(self, decode: Callable[[T], R], payloads: Sequence[T]) -> list[R]:
        """decode(payload) for each payload, results in the payloads' order. A single payload,
        or a pool of one worker, decodes on the calling thread. An exception is raised here."""
        start = time.perf_counter()
        try:
            if len(payloads) < 2 or self.workers < 2:
                return [decode(p) for p in payloads]
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="edgeft-decode")
            return list(self._executor.map(decode, payloads))
        finally:
            self.seconds += time.perf_counter() - start

    def close(self) -> None:
        """Join the worker threads (none is busy: `map` returns only when its tick is done)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
