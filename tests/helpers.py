"""Test helpers: run the CLI (in-process or as a real process) and compute Keras references independently."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from edgeft.cli import app
from edgeft.runtime import SourceError, SourceOptions, open_source


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def edgeft(*args: object, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """A real `edgeft` process: exit code, stdout and stderr exactly as a user sees them."""
    return subprocess.run([sys.executable, "-m", "edgeft", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def resized_rgb(frames_bgr: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """What a Keras user would feed: each frame resized like the runtime does, as RGB floats."""
    return np.stack(
        [cv2.cvtColor(cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB) for f in frames_bgr]
    ).astype(np.float32)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-30))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_when_up(url: str, deadline_s: float = 15.0):
    """The stream at `url` opened once its server (started just before) answers."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            return open_source(url, SourceOptions(timeout_s=3))
        except SourceError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)
