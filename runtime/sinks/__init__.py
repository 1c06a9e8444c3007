"""One factory from an output spec to a sink, beside `open_source`: every sink is checked
before any of them opens a file, so a bad last output never costs the first one its data.

Specs: `preds.jsonl` / `preds.csv` (prediction rows), `clip.mp4` (annotated video),
`features:DIR` (feature shards), `window` (an OpenCV window), `run.mcap` (an MCAP recording),
`foxglove:[HOST:]PORT` (a live Foxglove server), `ros2:[NAMESPACE]` (ROS 2 topics and
/diagnostics). `kind:target` names the kind explicitly;
otherwise the file suffix decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..manifest import Manifest
from .base import LineFile, Sink, SinkError, SinkOptions, atomic_write, npy_bytes
from .features import FeatureSink, ShardWriter, features_meta, read_features, shard_name
from .predictions import PredictionWriter, prediction_fields
from .video import VideoSink, WindowSink


@dataclass(frozen=True)
class SinkKind:
    name: str
    suffixes: tuple[str, ...]
    check: Callable[[Path, SinkOptions], None]
    open: Callable[[Path, Manifest, SinkOptions], Sink]


def _no_check(target: Path, options: SinkOptions) -> None:
    return None


KINDS = (
    SinkKind("predictions", (".jsonl", ".csv"), PredictionWriter.check, PredictionWriter),
    SinkKind("video", (".mp4", ".avi", ".mkv"), VideoSink.check, VideoSink),
    SinkKind("features", (), FeatureSink.check, FeatureSink),
    SinkKind("window", (), _no_check, lambda target, manifest, options: WindowSink(manifest)),
    SinkKind("mcap", (".mcap",), lambda target, options: _foxglove().McapSink.check(target, options),
             lambda target, manifest, options: _foxglove().McapSink(target, manifest, options)),
    SinkKind("foxglove", (), lambda target, options: _foxglove().LiveSink.check(target, options),
             lambda target, manifest, options: _foxglove().LiveSink(target, manifest, options)),
    SinkKind("ros2", (), lambda target, options: _ros2().Ros2Sink.check(target, options),
             lambda target, manifest, options: _ros2().Ros2Sink(target, manifest, options)),
)


def _foxglove():
    """The Foxglove sinks, imported when used: foxglove-sdk is an optional extra."""
    from . import foxglove

    return foxglove


def _ros2():
    """The ROS 2 output, imported when used: rclpy comes with the ros2 extra or a ROS install."""
    from . import ros2

    return ros2


def parse_sink(spec: str) -> tuple[SinkKind, Path]:
    """`kind:target`, or a target whose suffix names the kind."""
    by_name = {k.name: k for k in KINDS}
    head, sep, rest = spec.partition(":")
    if sep and head in by_name:
        return by_name[head], Path(rest)
    if spec in by_name:
        return by_name[spec], Path()
    for kind in KINDS:
        if Path(spec).suffix.lower() in kind.suffixes:
            return kind, Path(spec)
    names = ", ".join(k.name for k in KINDS)
    raise SinkError(f"output '{spec}' is not a known kind: end it in .jsonl, .csv or .mp4, or write KIND:TARGET ({names})")


def check_sinks(specs: Sequence[str], options: SinkOptions = SinkOptions()) -> list[tuple[SinkKind, Path]]:
    """Validate every spec without creating anything; two outputs may not share a path."""
    parsed = [parse_sink(spec) for spec in specs]
    targets = [target.resolve() for kind, target in parsed if kind.name not in ("window", "foxglove", "ros2")]
    if len(set(targets)) != len(targets):
        raise SinkError("two outputs name the same path")
    for kind, target in parsed:
        kind.check(target, options)
    return parsed


def open_sink(spec: str, manifest: Manifest, options: SinkOptions = SinkOptions()) -> Sink:
    return open_sinks([spec], manifest, options)[0]


def open_sinks(specs: Sequence[str], manifest: Manifest, options: SinkOptions = SinkOptions()) -> list[Sink]:
    """Check all, then open all; if one still fails to open, the ones opened are undone."""
    return open_checked(check_sinks(specs, options), manifest, options)


def open_checked(checked: list[tuple[SinkKind, Path]], manifest: Manifest, options: SinkOptions) -> list[Sink]:
    """Open outputs `check_sinks` passed (a caller may open its sources in between)."""
    opened: list[Sink] = []
    try:
        for kind, target in checked:
            opened.append(kind.open(target, manifest, options))
    except BaseException:
        for sink in opened:
            sink.discard()
        raise
    return opened


__all__ = [
    "FeatureSink", "KINDS", "LineFile", "PredictionWriter", "ShardWriter", "Sink", "SinkError", "SinkKind", "SinkOptions",
    "VideoSink", "WindowSink", "atomic_write", "check_sinks", "features_meta", "npy_bytes", "open_checked", "open_sink", "open_sinks",
    "parse_sink", "prediction_fields", "read_features", "shard_name",
]
