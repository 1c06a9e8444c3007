"""A sink's own thread behind a mailbox: the pipeline hands results over and never waits on a
worker that has died, and a worker that dies ends the run with its one-line reason.

A sink that encodes or writes on a thread of its own (the Foxglove sinks) must not be able to
hang the run: if the worker stops, `put` raises `SinkError` instead of waiting on a full queue
forever (which also left SIGINT and SIGTERM with nothing to interrupt).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from ..errors import EdgeftError, first_line
from .base import SinkError

log = logging.getLogger("edgeft")
_END = object()


class Mailbox:
    """Lossless and bounded: `put` waits while the worker is behind (back-pressure)."""

    def __init__(self, size: int):
        self._queue: queue.Queue = queue.Queue(maxsize=size)

    def put(self, item: object, timeout: float) -> bool:
        try:
            self._queue.put(item, timeout=timeout)
            return True
        except queue.Full:
            return False

    def get(self) -> object:
        return self._queue.get()


class Latest:
    """Lossy: per key (a camera), only the newest item waits, and `put` never waits. `get`
    takes everything waiting at once (oldest key first); the end comes after it."""

    def __init__(self, key: Callable[[object], str]):
        self._key = key
        self._waiting: dict[str, object] = {}
        self._ended = False
        self._ready = threading.Condition()
        self.replaced = 0  # items a newer one of the same key replaced before the worker took them

    def put(self, item: object, timeout: float) -> bool:
        with self._ready:
            if item is _END:
                self._ended = True
            else:
                key = self._key(item)
                self.replaced += key in self._waiting
                self._waiting.pop(key, None)
                self._waiting[key] = item
            self._ready.notify()
        return True

    def get(self) -> object:
        with self._ready:
            while not self._waiting and not self._ended:
                self._ready.wait()
            if not self._waiting:
                return _END
            taken, self._waiting = list(self._waiting.values()), {}
            return taken


class SinkWorker:
    """Runs `handle(item)` for every item put, on its own thread, until `close()`.

    `handle` raising `EdgeftError` (a full disk) or anything else (a bug) stops the worker;
    the next `put` or `close` raises `SinkError` with `what` and the reason."""

    def __init__(self, what: str, handle: Callable[[object], None], mailbox: Mailbox, name: str = "edgeft-sink"):
        self.what, self._handle, self._mailbox = what, handle, mailbox
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: object) -> None:
        while not self._mailbox.put(item, timeout=0.1):
            self.check()
        self.check()

    def check(self) -> None:
        """Raise the worker's error, if it stopped with one."""
        if self.error is not None:
            raise SinkError(self.error)
        if not self._thread.is_alive():
            raise SinkError(f"{self.what}: its writer thread has stopped")

    def close(self, timeout: float = 30.0) -> None:
        """Let the worker finish what it was given (within `timeout`: a writer stuck on a hung
        disk is left behind, said), then raise its error if it had one."""
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and not self._mailbox.put(_END, timeout=0.1):
            if time.monotonic() > deadline:
                break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self.error is not None:
            raise SinkError(self.error)
        if self._thread.is_alive():
            raise SinkError(f"{self.what}: its writer did not finish within {timeout:g} s")

    def _run(self) -> None:
        try:
            while (item := self._mailbox.get()) is not _END:
                self._handle(item)
        except EdgeftError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a worker must say why it stopped, never vanish
            log.debug("edgeft: %s failed", self.what, exc_info=True)
            self.error = f"{self.what} failed ({type(exc).__name__}: {first_line(exc)})"
