"""One factory from a source spec to a source: camera, video, images, stream, driving log.

Specs: `camera0` / `0` / `/dev/video0`; `rtsp://...`, `http(s)://...`; a video file; an image
file, folder or glob; a `driving_log.csv` (or a folder holding one). `name=spec` names it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Frame, Source, SourceError, SourceOptions, StreamLost, Tick
from .drivelog import DriveLogSource
from .images import IMAGE_SUFFIXES, ImageSource, is_glob
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


def open_source(spec: str, options: SourceOptions = SourceOptions(), name: str | None = None) -> Source:
    """Create and open the source a spec names; raises SourceError with one clear line."""
    given, body = split_name(spec)
    kind = source_kind(body)
    default = "drivelog" if kind is DriveLogSource else Path(body).stem if kind in (VideoSource, ImageSource) else body
    return kind(name or given or default, body, options).open()


__all__ = [
    "CameraSource", "DriveLogSource", "Frame", "ImageSource", "Source", "SourceError", "SourceOptions",
    "StreamLost", "StreamSource", "Tick", "VideoSource", "open_source", "source_kind", "split_name",
]
