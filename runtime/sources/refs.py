"""References to recorded frames, and the reader that decodes them a batch at a time.

A reference names one frame wherever an image path may go, so a plan (extract's items, a
recorded source's listing) is made without decoding anything, and read later, maybe elsewhere:

    PATH               an image file, local or a URI of object storage (`storage`)
    BAG#TOPIC@NS       a message of a ROS bag, by its record time (`frame_ref`)
    VIDEO#frame=N      frame N of a video file, counted from 0 (`video_ref`)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .bag import frame_ref, open_reader, parse_ref
from .images import read_bgr
from .jpeg import Fit
from .rosimage import ImageDecodeError, message_to_bgr
from .storage import location

SEEK_AFTER = 48  # frames: a gap longer than this in one video is a seek, a shorter one is read through


def video_ref(path: str, number: int) -> str:
    return f"{path}#frame={number}"


def parse_video_ref(ref: str) -> tuple[str, int] | None:
    path, sep, number = ref.rpartition("#frame=")
    return (path, int(number)) if sep and number.isdigit() else None


def ref_file(ref: str) -> str:
    """The file (or ROS 2 bag folder) a reference reads from."""
    bag, video = parse_ref(ref), parse_video_ref(ref)
    return bag[0] if bag else video[0] if video else ref


class FrameReader:
    """Reads frames by reference, a batch at a time, keeping bags and videos open between batches:
    a video is read forward from where the last batch stopped, and seeks only across gaps."""

    def __init__(self, fit: Fit | None = None) -> None:
        self.fit = fit  # decode JPEG frames for this model input (height, width), as a pipeline does (`sources.jpeg`)
        self._bags: dict[str, Any] = {}
        self._videos: dict[str, list | None] = {}  # path -> [capture, number of the next frame it decodes]

    def read(self, refs: list[str]) -> list[np.ndarray | None]:
        """BGR images in the order of `refs`: None for one that cannot be found or decoded."""
        bags = [ref for ref in refs if parse_ref(ref)]
        found = dict.fromkeys(bags) | self._bag_frames(bags)  # a message that is not in its bag reads as None
        for (path, number), ref in sorted((video, ref) for ref in refs if (video := parse_video_ref(ref))):
            found[ref] = self._video_frame(path, number)
        return [found[ref] if ref in found else read_bgr(location(ref), self.fit) for ref in refs]

    def _bag_frames(self, refs: list[str]) -> dict[str, np.ndarray | None]:
        wanted: dict[tuple[str, str], set[int]] = {}
        for ref in refs:
            path, topic, log_time = parse_ref(ref)
            wanted.setdefault((path, topic), set()).add(log_time)
        found: dict[str, np.ndarray | None] = {}
        for (path, topic), times in wanted.items():
            reader = self._bags.get(path) or self._bags.setdefault(path, open_reader(path))
            connections = [c for c in reader.connections if c.topic == topic]
            for connection, log_time, raw in reader.messages(connections=connections, start=min(times), stop=max(times) + 1):
                ref = frame_ref(path, topic, log_time)
                if log_time in times and ref not in found:
                    try:
                        found[ref] = message_to_bgr(reader.deserialize(raw, connection.msgtype), self.fit)
                    except ImageDecodeError:
                        found[ref] = None
        return found

    def _video_frame(self, path: str, number: int) -> np.ndarray | None:
        if path not in self._videos:
            capture = cv2.VideoCapture(path)
            self._videos[path] = [capture, 0] if capture.isOpened() else None
        state = self._videos[path]
        if state is None:
            return None
        capture, position = state
        if number < position or number - position > SEEK_AFTER:
            capture.set(cv2.CAP_PROP_POS_FRAMES, number)
            position = number
        while position < number and capture.grab():
            position += 1
        ok, image = capture.read() if position == number else (False, None)
        state[1] = position + 1 if ok else position
        return image if ok else None

    def close(self) -> None:
        for reader in self._bags.values():
            reader.close()
        for state in self._videos.values():
            if state is not None:
                state[0].release()
        self._bags.clear()
        self._videos.clear()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
