"""One factory from a source spec to a source: camera, video, images, stream, driving log.

Specs: `camera0` / `0` / `/dev/video0`; `rtsp://...`, `http(s)://...`; a video file; an image
file, folder or glob; a `driving_log.csv` (or a folder holding one). `name=spec` names it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Frame, Source, SourceError, SourceOptions, StreamLost, Tick
from .drivelog import SIDE_SIGN, DriveLogSource, LogRow, read_log, resolve_image
from .rig import Rig, open_rig
from .images import IMAGE_SUFFIXES, ImageSource, decode_image, is_glob, natural_key, read_bgr, read_image
from .video import CameraSource, StreamSource, VideoSource, camera_id

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


def split_name(spec: str) -> tuple[str | None, str]:
    """`center=camera0` -> ('center', 'camera0'); a URL's own '=' is not a name."""
    match = re.fullmatch(r"([A-Za-z_][\w.-]*)=(.+)", spec)
    return (match.group(1), match.group(2)) if match else (None, spec)


def source_kind(spec: str) -> type[Source]:
    if spec.startswith(STREAM_SCHEMES):
        return StreamSource
    if camera_id(spec) is not None:
        return CameraSource
    path = Path(spec)
    if path.suffix.lower() == ".csv" or (path.is_dir() and (path / "driving_log.csv").is_file()):
        return DriveLogSource
    if is_glob(spec) or path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource
    if path.exists():
        return VideoSource
    raise SourceError(f"source '{spec}' does not exist (a camera, video, image folder/glob, URL or driving_log.csv)")


def is_live(spec: str, options: SourceOptions = SourceOptions()) -> bool:
    """Whether a spec names a live feed (camera, stream) or a file paced like one."""
    return options.rate is not None or source_kind(split_name(spec)[1]).live


def open_source(spec: str, options: SourceOptions = SourceOptions(), name: str | None = None) -> Source:
    """Create and open the source a spec names; raises SourceError with one clear line."""
    given, body = split_name(spec)
    kind = source_kind(body)
    default = "drivelog" if kind is DriveLogSource else Path(body).stem if kind in (VideoSource, ImageSource) else body
    return kind(name or given or default, body, options).open()


__all__ = [
    "IMAGE_SUFFIXES", "SIDE_SIGN", "CameraSource", "DriveLogSource", "Frame", "ImageSource", "LogRow", "Source",
    "SourceError", "SourceOptions", "StreamLost", "StreamSource", "Tick", "VideoSource", "decode_image", "is_live", "natural_key",
    "Rig", "open_rig", "open_source", "read_bgr", "read_image", "read_log", "resolve_image", "source_kind", "split_name",
]
