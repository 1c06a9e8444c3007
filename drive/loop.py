"""The drive's lifetime, shared by `edgeft drive` and embedding code: start a link to a simulator,
wait while it drives, and end it safely however it ends.

Ctrl-C and SIGTERM set a flag rather than raising mid-send; the link then sends each simulator
its final command (one that is safe to hold for ever) before its threads are joined and the
outputs close whole. A second signal stops waiting. A sink that cannot write ends the drive the
same way, and so does `max_ticks`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .outputs import Outputs
from .stats import DriveStats


class Link(Protocol):
    """A dialect's connection(s) to simulators: UdacityServer, DonkeyClient."""

    finished: threading.Event  # the simulator went away (for good)
    error: str | None

    def start(self) -> object: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class DriveOutcome:
    stats: DriveStats
    signal: int | None = None  # the signal that ended the drive
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """130 / 143 after a signal, 1 after an error, else 0."""
        return 128 + self.signal if self.signal else 1 if self.error else 0


def drive(link: Link, outputs: Outputs, stats: DriveStats, max_ticks: int | None = None,
          on_wait: Callable[[], None] | None = None, handle_signals: bool = True,
          started: Callable[[], None] | None = None) -> DriveOutcome:
    """Run the link until the simulator leaves, `max_ticks` commands went out, an output fails or
    a signal arrives; `on_wait` is called about ten times a second (a live display)."""
    received: list[int] = []
    stop, running = threading.Event(), threading.Event()

    def request_stop(signum: int, frame: object) -> None:  # noqa: ARG001
        if received or not running.is_set():  # a second signal, or one while still connecting
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    install = handle_signals and threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)} if install else {}
    try:
        try:
            link.start()
        except BaseException:  # nothing drove: undo the outputs rather than leave empty files
            link.stop()
            outputs.discard()
            raise
        running.set()
        try:
            if started is not None:
                started()
            while not (stop.is_set() or link.finished.is_set() or outputs.failed.is_set() or link.error
                       or (max_ticks is not None and stats.ticks >= max_ticks)):
                stop.wait(0.1)
                if on_wait is not None:
                    on_wait()
        except KeyboardInterrupt:
            received.append(signal.SIGINT)
        finally:
            link.stop()
            error = outputs.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats.ended = time.monotonic()
    return DriveOutcome(stats, int(received[0]) if received else None, link.error or error)
