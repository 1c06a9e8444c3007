"""The run loop shared by `edgeft run` and embedding code: pipeline -> sinks, with signals
mapped to a graceful stop and every sink closed whole however the run ends."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .pipeline import Pipeline
from .results import Result
from .sinks import Sink, SinkError
from .stats import Stats


@dataclass(frozen=True)
class RunOutcome:
    stats: Stats
    signal: int | None = None  # the signal that stopped the run early (SIGINT, SIGTERM)
    error: str | None = None  # what ended it early: a sink that could not write, a source that gave up

    @property
    def exit_code(self) -> int:
        """130 / 143 after a signal, 1 after an error, else 0."""
        return 128 + self.signal if self.signal else 1 if self.error else 0


def run(pipeline: Pipeline, sinks: Sequence[Sink] = (), on_result: Callable[[Result], None] | None = None,
        handle_signals: bool = True) -> RunOutcome:
    """Stream every result into every sink. Ctrl-C and SIGTERM ask the pipeline to stop rather
    than raising mid-write: the loop drains, the capture threads are joined, sinks close whole
    (the last feature shard committed). A second signal stops waiting. A sink that cannot write
    (a full disk) ends the run the same way, and its message is the outcome's error."""
    received: list[int] = []

    def request_stop(signum: int, frame: object) -> None:  # noqa: ARG001
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        pipeline.stop()

    for sink in sinks:
        bind = getattr(sink, "bind", None)  # sinks that report on the run itself (ROS 2 diagnostics)
        if bind is not None:
            bind(pipeline)
    install = handle_signals and threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)} if install else {}
    error = None
    try:
        with pipeline:
            for result in pipeline:
                for sink in sinks:
                    sink.write(result)
                if on_result is not None:
                    on_result(result)
    except KeyboardInterrupt:
        received.append(signal.SIGINT)
    except SinkError as exc:
        error = str(exc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        closing_error = _close_all(sinks)
    error = error or closing_error
    stats = pipeline.stats
    if error is None and stats.errors:
        error = stats.errors[-1]
    return RunOutcome(stats, int(received[0]) if received else None, error)


def _close_all(sinks: Sequence[Sink]) -> str | None:
    """Close every sink even when one fails; the first failure is returned."""
    first = None
    for sink in sinks:
        try:
            sink.close()
        except SinkError as exc:
            first = first or str(exc)
    return first
