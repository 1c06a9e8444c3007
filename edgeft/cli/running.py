"""Commands that run a bundle: predict on images, stream sources, bench, visualize."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from edgeft.runtime import EdgeftError, Engine, PipelineConfig, SinkOptions, SourceOptions

from .common import (MODELS_DIR, OUTPUT, ROS2, RUN, Decode, DecodeWorkers, Device, End, Force, Incomplete, IoBinding, Model,
                     Precision, RosDomain, Start, SyncTolerance, Threads, TruthField, TruthTopic, app, bag_options, decode_mode, err,
                     log_to_stderr, names, say, stdout, user_errors)
from .display import RunDisplay, bench_all_table, bench_table, describe, summary_table

SOURCE = "Source"


def load_engine(model: Path | None, device: str = "auto", threads: int | None = None, precision: str | None = None,
                **options: object) -> Engine:
    from edgeft.runtime import default_bundle

    log_to_stderr()
    return Engine.load(model or default_bundle(MODELS_DIR), device=device, threads=threads, precision=precision, **options)


def stream_into(engine: Engine, specs: Sequence[str], outputs: Sequence[str], sources: SourceOptions, sinks: SinkOptions,
                config: PipelineConfig, quiet: bool, json_summary: bool = False) -> None:
    """Sources -> pipeline -> sinks with a live display and a summary (a table, or JSON on
    stdout); exits as the run ended. Shared by `run` and `extract --source`."""
    from edgeft.runtime import FeatureSink, Pipeline, check_sinks, open_rig, run
    from edgeft.runtime.sinks import open_checked
    from edgeft.runtime.sources import is_live

    if sinks.resume and any(is_live(spec, sources) for spec in specs):
        raise EdgeftError("--resume needs a recorded source (a file, folder or log), not a live one")
    checked = check_sinks(outputs, sinks)  # every output is checked before a source or an output opens
    with open_rig(specs, sources) as rig:
        fps = getattr(rig.sources[0], "fps", None)  # a video's own rate for --save-video
        opened = open_checked(checked, engine.manifest, replace(sinks, fps=fps or sinks.fps, computed_by=engine.computed_by))
        done = {key for sink in opened if isinstance(sink, FeatureSink) for key in sink.done()}
        pipeline = Pipeline(rig.sources, engine, config, skip=(lambda f: (f.source, f.index) in done) if done else None)
        with RunDisplay(err, pipeline.stats, rig.total(config.max_ticks), rig.live, enabled=not quiet) as display:
            outcome = run(pipeline, opened, on_result=lambda r: display.update(r, pipeline.ticks))
        workers = [source.decoder.workers for source in rig.sources]
    if json_summary:
        print(json.dumps(run_summary(outcome, engine, config, workers), indent=2))
    else:
        stdout.print(summary_table(outcome.stats, engine.manifest, outcome.signal is not None))
    if outcome.signal:
        raise typer.Exit(outcome.exit_code)  # 130 for Ctrl-C, 143 for SIGTERM
    if outcome.error:
        raise EdgeftError(outcome.error)
    if outcome.stats.frames == 0 and config.max_ticks != 0 and not done:
        if outcome.stats.skipped:
            raise EdgeftError(f"no frame could be used: all {outcome.stats.skipped} inputs were unreadable")
        window = sources.bag.start_s is not None or sources.bag.end_s is not None
        raise EdgeftError(f"no frame came from {', '.join(specs)}" + (" in the --start/--end window" if window else ""))


def run_summary(outcome, engine: Engine, config: PipelineConfig, decode_workers: list[int]) -> dict:
    """The run as `--json` prints it: the stats (with the stage profile), the bundle, how it ran
    (the CPU threads inference kept busy, and each source's decode pool beside them)."""
    return {"model": engine.manifest.name, "decode": config.decode, "inference_threads": engine.backend.cpu_threads,
            "decode_workers": decode_workers, "interrupted": outcome.signal is not None, "error": outcome.error,
            **outcome.stats.as_dict()}


@app.command(rich_help_panel="Running")
def predict(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    model: Model = None,
    device: Device = "auto",
    top: Annotated[int, typer.Option(help="classifiers: how many labels to print per image, best first")] = 3,
) -> None:
    """Run a bundle on image files and print each prediction: the top labels and scores of a
    classifier, a steering value, or a feature summary."""
    with user_errors():
        from edgeft.runtime.sources import read_image

        engine = load_engine(model, device)
        table = Table("image", "size", "result", "ms")
        for path in images:
            frame = read_image(path)
            result = engine.predict(frame)
            table.add_row(path.name, f"{frame.shape[1]}x{frame.shape[0]}", describe(engine.manifest, result.outputs, top),
                          f"{result.latency_ms:.1f}")
        stdout.print(table)


@app.command(rich_help_panel="Running")
def run(
    source: Annotated[list[str], typer.Option("--source", "-s", rich_help_panel=SOURCE,
                                              help="camera0 | video | image folder/glob | URL | driving_log.csv | ROS bag[#topic] | ros2:/topic; "
                                                   "repeat for a rig, name=spec to name")],
    model: Model = None,
    device: Device = "auto",
    precision: Precision = None,
    threads: Threads = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="keep optimised graphs / TensorRT engines here between starts", rich_help_panel="Model")] = None,
    io_binding: IoBinding = None,
    batch: Annotated[int, typer.Option(help="ticks per inference call for file sources", rich_help_panel=RUN)] = 1,
    rate: Annotated[Optional[float], typer.Option(help="pace file sources like a live camera (newest frame wins): HZ, or for bags x recorded speed", rich_help_panel=SOURCE)] = None,
    stride: Annotated[int, typer.Option(help="keep every Nth frame", rich_help_panel=SOURCE)] = 1,
    loop: Annotated[bool, typer.Option(help="loop image folders / globs", rich_help_panel=SOURCE)] = False,
    width: Annotated[Optional[int], typer.Option(help="camera capture width", rich_help_panel=SOURCE)] = None,
    height: Annotated[Optional[int], typer.Option(help="camera capture height", rich_help_panel=SOURCE)] = None,
    fps: Annotated[Optional[float], typer.Option(help="camera capture fps", rich_help_panel=SOURCE)] = None,
    cameras: Annotated[str, typer.Option(help="driving log cameras, comma separated", rich_help_panel=SOURCE)] = "center,left,right",
    correction: Annotated[Optional[float], typer.Option(help="driving log: steering truth offset for left/right cameras", rich_help_panel=SOURCE)] = None,
    output: Annotated[Optional[Path], typer.Option(help="predictions to FILE.jsonl or FILE.csv", rich_help_panel=OUTPUT)] = None,
    features: Annotated[Optional[Path], typer.Option(help="features to DIR as .npy shards + index.csv", rich_help_panel=OUTPUT)] = None,
    save_video: Annotated[Optional[Path], typer.Option(help="annotated video of the first camera (.mp4)", rich_help_panel=OUTPUT)] = None,
    show: Annotated[bool, typer.Option(help="show the annotated first camera in a window", rich_help_panel=OUTPUT)] = False,
    record: Annotated[Optional[Path], typer.Option(help="record frames, annotations, predictions and telemetry to FILE.mcap (Foxglove)", rich_help_panel=OUTPUT)] = None,
    foxglove: Annotated[Optional[str], typer.Option(help="serve the same channels live to Foxglove at [HOST:]PORT (e.g. 8765)", rich_help_panel=OUTPUT)] = None,
    force: Force = False,
    max_frames: Annotated[Optional[int], typer.Option(help="stop after this many ticks", rich_help_panel=RUN)] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display, only the summary", rich_help_panel=RUN)] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary (with the stage profile) as JSON", rich_help_panel=RUN)] = False,
    decode: Decode = "auto",
    decode_workers: DecodeWorkers = None,
    truth_topic: TruthTopic = None,
    truth_field: TruthField = None,
    sync_tolerance: SyncTolerance = None,
    incomplete: Incomplete = "run",
    start: Start = None,
    end: End = None,
    publish: Annotated[Optional[str], typer.Option(help="publish predictions and /diagnostics as ROS 2 topics: ros2:[NAMESPACE] (default /edgeft)", rich_help_panel=ROS2)] = None,
    ros_qos: Annotated[str, typer.Option(help="camera subscriptions: sensor (best effort, matches any driver) | reliable", rich_help_panel=ROS2)] = "sensor",
    ros_domain: RosDomain = None,
    ros_wait: Annotated[float, typer.Option(help="seconds to wait for camera topics to appear (inf: for ever)", rich_help_panel=ROS2)] = 10.0,
    ros_features: Annotated[bool, typer.Option(help="also publish the feature vector (Float32MultiArray)", rich_help_panel=ROS2)] = False,
    ros_types: Annotated[str, typer.Option(help="richer stamped outputs where installed: ackermann, vision (comma separated)", rich_help_panel=ROS2)] = "",
) -> None:
    """Stream frames from cameras, videos, images, URLs, a driving log, a ROS bag or ROS 2 topics through a bundle."""
    with user_errors():
        from edgeft.runtime.ros2 import RosOptions, node_name_for
        from edgeft.runtime.sinks import WindowSink

        if publish is not None and not (publish == "ros2" or publish.startswith("ros2:")):
            raise EdgeftError(f"--publish takes ros2:[NAMESPACE], got '{publish}'")
        ros = RosOptions(domain=ros_domain, qos=ros_qos, wait_s=ros_wait, features=ros_features, types=names(ros_types),
                         node_name=node_name_for(publish.partition(":")[2] if publish else None))
        sources = SourceOptions(width=width, height=height, fps=fps, loop=loop, rate=rate, stride=stride, cameras=names(cameras),
                                correction=correction, decode_workers=decode_workers,
                                bag=bag_options(truth_topic, truth_field, sync_tolerance, incomplete, start, end), ros=ros)
        config = PipelineConfig(batch=batch, max_ticks=max_frames, decode=decode_mode(decode, draws_frames=bool(save_video or show)))
        engine = load_engine(model, device, threads, precision, cache_dir=cache_dir, io_binding=io_binding)
        outputs = [f"{kind}:{path}" for kind, path in (("predictions", output), ("features", features), ("video", save_video),
                                                       ("mcap", record), ("foxglove", foxglove)) if path]
        outputs += [publish] if publish else []
        if show and not WindowSink.available():
            err.print("--show ignored: no display here")
        outputs += ["window"] if show and WindowSink.available() else []
        stream_into(engine, source, outputs, sources, SinkOptions(force=force, fps=rate or 20.0, ros=ros), config, quiet or json_out,
                    json_out)


@app.command(rich_help_panel="Running")
def topics(
    bag: Annotated[str, typer.Argument(help="ROS 1 .bag, ROS 2 folder, .mcap or .db3; or ros2: for the live ROS 2 graph")],
    ros_domain: RosDomain = None,
    seconds: Annotated[float, typer.Option(help="ros2: how long to listen for rates", rich_help_panel=ROS2)] = 3.0,
) -> None:
    """List a ROS bag's topics (message type, count, mean rate), or the live ROS 2 graph's image topics."""
    with user_errors():
        from edgeft.runtime.sources import bag_topics

        if bag == "ros2" or bag.startswith("ros2:"):
            return graph_topics(ros_domain, seconds)
        duration, found = bag_topics(bag)
        table = Table("topic", "type", "messages", "rate", title=f"{bag}: {duration:.1f} s", title_justify="left")
        for info in found:
            count = str(info.count) if info.readable == info.count else f"{info.count} ({info.readable} readable: damaged)"
            table.add_row(info.topic, info.msgtype, count, f"{info.rate_hz:.1f} Hz")
        stdout.print(table)


def graph_topics(domain: int | None, seconds: float) -> None:
    from edgeft.runtime.ros2 import RosOptions, list_image_topics

    if not (0 < seconds < 3600):
        raise EdgeftError(f"--seconds must be between 0 and 3600, got {seconds}")
    domain, found = list_image_topics(RosOptions(domain=domain), seconds)
    table = Table("topic", "type", "publishers", "QoS", "rate", title=f"ROS 2 domain {domain}: image topics, listened {seconds:g} s",
                  title_justify="left")
    for info in found:
        rate = f"{info.rate_hz:.1f} Hz" if info.rate_hz is not None else f"{info.messages} messages"
        table.add_row(info.topic, info.msgtype, str(info.publishers), info.reliability, rate)
    if found:
        stdout.print(table)
    else:
        say(f"no image topic on ROS domain {domain} (a camera on another domain needs --ros-domain or ROS_DOMAIN_ID)")


@app.command("bench", rich_help_panel="Running")
def bench_command(
    bundle: Annotated[Path, typer.Argument(help="bundle folder")],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | tensorrt | openvino | all (every backend and precision installed here)")] = "auto",
    precision: Precision = None,
    threads: Threads = None,
    io_binding: IoBinding = None,
    runs: Annotated[int, typer.Option(help="timed runs at batch 1 (fewer at larger batches)")] = 30,
    batches: Annotated[str, typer.Option(help="batch sizes for throughput")] = "1,8,32",
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Latency, throughput, memory, cold start and achieved GFLOP/s of a bundle on this machine."""
    with user_errors():
        from edgeft.runtime.bench import bench, bench_all
        from edgeft.runtime.cpu import cpu_info

        sizes = tuple(int(b) for b in names(batches) if b.isdigit())
        if runs < 1 or len(sizes) != len(names(batches)) or not sizes or min(sizes) < 1:
            raise EdgeftError("--runs and every --batches size must be whole numbers of at least 1")
        if device == "all":
            results = bench_all(bundle, threads, runs, sizes)
            if json_out:
                print("[" + ",\n".join(r.to_json() if not isinstance(r, str) else json.dumps({"error": r}) for r in results) + "]")
                return
            stdout.print(bench_all_table(bundle, results, cpu_info().describe()))
            return
        result = bench(bundle, device, threads, runs, batches=sizes, io_binding=io_binding, precision=precision)
        if json_out:
            print(result.to_json())
            return
        stdout.print(bench_table(bundle, result))


@app.command(rich_help_panel="Running")
def visualize(
    bundle: Annotated[Path, typer.Argument(help="bundle folder")],
    image: Annotated[Path, typer.Argument(help="image file")],
    out: Annotated[Path, typer.Option(help="folder for the PNGs")] = Path("runs/visualize"),
) -> None:
    """Write the feature activations as a mosaic, and the class activation map when the bundle has one."""
    with user_errors():
        from edgeft.runtime.sources import read_image
        from edgeft.transfer.visualize import visualize as draw

        for path in draw(Engine.load(bundle), read_image(image), out, image.stem):
            say(f"wrote {path}")
