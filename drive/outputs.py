"""Where a drive's ticks go besides the car: the runtime's sinks and the driving-log recorder.

They run on a thread of their own behind a bounded queue, so a slow disk or a busy Foxglove
viewer never delays a command: when the queue is full, the tick is counted as dropped from the
outputs (the car still got its command). A sink that cannot write (a full disk) ends the drive
the way it ends `edgeft run`: its message becomes the drive's error.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from edgeft.runtime import Result, Sink, SinkError

from .messages import Command
from .record import DriveLog
from .stats import DriveStats


@dataclass(frozen=True)
class Written:
    result: Result
    command: Command
    speed: float


_END = object()


class Outputs:
    def __init__(self, sinks: Sequence[Sink], log: DriveLog | None, stats: DriveStats, size: int = 64):
        self.sinks, self.log, self.stats = list(sinks), log, stats
        self.error: str | None = None
        self.failed = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._run, name="edgeft-drive-outputs", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return bool(self.sinks) or self.log is not None

    def put(self, item: Written) -> None:
        if self.failed.is_set():
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.count("outputs_dropped")

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self.failed.is_set():
                continue
            try:
                for sink in self.sinks:
                    sink.write(item.result)
                if self.log is not None and item.command.stop is None and item.result.jpeg is not None:
                    self.log.write(item.result.jpeg, item.command, item.speed, item.result.t_capture)
            except SinkError as exc:
                self.error = str(exc)
                self.failed.set()
            except Exception as exc:  # noqa: BLE001 - an output's bug must not leave the queue unread
                self.error = f"an output failed ({type(exc).__name__}: {exc})"
                self.failed.set()

    def discard(self) -> None:
        """Undo opening, when the drive could not start: no empty files left behind."""
        self._queue.put(_END)
        self._thread.join(5.0)
        for output in [*self.sinks, *([self.log] if self.log else [])]:
            output.discard()

    def close(self, timeout_s: float = 30.0) -> str | None:
        """Write what is queued, stop the thread, close every output (whole); the first error."""
        self._queue.put(_END)
        self._thread.join(timeout_s)
        for output in [*self.sinks, *([self.log] if self.log else [])]:
            try:
                output.close()
            except SinkError as exc:
                self.error = self.error or str(exc)
        return self.error
