"""What the closed-loop tests share: frames the tiny steering bundle reads exactly, and a drive
running in a thread of the test (loopback, bounded, always joined)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import cv2
import numpy as np

from edgeft.drive import DriveConfig, DriveStats, Outputs, UdacityConfig, UdacityServer, drive
from tiny_bundle import steering_frame

STEERINGS = (-0.6, -0.45, -0.3, -0.15, 0.0, 0.15, 0.3, 0.45, 0.6)  # far enough apart to tell apart after JPEG


def jpeg(frame: np.ndarray, quality: int = 75) -> bytes:
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def expected_steering(data: bytes) -> float:
    """What the tiny bundle (gain 1) computes for a JPEG: (mean R - mean B) / 255 of the decoded frame."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(np.float64)
    blue, _, red = image.reshape(-1, 3).mean(axis=0)
    return (red - blue) / 255


def steering_frames() -> list[bytes]:
    """One JPEG per STEERINGS value."""
    return [jpeg(steering_frame(s)) for s in STEERINGS]


class Running:
    def __init__(self, server: UdacityServer, stats: DriveStats):
        self.server, self.stats = server, stats
        self.outcome = None

    @property
    def port(self) -> int:
        return self.server.port


@contextlib.contextmanager
def udacity_drive(engine, config: DriveConfig = DriveConfig(), sinks=(), log=None, ping_interval_s: float = 25.0,
                  max_ticks: int | None = None) -> Iterator[Running]:
    stats = DriveStats()
    outputs = Outputs(list(sinks), log, stats)
    server = UdacityServer(engine, config, stats, outputs, UdacityConfig(port=0, ping_interval_s=ping_interval_s))
    running, ready = Running(server, stats), threading.Event()

    def go() -> None:
        running.outcome = drive(server, outputs, stats, max_ticks, handle_signals=False, started=ready.set)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    if not ready.wait(20):
        raise TimeoutError("the drive did not start")
    try:
        yield running
    finally:
        server.finished.set()
        thread.join(30)
        if thread.is_alive():
            raise TimeoutError("the drive did not stop")
