"""Test helpers: run the CLI (in-process or as a real process) and compute Keras references independently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from edgeft.cli import app


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
