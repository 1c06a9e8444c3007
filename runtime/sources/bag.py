"""Recorded ROS bags as a rig: ROS 1 `.bag`, ROS 2 folders, `.mcap` and `.db3`, read with
`rosbags` (the `ros` extra; no ROS install needed), streamed in record order, never loaded whole.

Cameras are image topics (CompressedImage or Image). Udacity's layout,
`/{left,center,right}_camera/image_color[/compressed]`, is found with no options; otherwise
name them, `--source center=drive.bag#/front/image_raw --source left=drive.bag#/left/image_raw`
(specs naming the same bag become one source, so their frames are paired by stamp). Ground
truth comes from a scalar field of another topic, interpolated onto each frame's header stamp.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import first_line
from ..stats import Histogram
from .base import BagOptions, Frame, Listed, Source, SourceError, SourceOptions, Tick
from .drivelog import SIDE_SIGN
from .rosimage import ImageDecodeError, message_to_bgr, recorded_jpeg
from .sync import Synchroniser, TruthTrack

log = logging.getLogger("edgeft")
SUFFIXES = (".bag", ".mcap", ".db3")
IMAGE_TYPES = ("sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/Image")
UDACITY_CAMERAS = ("left", "center", "right")
UDACITY_TRUTH = ("/vehicle/steering_report", "steering_wheel_angle")


def is_bag(path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in SUFFIXES or (p.is_dir() and (p / "metadata.yaml").is_file())


def check_not_bare_bag_folder(folder: Path) -> None:
    """A rosbag2 folder that lost its metadata.yaml is not an image folder: say what it is."""
    storage = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".db3", ".mcap"))
    if storage:
        raise SourceError(f"'{folder}' looks like a ROS 2 bag folder without its metadata.yaml ({storage[0]}): "
                          f"pass the file itself, --source '{folder / storage[0]}'")


def split_topic(spec: str) -> tuple[str, str | None]:
    """`drive.bag#/front/image_raw` -> ('drive.bag', '/front/image_raw')."""
    path, _, topic = spec.partition("#")
    return path, topic or None


def open_reader(path: str):
    """An open rosbags AnyReader; a missing extra, file or damaged index is one SourceError."""
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise SourceError("reading ROS bags needs the ros extra: pip install 'edgeft[ros]'") from None
    if not Path(path).exists():
        raise SourceError(f"bag '{path}' does not exist")
    store = None if Path(path).suffix == ".bag" else get_typestore(Stores.ROS2_HUMBLE)  # bags without definitions
    reader = AnyReader([Path(path)], default_typestore=store)
    try:
        reader.open()
    except Exception as exc:  # noqa: BLE001 - AnyReaderError and the storage layers' own errors
        raise SourceError(f"bag '{path}' cannot be read: {first_line(exc)}") from None
    return reader


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    msgtype: str
    count: int  # as the bag's own index or summary announces
    rate_hz: float  # (count - 1) / (last - first record time); 0 for a single message
    readable: int  # messages actually read: fewer than `count` means the file is damaged


def bag_topics(path: str) -> tuple[float, list[TopicInfo]]:
    """The bag's duration in seconds and its topics (for `edgeft topics`). Rates need each topic's
    first and last record time, which no format indexes alike: the bag is read once, not decoded."""
    reader = open_reader(path)
    try:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        read: dict[str, int] = {}
        try:
            for connection, log_time, _ in reader.messages():
                first.setdefault(connection.topic, log_time)
                last[connection.topic] = log_time
                read[connection.topic] = read.get(connection.topic, 0) + 1
        except Exception as exc:  # noqa: BLE001 - the storage layers' own errors
            raise SourceError(f"bag '{path}' is damaged: {first_line(exc)}") from None
        found = []
        for topic, info in sorted(reader.topics.items()):
            span = (last.get(topic, 0) - first.get(topic, 0)) / 1e9
            found.append(TopicInfo(topic, info.msgtype, info.msgcount, (info.msgcount - 1) / span if span > 0 else 0.0,
                                   read.get(topic, 0)))
        return reader.duration / 1e9, found
    finally:
        reader.close()


def choose_cameras(reader: Any, named: dict[str, str] | None, path: str) -> dict[str, str]:
    """Camera name -> topic: as named, Udacity's layout, or the bag's only image topic."""
    images = {t: i.msgtype for t, i in reader.topics.items() if i.msgtype in IMAGE_TYPES and i.msgcount}
    if named:
        for camera, topic in named.items():
            if topic not in reader.topics:
                raise SourceError(f"bag '{path}' has no topic '{topic}' (image topics: {', '.join(sorted(images)) or 'none'})")
            if topic not in images:
                raise SourceError(f"topic '{topic}' in '{path}' is {reader.topics[topic].msgtype} with "
                                  f"{reader.topics[topic].msgcount} messages, not images")
        return dict(named)
    udacity = {}
    for camera in UDACITY_CAMERAS:
        for topic in (f"/{camera}_camera/image_color/compressed", f"/{camera}_camera/image_color"):
            if topic in images:
                udacity[camera] = topic
                break
    if udacity:
        return udacity
    if len(images) == 1:
        topic = next(iter(images))
        return {topic.strip("/").split("/")[0] or "camera": topic}
    listed = ", ".join(sorted(images)) or "none"
    raise SourceError(f"bag '{path}' has {len(images)} image topics ({listed}): name the cameras, "
                      f"e.g. --source center='{path}#TOPIC'")


def choose_truth(reader: Any, options: BagOptions, path: str) -> tuple[str, str] | None:
    """(topic, field) of the ground truth: as named, or Udacity's steering report when present."""
    topic = options.truth_topic or (UDACITY_TRUTH[0] if options.truth_field else None)
    if topic is None:
        return UDACITY_TRUTH if UDACITY_TRUTH[0] in reader.topics else None
    if topic not in reader.topics:
        raise SourceError(f"bag '{path}' has no truth topic '{topic}'")
    field = options.truth_field or (UDACITY_TRUTH[1] if topic == UDACITY_TRUTH[0] else None)
    if not field:
        raise SourceError("--truth-topic needs --truth-field: the message field holding the value")
    return topic, field


def field_value(msg: Any, path: str) -> float:
    value = msg
    for part in path.split("."):
        if not hasattr(value, part):
            raise SourceError(f"truth field '{path}' not found in {type(msg).__name__} (no '{part}')")
        value = getattr(value, part)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SourceError(f"truth field '{path}' of {type(msg).__name__} is not a number ({type(value).__name__})") from None


def stamp_of(msg: Any, log_time_ns: int) -> float:
    """The header stamp in seconds since the epoch; the record time when there is no header."""
    header = getattr(msg, "header", None)
    if header is None:
        return log_time_ns / 1e9
    return header.stamp.sec + header.stamp.nanosec / 1e9


@dataclass(frozen=True)
class Recorded:
    """One camera message waiting to be paired: where it is in the bag, and the message."""

    topic: str
    log_time: int
    msg: Any


class BagSource(Source):
    live = False

    def __init__(self, name: str, spec: str, options: SourceOptions, cameras: dict[str, str] | None = None):
        super().__init__(name, spec, options)
        self.path, topic = split_topic(spec)
        unnamed = name == Path(self.path).stem  # open_source's default name: call the camera after its topic
        self.named = cameras or ({(topic.strip("/").split("/")[0] if unnamed else name): topic} if topic else None)
        self.bag: BagOptions = options.bag

    def _open(self) -> None:
        self._reader = open_reader(self.path)
        try:
            self._check_window()
            self.cameras = choose_cameras(self._reader, self.named, self.path)
            self.truth = self._usable_truth(choose_truth(self._reader, self.bag, self.path))
        except SourceError:
            self._reader.close()
            raise
        self._ticks = self._synchronised()
        self._first_stamp: float | None = None
        self._skews = Histogram(low=1e-6, high=10.0)  # seconds; fixed-size however long the bag
        self._sync: Synchroniser | None = None
        self._track: TruthTrack | None = None
        self._short: list[str] = []  # topics that gave fewer messages than the bag announces

    def _check_window(self) -> None:
        duration = self._reader.duration / 1e9
        if self.bag.start_s is not None and self.bag.start_s >= duration:
            raise SourceError(f"--start {self.bag.start_s:g} s is past the end of bag '{self.path}' ({duration:.1f} s long)")

    def _usable_truth(self, truth: tuple[str, str] | None) -> tuple[str, str] | None:
        """The truth topic and field, checked on its first message: a field that is missing is an
        error when it was asked for, and a warning (no truth) when it was only Udacity's default."""
        if truth is None:
            return None
        topic, field = truth
        connections = [c for c in self._reader.connections if c.topic == topic]
        try:
            first = next(self._reader.messages(connections=connections), None)
            if first is not None:
                field_value(self._reader.deserialize(first[2], first[0].msgtype), field)
        except SourceError as exc:
            if self.bag.truth_topic or self.bag.truth_field:
                raise
            log.warning("edgeft: %s: no ground truth: %s on %s", self.name, exc, topic)
            return None
        except Exception as exc:  # noqa: BLE001 - the storage layers' own errors; reading will say them too
            raise SourceError(f"bag '{self.path}' is damaged: {first_line(exc)}") from None
        return truth

    def _close(self) -> None:
        self._ticks.close()
        self._reader.close()

    @property
    def camera_names(self) -> list[str]:
        return list(self.cameras)

    @property
    def total(self) -> int | None:
        return max(self._reader.topics[t].msgcount for t in self.cameras.values())

    def read(self) -> Tick | None:
        """The next paired tick: its cameras' messages decoded side by side, in camera order."""
        for index, tick, truth in self._ticks:
            images = self.decoder.map(self._decode, [w.payload for w in tick.frames])
            frames = [frame for w, image in zip(tick.frames, images)
                      if (frame := self._frame(index, w.camera, w.stamp, w.payload, image, truth[w.camera])) is not None]
            if frames:
                return frames
        return None

    def _decode(self, recorded: Recorded) -> np.ndarray | str:
        """The message's image, or why it holds none (said by `_frame`, on the capture thread)."""
        try:
            return message_to_bgr(recorded.msg, self.fit)
        except ImageDecodeError as exc:
            return str(exc)

    def listing(self) -> Iterator[list[Listed]]:
        for index, tick, _ in self._synchronised():
            yield [Listed(w.camera, index, frame_ref(self.path, w.payload.topic, w.payload.log_time), w.stamp) for w in tick.frames]

    def replay_offset(self, tick: Tick) -> float | None:
        """Seconds from the first frame to this tick: `--rate` replays at that pace (x rate)."""
        stamp = min(f.stamp for f in tick)
        self._first_stamp = stamp if self._first_stamp is None else self._first_stamp
        return stamp - self._first_stamp

    def end_notes(self) -> list[str]:
        sync = self._sync
        if sync is None or len(self.cameras) < 2 or sync.tolerance is None:
            return self.fault_notes()
        p50, p99 = self._skews.percentiles((50, 99)) if self._skews.count else (0.0, 0.0)
        policy = "skipped" if self.bag.skip_incomplete else "run on the cameras present"
        return self.fault_notes() + [
            f"{self.name}: {len(self.cameras)} cameras paired within ±{sync.tolerance * 1000:.1f} ms; cross-camera skew "
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; {sync.incomplete} incomplete ticks ({policy})"]

    def fault_notes(self) -> list[str]:
        """What the bag did not deliver as it announced: lost messages, truth that was not finite."""
        notes = list(self._short)
        if self._track is not None and self._track.not_finite:
            notes.append(f"{self.name}: {self._track.not_finite} truth samples on {self.truth[0]} were not finite "
                         "(NaN or infinite) and were left out")
        return notes

    def _frame(self, index: int, camera: str, stamp: float, recorded: Recorded, image: np.ndarray | str,
               truth: float | None) -> Frame | None:
        if isinstance(image, str):
            self.skip(f"{camera} message at {stamp:.3f} ({image})")
            return None
        if truth is not None and camera in SIDE_SIGN and camera != "center":
            truth = None if self.options.correction is None else truth + SIDE_SIGN[camera] * self.options.correction
        return Frame(camera, index, image, truth=truth, stamp=stamp, jpeg=recorded_jpeg(recorded.msg))

    def _synchronised(self) -> Iterator[tuple[int, Any, dict[str, float | None]]]:
        """(tick number, Tick of Recorded payloads, truth at each frame's stamp). A tick waits
        for its camera window to close and, when there is a truth topic, for a truth sample past it."""
        topics = {topic: camera for camera, topic in self.cameras.items()}
        self._sync = sync = Synchroniser(list(self.cameras), self.bag.tolerance_s, self.bag.skip_incomplete)
        self._track = truth = TruthTrack()
        pending, now, index = deque(), float("-inf"), 0
        for topic, log_time, msg in self._messages([*topics, *([self.truth[0]] if self.truth else [])]):
            stamp = stamp_of(msg, log_time)
            now = max(now, stamp)
            if topic in topics:
                sync.add(topics[topic], stamp, Recorded(topic, log_time, msg))
            else:
                truth.add(stamp, field_value(msg, self.truth[1]))
            while (tick := sync.pop()) is not None:
                pending.append(tick)
            while pending and (self.truth is None or truth.ready(max(w.stamp for w in pending[0].frames), now)):
                yield index, *self._with_truth(pending.popleft(), truth)
                index += 1
        sync.finish()
        truth.finished = True
        pending.extend(iter(sync.pop, None))
        for index, tick in enumerate(pending, start=index):
            yield index, *self._with_truth(tick, truth)

    def _with_truth(self, tick: Any, truth: TruthTrack) -> tuple[Any, dict[str, float | None]]:
        """The tick and the truth at each of its frames' stamps."""
        if len(tick.frames) > 1:
            self._skews.add(tick.skew)
        values = {w.camera: truth.value_at(w.stamp) if self.truth else None for w in tick.frames}
        truth.release_before(min(w.stamp for w in tick.frames))
        return tick, values

    def _messages(self, topics: list[str]) -> Iterator[tuple[str, int, Any]]:
        reader = self._reader
        connections = [c for c in reader.connections if c.topic in topics]
        start = reader.start_time + int(self.bag.start_s * 1e9) if self.bag.start_s is not None else None
        stop = reader.start_time + int(self.bag.end_s * 1e9) if self.bag.end_s is not None else None
        counts = dict.fromkeys(topics, 0)
        try:
            for connection, log_time, raw in reader.messages(connections=connections, start=start, stop=stop):
                try:
                    msg = reader.deserialize(raw, connection.msgtype)
                except KeyError:
                    raise SourceError(f"bag '{self.path}': cannot decode {connection.topic} ({connection.msgtype}): "
                                      "its message definition is not in the bag") from None
                counts[connection.topic] += 1
                yield connection.topic, log_time, msg
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - the storage layers raise their own errors mid-stream
            raise SourceError(f"bag '{self.path}' is damaged after {sum(counts.values())} messages: {first_line(exc)}") from None
        if start is None and stop is None:
            self._check_counts(counts)

    def _check_counts(self, counts: dict[str, int]) -> None:
        """A whole read must give what the bag's own summary announces: damage that no checksum
        catches (rosbags writes MCAP chunks with a CRC of 0) loses messages silently otherwise."""
        short = {t: (self._reader.topics[t].msgcount, n) for t, n in counts.items() if n < self._reader.topics[t].msgcount}
        cameras = set(self.cameras.values())
        if short and all(counts[t] == 0 for t in cameras):
            listed = ", ".join(f"{t} {announced}" for t, (announced, _) in short.items() if t in cameras)
            raise SourceError(f"bag '{self.path}' is damaged: it announces messages ({listed}) but none could be read")
        self._short = [f"{self.name}: bag '{self.path}' is damaged: {t} gave {n} of the {announced} messages it announces"
                       for t, (announced, n) in short.items()]



def frame_ref(path: str, topic: str, log_time: int) -> str:
    """A recorded frame's address, usable where an image path is: `bag#topic@record-time-ns`."""
    return f"{path}#{topic}@{log_time}"


def parse_ref(ref: str) -> tuple[str, str, int] | None:
    path, sep, rest = ref.rpartition("#")
    topic, at, log_time = rest.rpartition("@")
    return (path, topic, int(log_time)) if sep and at and log_time.isdigit() and is_bag(path) else None


def read_bag_log(path: str, options: SourceOptions) -> list[tuple[dict[str, str], float]]:
    """The bag as a driving log: per tick, its cameras' frame references and the truth at the
    centre camera's stamp (the first camera's when there is no centre). Ticks without truth are
    left out: they have no label. Images are not decoded."""
    source = BagSource(Path(path).stem, path, options).open()
    try:
        if source.truth is None:
            raise SourceError(f"bag '{path}' has no truth topic to label frames with: name one with --truth-topic/--truth-field")
        rows = []
        for _, tick, truth in source._synchronised():
            paths = {w.camera: frame_ref(path, w.payload.topic, w.payload.log_time) for w in tick.frames}
            value = truth.get("center", truth[tick.frames[0].camera])
            if value is not None:
                rows.append((paths, value))
        for note in source.fault_notes():
            log.warning("edgeft: %s", note)
        return rows
    finally:
        source.close()
