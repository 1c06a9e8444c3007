"""One factory from a source spec to a source: camera, video, images, stream, driving log.

Specs: `camera0` / `0` / `/dev/video0`; `rtsp://...`, `http(s)://...`; a video file; an image
file, folder or glob; a `driving_log.csv` (or a folder holding one); a ROS bag (`.bag`, a rosbag2
folder, `.mcap`, `.db3`), optionally `#/topic`; a live ROS 2 topic, `ros2:/topic`. `name=spec` names it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .bag import BagSource, bag_topics, check_not_bare_bag_folder, frame_ref, is_bag, parse_ref, read_bag_log, split_topic
from .base import BagOptions, Frame, Listed, Source, SourceError, SourceOptions, StreamLost, Tick
from .decoding import DecodePool
from .drivelog import SIDE_SIGN, DriveLogSource, LogRow, read_log, resolve_image
from .rig import Rig, open_rig
from .ros2 import CameraHealth, Ros2Source, camera_name, is_ros2
from .images import IMAGE_SUFFIXES, ImageSource, decode_bytes, decode_image, is_glob, natural_key, read_bgr, read_image
from .jpeg import DECODE_MODES, check_mode, decode_reduced, fit_for, jpeg_size, reduction
from .refs import FrameReader, parse_video_ref, ref_file, video_ref
from .storage import STREAM_SCHEMES, is_uri, location
from .video import CameraSource, StreamSource, VideoSource, camera_id



def split_name(spec: str) -> tuple[str | None, str]:
    """`center=camera0` -> ('center', 'camera0'); a URL's own '=' is not a name."""
    match = re.fullmatch(r"([A-Za-z_][\w.-]*)=(.+)", spec)
    return (match.group(1), match.group(2)) if match else (None, spec)


def source_kind(spec: str) -> type[Source]:
    if is_ros2(spec):
        return Ros2Source
    if spec.startswith(STREAM_SCHEMES):
        return StreamSource
    if camera_id(spec) is not None:
        return CameraSource
    if is_bag(split_topic(spec)[0]):
        return BagSource
    path = Path(spec)
    if path.suffix.lower() == ".csv" or (path.is_dir() and (path / "driving_log.csv").is_file()):
        return DriveLogSource
    if path.is_dir():
        check_not_bare_bag_folder(path)
    if is_glob(spec) or path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource
    if path.exists():
        return VideoSource
    raise SourceError(f"source '{spec}' does not exist (a camera, video, image folder/glob, URL, driving_log.csv or ROS bag, ros2:/topic)")


def is_live(spec: str, options: SourceOptions = SourceOptions()) -> bool:
    """Whether a spec names a live feed (camera, stream) or a file paced like one."""
    return options.rate is not None or source_kind(split_name(spec)[1]).live


def open_source(spec: str, options: SourceOptions = SourceOptions(), name: str | None = None) -> Source:
    """Create and open the source a spec names; raises SourceError with one clear line."""
    given, body = split_name(spec)
    kind = source_kind(body)
    return kind(name or given or default_name(kind, body), body, options).open()


def default_name(kind: type[Source], body: str) -> str:
    if kind is DriveLogSource:
        return "drivelog"
    if kind is BagSource:
        return Path(split_topic(body)[0]).stem
    if kind is Ros2Source:
        return camera_name(body[len("ros2:"):]) if body != "ros2:" else "ros2"
    return Path(body).stem if kind in (VideoSource, ImageSource) else body


__all__ = [
    "DECODE_MODES", "DecodePool", "decode_bytes", "check_mode", "decode_reduced", "fit_for", "jpeg_size", "reduction",
    "BagOptions", "BagSource", "FrameReader", "bag_topics", "check_not_bare_bag_folder", "frame_ref", "is_bag", "parse_ref", "read_bag_log", "split_topic", "IMAGE_SUFFIXES", "SIDE_SIGN", "CameraSource", "DriveLogSource", "Frame", "ImageSource", "Listed", "is_uri", "location", "parse_video_ref", "ref_file", "video_ref", "LogRow", "Source",
    "SourceError", "SourceOptions", "StreamLost", "StreamSource", "Tick", "VideoSource", "decode_image", "is_live", "natural_key",
    "CameraHealth", "Ros2Source", "is_ros2", "Rig", "open_rig", "open_source", "read_bgr", "read_image", "read_log", "resolve_image", "source_kind", "split_name",
]
