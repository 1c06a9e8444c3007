"""`--record-log DIR`: every drive becomes a Udacity driving log that `extract` / `train-head` read.

The layout is the simulator's own: `IMG/center_YYYY_MM_DD_HH_MM_SS_mmm.jpg` (UTC, the time the
frame arrived) and `driving_log.csv` rows `center,left,right,steering,throttle,brake,speed`
(no header, side cameras empty): the JPEG exactly as the simulator sent it, and the command
that went out. Ticks that were safe-stopped are left out: their straight wheel is not a
decision about the frame. Existing data is never replaced without `--force`, and then only the
log and its IMG folder go.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from edgeft.runtime import SinkError
from edgeft.runtime.sinks import LineFile

from .messages import Command, wire_number

LOG_NAME, IMAGES = "driving_log.csv", "IMG"


class DriveLog:
    def __init__(self, folder: Path, force: bool = False):
        self.check(folder, force)
        self.folder = folder
        try:
            if force:
                (folder / LOG_NAME).unlink(missing_ok=True)
                shutil.rmtree(folder / IMAGES, ignore_errors=True)
            self._created = not (folder / IMAGES).exists()
            (folder / IMAGES).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"--record-log '{folder}': {exc.strerror or exc}") from None
        self._log = LineFile(folder / LOG_NAME, "--record-log")
        self._last_ms = 0
        self.rows = 0

    @staticmethod
    def check(folder: Path, force: bool) -> None:
        """Refuse a file, or a folder that already holds a recording (unless `force`)."""
        if folder.exists() and not folder.is_dir():
            raise SinkError(f"--record-log '{folder}' is a file: give a folder")
        held = (folder / LOG_NAME).exists() or ((folder / IMAGES).is_dir() and any((folder / IMAGES).iterdir()))
        if held and not force:
            raise SinkError(f"--record-log '{folder}' already holds a recording: pass --force to replace it, or pick another folder")

    def write(self, jpeg: bytes, command: Command, speed: float, wall: float) -> None:
        """The frame's JPEG, then its row (so a row never names a missing image)."""
        ms = max(int(wall * 1000), self._last_ms + 1)  # names are unique and in order
        self._last_ms = ms
        when = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
        name = f"center_{when:%Y_%m_%d_%H_%M_%S}_{ms % 1000:03d}.jpg"
        try:
            with open(self.folder / IMAGES / name, "xb") as fh:
                fh.write(jpeg)
        except OSError as exc:
            raise SinkError(f"cannot write --record-log image '{name}': {exc.strerror or exc}; "
                            f"{self.folder / LOG_NAME} holds the {self.rows} rows written before") from None
        throttle, brake = max(command.throttle, 0.0), max(-command.throttle, 0.0)
        self._log.write(f"{IMAGES}/{name},,,{wire_number(command.steering)},{wire_number(throttle)},{wire_number(brake)},"
                        f"{wire_number(speed)}\n")
        self.rows += 1

    def discard(self) -> None:
        """Undo opening (the drive could not start): remove the empty log and the IMG folder it made."""
        self._log.close()
        if not self.rows:
            (self.folder / LOG_NAME).unlink(missing_ok=True)
            if self._created:
                shutil.rmtree(self.folder / IMAGES, ignore_errors=True)

    def close(self) -> None:
        self._log.close()
        try:
            fd = os.open(self.folder / IMAGES, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass
