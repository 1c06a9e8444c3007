"""The cameras of one run, opened together: distinct names, one total, released together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .bag import BagSource, is_bag, split_topic
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
    Named topics of one bag (`center=drive.bag#/front`) become one source: paired by stamp."""
    from . import open_source

    rig = Rig()
    try:
        for spec in _bags_grouped(specs, options):
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
