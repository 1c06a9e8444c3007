"""A tick's frames decoded side by side: the small pool any source with several cameras uses.

A bag or a driving log delivers its cameras as one tick, read by one capture thread. JPEG and
PNG decoding in OpenCV releases the GIL, so the cameras of a tick can decode at once on other
cores while the tick stays one unit: results come back in camera order, and the tick is handed
on whole, so the pipeline's latest-frame and back-pressure policies see exactly what a serial
decode would give them. The pool holds at most `workers` threads, started only when a tick has
two frames or more, and only ever busy with the one tick its capture thread is waiting for:
nothing queues up behind it.

By default the pool takes the cores that inference leaves free (`beside`), and at least one.
Decode threads beyond those only preempt inference's own threads, and each preempted thread
then holds up the others at their next barrier. On two cores with inference on both, serial
decode reached 2-12 points more of pure inference than a pool of two (benchmarks/RESULTS.md).
On a GPU the pool gets every core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..cpu import cpu_info

T = TypeVar("T")
R = TypeVar("R")


class DecodePool:
    """`map` a decoder over one tick's payloads, in order; `seconds` is the time spent in it."""

    def __init__(self, workers: int | None = None):
        self.asked = workers  # None: the cores left beside inference
        self.workers = max(1, workers if workers is not None else cpu_info().cores)
        self.seconds = 0.0  # wall time the caller spent decoding (the capture thread's "decode" stage)
        self._executor: ThreadPoolExecutor | None = None

    def beside(self, busy: int) -> None:
        """Size a default pool to the cores left while `busy` threads run inference (before the first tick)."""
        if self.asked is None and self._executor is None:
            self.workers = max(1, cpu_info().cores - busy)

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
