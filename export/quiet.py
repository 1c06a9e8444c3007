"""Mute TensorFlow's native log lines (CUDA probing, Grappler) that no Python setting reaches."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """absl logs from C++, some of it before any flag applies, so mute file descriptor 2 itself.
    Python exceptions still propagate; only what C++ writes meanwhile is dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
