"""A recorded Udacity-style `driving_log.csv`: three cameras of one rig, steering as ground truth.

Columns: center, left, right, steering, throttle, brake, speed, with or without a header.
Logs recorded elsewhere hold absolute paths from that machine (often Windows); an image that
is not where the log says is looked up by file name under the CSV's `IMG/` folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import utf8_text
from .base import Frame, Listed, Source, SourceError, SourceOptions, Tick
from .images import decode_files, image_frame
from .storage import read_bytes

CAMERAS = ("center", "left", "right")
SIDE_SIGN = {"center": 0.0, "left": 1.0, "right": -1.0}  # steer back toward the centre line


@dataclass(frozen=True)
class LogRow:
    paths: dict[str, str]  # camera -> path as written in the log ('' when absent)
    steering: float


def read_text_lines(path: Path, what: str) -> list[str]:
    """A UTF-8 text file (a leading BOM is dropped) as lines; a byte that is not UTF-8 is
    reported with its line, not as a decoding traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    return utf8_text(data, path, SourceError, f"save the {what} as UTF-8", bom=True).splitlines()


def read_log(path: Path) -> list[LogRow]:
    if not path.is_file():
        raise SourceError(f"driving log '{path}' does not exist")
    rows: list[LogRow] = []
    for number, record in enumerate(csv.reader(read_text_lines(path, "driving log")), start=1):
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) < 4:
            raise SourceError(f"{path}:{number}: expected center,left,right,steering,... got {len(record)} columns")
        try:
            steering = float(record[3])
        except ValueError:
            if number == 1:  # a header row
                continue
            raise SourceError(f"{path}:{number}: steering '{record[3]}' is not a number") from None
        if not math.isfinite(steering):
            raise SourceError(f"{path}:{number}: steering '{record[3].strip()}' is not a finite number")
        rows.append(LogRow({cam: record[i].strip() for i, cam in enumerate(CAMERAS)}, steering))
    if not rows:
        raise SourceError(f"driving log '{path}' has no rows")
    return rows


_CLOCK = re.compile(r"(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{3})")  # the simulator's center_2016_12_01_13_30_48_287.jpg
_EPOCH = re.compile(r"(?<!\d)(\d{13}|\d{16}|\d{19})(?!\d)")  # ms, us or ns since the epoch: 1479425441182877835.jpg


def stamp_in_name(logged: str) -> float | None:
    """The recording time a file name carries, in seconds since the epoch, or None. Udacity's
    simulator writes wall-clock time without a zone: it is read as UTC."""
    name = logged.replace("\\", "/").rsplit("/", 1)[-1]
    if match := _CLOCK.search(name):
        year, month, day, hour, minute, second, ms = map(int, match.groups())
        try:
            when = dt.datetime(year, month, day, hour, minute, second, ms * 1000, tzinfo=dt.timezone.utc)
        except ValueError:
            return None
        return when.timestamp()
    if match := _EPOCH.search(name):
        digits = match.group(1)
        return int(digits) / {13: 1e3, 16: 1e6, 19: 1e9}[len(digits)]
    return None


def resolve_image(logged: str, log_dir: Path) -> Path:
    """The logged path if it exists, else relative to the log, else by file name under IMG/.
    A log in object storage is not probed file by file: a relative path is taken relative to it,
    any other by file name under its IMG/."""
    if not isinstance(log_dir, Path):  # object storage
        name = logged.replace("\\", "/")
        absolute = name.startswith("/") or re.match(r"[A-Za-z]:/", name)
        return log_dir / "IMG" / name.rsplit("/", 1)[-1] if absolute else log_dir / name
    as_given = Path(logged)
    if as_given.is_absolute() and as_given.is_file():
        return as_given
    relative = log_dir / logged
    if relative.is_file():
        return relative
    return log_dir / "IMG" / logged.replace("\\", "/").rsplit("/", 1)[-1]


class DriveLogSource(Source):
    live = False

    def __init__(self, name: str, spec: str, options: SourceOptions):
        super().__init__(name, spec, options)
        unknown = set(options.cameras) - set(CAMERAS)
        if unknown or not options.cameras:
            raise SourceError(f"driving log cameras must be among {', '.join(CAMERAS)}, got {', '.join(options.cameras)}")
        self._rows: list[LogRow] = []
        self._position = 0

    def _open(self) -> None:
        path = Path(self.spec)
        if path.is_dir():
            path = path / "driving_log.csv"
        self._log_dir = path.parent
        self._rows = read_log(path)[:: self.options.stride]
        self._position = 0

    @property
    def total(self) -> int | None:
        return len(self._rows)

    @property
    def camera_names(self) -> list[str]:
        return [self.camera_name(camera) for camera in self.options.cameras]

    def camera_name(self, camera: str) -> str:
        return camera if self.name in ("", "drivelog") else f"{self.name}/{camera}"

    def read(self) -> Tick | None:
        """The next row with a readable camera: its files read in turn, decoded side by side."""
        while self._position < len(self._rows):
            index = self._position
            row = self._rows[index]
            self._position += 1
            cameras = [camera for camera in self.options.cameras if row.paths[camera]]  # a log may lack a camera
            raws = [read_bytes(resolve_image(row.paths[camera], self._log_dir)) for camera in cameras]
            tick = [frame for camera, raw, decoded in zip(cameras, raws, decode_files(self, raws))
                    if (frame := self._frame(index, row, camera, raw, decoded)) is not None]
            if tick:
                return tick
        return None

    def listing(self) -> Iterator[list[Listed]]:
        for index, row in enumerate(self._rows):
            tick = [Listed(self.camera_name(camera), index, str(resolve_image(row.paths[camera], self._log_dir)),
                           stamp_in_name(row.paths[camera])) for camera in self.options.cameras if row.paths[camera]]
            if tick:
                yield tick

    def _frame(self, index: int, row: LogRow, camera: str, raw: bytes | None, decoded: tuple) -> Frame | None:
        logged = row.paths[camera]
        frame = image_frame(self, self.camera_name(camera), raw, decoded, index, f"{camera} image '{logged}'",
                            self._truth(row.steering, camera))
        if frame is not None:
            frame.stamp = stamp_in_name(logged)
        return frame

    def _truth(self, steering: float, camera: str) -> float | None:
        if camera == "center":
            return steering
        if self.options.correction is None:
            return None
        return steering + SIDE_SIGN[camera] * self.options.correction
