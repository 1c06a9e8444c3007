"""What every sink shares: the protocol, checks that run before anything is opened, and writes
that never leave half a line or half a file behind."""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import EdgeftError
from ..results import Result
from ..ros2.options import RosOptions


class SinkError(EdgeftError):
    """An output cannot be written: a bad path, an existing file, a full disk."""


class Sink(Protocol):
    def write(self, result: Result) -> None: ...

    def close(self) -> None:
        """Flush and release; whatever was written stays whole."""

    def discard(self) -> None:
        """Undo opening, when a later output of the same run failed to open."""

    # Optional: `bind(pipeline)`, called by `run` before the first result, for a sink that reports
    # on the run as a whole (the ROS 2 sink's diagnostics read its stats, engine and sources).


@dataclass(frozen=True)
class SinkOptions:
    force: bool = False  # replace existing outputs (never done otherwise)
    fps: float = 20.0  # video sinks: frames per second written into the file
    rows_per_shard: int = 1024  # feature shards
    resume: bool = False  # feature folders: continue one written by an interrupted run
    computed_by: dict | None = None  # feature folders: Engine.computed_by, recorded (and matched on --resume)
    ros: RosOptions = RosOptions()  # the ros2: output (domain, features, richer types, diagnostics)


def describe_os_error(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def check_writable_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor must be a folder we can create files in (probed for real:
    permissions, read-only mounts and a full disk all show up here, before any output opens)."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise SinkError(f"{what} '{path}': '{parent}' is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgeft-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SinkError(f"{what} '{path}': cannot write in '{parent}' ({describe_os_error(exc)})") from None


def check_new_file(path: Path, what: str, force: bool) -> None:
    """A file output: not a folder, not an existing file unless --force, in a writable place."""
    if path.is_dir():
        raise SinkError(f"{what} '{path}' is a folder: give a file name")
    if path.exists() and not force:
        raise SinkError(f"{what} '{path}' already exists: pass --force to replace it, or pick another name")
    check_writable_parent(path, what)


def file_mode() -> int:
    """0666 less the umask: what `open` would give, which mkstemp's 0600 is not."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class LineFile:
    """Append-only text lines, each written whole: a failed write (full disk, file-size limit)
    is cut back to the last complete line and raised as a SinkError."""

    def __init__(self, path: Path, what: str, append: bool = False):
        self.path, self.what = path, what
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self._fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise SinkError(f"cannot open {what} '{path}': {describe_os_error(exc)}") from None
        self._size = os.fstat(self._fd).st_size
        self.lines = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            os.ftruncate(self._fd, self._size)
            raise SinkError(f"cannot write {self.what} '{self.path}' ({describe_os_error(exc)}); "
                            f"it holds the {self.lines} complete lines written before") from None
        self._size += written
        self.lines += 1

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = -1


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as .npy file bytes, for atomic_write."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def atomic_write(path: Path, data: bytes) -> None:
    """Write a temp file beside `path`, fsync, rename: readers see the whole file or none of it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SinkError(f"cannot write '{path}' ({describe_os_error(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SinkError(f"cannot write '{path}' ({describe_os_error(exc)})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

