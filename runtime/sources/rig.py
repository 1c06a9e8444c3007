"""The cameras of one run, opened together: distinct names, one total, released together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .bag import BagSource, is_bag, split_topic
from .ros2 import Ros2Source, camera_name, is_ros2
from .base import Source, SourceError, SourceOptions


@dataclass
class Rig:
    sources: list[Source] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Any camera or stream, or a file paced like one: the newest frame wins."""
        return any(s.live or s.options.rate is not None for s in self.sources)

    def total(self, max_ticks: int | None = None) -> int | None:
        """Ticks the run will take, when every source knows its length."""
        totals = [s.total for s in self.sources]
        known = None if not totals or any(t is None for t in totals) else min(totals)
        return known if max_ticks is None else max_ticks if known is None else min(known, max_ticks)

    def close(self) -> None:
        for source in self.sources:
            source.close()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_rig(specs: Sequence[str], options: SourceOptions = SourceOptions()) -> Rig:
    """Open every spec; if one fails, those already open are closed before the error leaves.
    Named topics of one bag (`center=drive.bag#/front`) become one source, and so do all live
    ROS 2 topics (`left=ros2:/left/image_raw`): their frames are paired by stamp."""
    from . import open_source

    rig = Rig()
    try:
        for spec in _ros2_grouped(_bags_grouped(specs, options), options):
            rig.sources.append(spec.open() if isinstance(spec, Source) else open_source(spec, options))
        names = [s.name for s in rig.sources]
        if len(set(names)) != len(names):
            raise SourceError(f"sources need distinct names ({', '.join(names)}): use name=spec")
    except BaseException:
        rig.close()
        raise
    return rig


def _bags_grouped(specs: Sequence[str], options: SourceOptions) -> list[str | Source]:
    """Specs as given, except `name=bag#topic` ones: one BagSource per bag, cameras by name."""
    from . import split_name

    cameras: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for spec in specs:
        name, body = split_name(spec)
        path, topic = split_topic(body)
        if name and topic and is_bag(path):
            if path not in cameras:
                cameras[path] = {}
                order.append(f"\0{path}")
            cameras[path][name] = topic
        else:
            order.append(spec)
    return [BagSource(Path(s[1:]).stem, s[1:], options, cameras[s[1:]]) if s.startswith("\0") else s for s in order]


def _ros2_grouped(specs: list[str | Source], options: SourceOptions) -> list[str | Source]:
    """Every `ros2:` spec as one Ros2Source, in the place of the first; cameras named as given,
    or after their topics."""
    from . import split_name

    found = [(i, *split_name(s)) for i, s in enumerate(specs) if isinstance(s, str) and is_ros2(split_name(s)[1])]
    if not found:
        return list(specs)
    topics = [(name, body[len("ros2:"):]) for _, name, body in found]
    if len(topics) == 1 and not topics[0][1]:
        source = Ros2Source("ros2", "ros2:", options)  # the graph's only image topic
    elif any(not topic for _, topic in topics):
        raise SourceError("ros2: with no topic takes the graph's only image topic, so it cannot join other ROS 2 cameras")
    else:
        cameras: dict[str, str] = {}
        for name, topic in topics:
            camera = name or camera_name(topic)
            if camera in cameras:
                raise SourceError(f"two ROS 2 cameras are called '{camera}': name them, e.g. --source {camera}2=ros2:{topic}")
            cameras[camera] = topic
        source = Ros2Source("ros2", "ros2:", options, cameras)
    taken = {i for i, *_ in found}
    return [source if i == found[0][0] else s for i, s in enumerate(specs) if i == found[0][0] or i not in taken]
