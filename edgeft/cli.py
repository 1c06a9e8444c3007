"""The `edgeft` command: a thin typer layer over edgeft.export and edgeft.runtime.

TensorFlow is imported only inside the commands that build Keras models (`export`, `layers`);
every other command starts in well under a second.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from edgeft.runtime.errors import EdgeftError

app = typer.Typer(
    help="Export keras.applications backbones to verified ONNX bundles and run them on the edge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stdout = Console()
err = Console(stderr=True)

MODELS_DIR = Path("models")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Expected failures become one line on stderr and exit code 1; Ctrl-C exits 130."""
    try:
        yield
    except EdgeftError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def _export_available() -> None:
    """Import TensorFlow with its native start-up log (CUDA probing on CPU machines) muted."""
    from edgeft.export.quiet import native_stderr_muted

    try:
        with native_stderr_muted():
            import tensorflow as tf
            import tf2onnx  # noqa: F401

            tf.config.list_physical_devices()  # cuInit happens here; its failure is not news
    except ImportError:
        raise EdgeftError("this command needs the export extra: pip install 'edgeft[export]'") from None


@app.command()
def backbones() -> None:
    """List every keras.applications backbone with its input size, preprocessing and size."""
    from edgeft.export.backbones import BACKBONES, PREPROCESS_MODES

    table = Table("backbone", "default input", "preprocess", "params (no top)", title="keras.applications backbones")
    for spec in BACKBONES:
        size = f"{spec.default_size}x{spec.default_size}"
        table.add_row(spec.name, size, spec.preprocess, f"{spec.params / 1e6:.1f} M")
    stdout.print(table)
    for mode, meaning in PREPROCESS_MODES.items():
        stdout.print(f"  [bold]{mode}[/]: {meaning}")


@app.command()
def layers(
    backbone: Annotated[str, typer.Argument(help="keras.applications name or a .keras model file")],
    input_size: Annotated[Optional[str], typer.Option(help="N or HxW; default: the backbone's own")] = None,
    trust_h5: Annotated[bool, typer.Option(help="allow a legacy .h5 model file (no safe mode)")] = False,
) -> None:
    """List the layers a backbone can be cut at (--cut), with their output shapes."""
    with user_errors():
        _export_available()
        from edgeft.export.backbones import resolve_backbone
        from edgeft.export.build import cut_points, load_keras_file
        from edgeft.export.exporter import _is_file, parse_input_size

        if _is_file(backbone):
            model = load_keras_file(Path(backbone), "backbone model", trust_h5)
        else:
            spec = resolve_backbone(backbone)
            h, w = parse_input_size(input_size) if input_size else (spec.default_size,) * 2
            model = spec.constructor()(include_top=False, weights=None, input_shape=(h, w, 3))
        table = Table("cut point", "output shape", title=f"{model.name}: layers every path passes through")
        for point in cut_points(model):
            table.add_row(point.name, str(point.shape))
        stdout.print(table)


@app.command()
def export(
    backbone: Annotated[str, typer.Argument(help="keras.applications name (any case) or a .keras model file")],
    weights: Annotated[str, typer.Option(help="imagenet | none | PATH to a weights file")] = "imagenet",
    cut: Annotated[Optional[str], typer.Option(help="cut at this layer instead of dropping only the classifier")] = None,
    pooling: Annotated[str, typer.Option(help="avg | max | none: pooling of a 4-D feature map")] = "avg",
    input_size: Annotated[Optional[str], typer.Option(help="N or HxW, e.g. 299 or 224x320")] = None,
    preprocess: Annotated[Optional[str], typer.Option(help="tf | caffe | torch | unit | none (needed for model files)")] = None,
    head: Annotated[Optional[Path], typer.Option(help="trained Keras head (.keras) to fuse after the features")] = None,
    labels: Annotated[Optional[Path], typer.Option(help="class names, one per line, for a classification head")] = None,
    task: Annotated[str, typer.Option(help="auto | regression | classification (auto: from the head's activation)")] = "auto",
    batch: Annotated[Optional[int], typer.Option(help="static batch size (default: dynamic)")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset")] = 17,
    name: Annotated[Optional[str], typer.Option(help="bundle folder name (default: from backbone and cut)")] = None,
    models_dir: Annotated[Path, typer.Option(help="where bundles are written")] = MODELS_DIR,
    force: Annotated[bool, typer.Option(help="replace an existing bundle")] = False,
    tolerance: Annotated[float, typer.Option(help="max relative Keras-vs-ONNX error per output")] = 1e-4,
    trust_h5: Annotated[bool, typer.Option(help="allow a legacy .h5 model file (no safe mode)")] = False,
    seed: Annotated[int, typer.Option(help="seed for random init and probes")] = 0,
    cam: Annotated[bool, typer.Option(help="add class activation maps as an output (GAP + dense head, --pooling none)")] = False,
    int8: Annotated[bool, typer.Option(help="quantize to INT8 (static QDQ, per-channel), calibrated on --calib")] = False,
    calib: Annotated[Optional[str], typer.Option(help="INT8 calibration source: driving log, video, image folder or glob")] = None,
    calib_frames: Annotated[int, typer.Option(help="frames to calibrate on (as many again + half are needed)")] = 64,
    int8_min_cosine: Annotated[float, typer.Option(help="refuse the INT8 bundle below this mean feature cosine vs FP32")] = 0.99,
    int8_min_top1: Annotated[float, typer.Option(help="refuse below this top-1 agreement vs FP32 (classifiers)")] = 0.95,
    fp16: Annotated[bool, typer.Option(help="convert to FP16 for GPUs, checked against FP32 (on a GPU if there is one)")] = False,
    fp16_min_cosine: Annotated[float, typer.Option(help="refuse the FP16 bundle below this mean feature cosine vs FP32")] = 0.999,
) -> None:
    """Export BACKBONE (+ optional head) to a verified ONNX bundle under models/."""
    with user_errors():
        _export_available()
        from edgeft.export.exporter import ExportConfig, export_bundle, parse_input_size
        from edgeft.export.fp16 import Fp16Config
        from edgeft.export.quantize import Int8Config

        if int8 != (calib is not None):
            raise EdgeftError("--int8 and --calib go together: INT8 is calibrated on frames from a real source")
        config = ExportConfig(
            backbone=backbone, weights=weights, cut=cut, pooling=pooling,
            input_size=parse_input_size(input_size) if input_size else None, preprocess=preprocess,
            head=head, labels=labels, task=task, batch=batch, opset=opset, name=name, models_dir=models_dir,
            force=force, tolerance=tolerance, trust_h5=trust_h5, seed=seed, cam=cam,
            int8=Int8Config(calib, calib_frames, max(8, calib_frames // 2), int8_min_cosine, int8_min_top1) if int8 else None,
            fp16=Fp16Config(fp16_min_cosine) if fp16 else None,
        )
        result = export_bundle(config, say=lambda step: err.print(f"[dim]· {step}[/]"))
        stdout.print(f"[green]wrote[/] {result.path}")
        _print_manifest(result.path)


@app.command()
def inspect(bundle: Annotated[Path, typer.Argument(help="bundle folder")]) -> None:
    """Print a bundle's manifest as a readable summary (and verify its model hash)."""
    with user_errors():
        from edgeft.runtime.bundle import load_bundle

        load_bundle(bundle)
        _print_manifest(bundle)


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    model: Annotated[Optional[Path], typer.Option(help="bundle folder (default: the only one under models/)")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | tensorrt")] = "auto",
) -> None:
    """Run a bundle on image files and print each prediction (or feature summary)."""
    with user_errors():
        from edgeft.runtime import Engine, default_bundle

        from .images import read_image

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        engine = Engine.load(model or default_bundle(MODELS_DIR), device=device)
        table = Table("image", "size", "result", "ms")
        for path in images:
            frame = read_image(path)
            result = engine.predict(frame)
            table.add_row(path.name, f"{frame.shape[1]}x{frame.shape[0]}", _describe(engine.manifest, result.outputs), f"{result.latency_ms:.1f}")
        stdout.print(table)


@app.command()
def run(
    source: Annotated[list[str], typer.Option("--source", "-s", help="camera0 | video | image folder/glob | URL | driving_log.csv; repeat for a rig, name=spec to name")],
    model: Annotated[Optional[Path], typer.Option(help="bundle folder (default: the only one under models/)")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | tensorrt")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="onnxruntime intra-op threads")] = None,
    batch: Annotated[int, typer.Option(help="ticks per inference call for file sources")] = 1,
    rate: Annotated[Optional[float], typer.Option(help="pace file sources at HZ, like a live camera (newest frame wins)")] = None,
    stride: Annotated[int, typer.Option(help="keep every Nth frame")] = 1,
    loop: Annotated[bool, typer.Option(help="loop image folders / globs")] = False,
    width: Annotated[Optional[int], typer.Option(help="camera capture width")] = None,
    height: Annotated[Optional[int], typer.Option(help="camera capture height")] = None,
    fps: Annotated[Optional[float], typer.Option(help="camera capture fps")] = None,
    cameras: Annotated[str, typer.Option(help="driving log cameras, comma separated")] = "center,left,right",
    correction: Annotated[Optional[float], typer.Option(help="driving log: steering truth offset for left/right cameras")] = None,
    output: Annotated[Optional[Path], typer.Option(help="predictions to FILE.jsonl or FILE.csv")] = None,
    features: Annotated[Optional[Path], typer.Option(help="features to DIR as .npy shards + index.csv")] = None,
    save_video: Annotated[Optional[Path], typer.Option(help="annotated video of the first camera (.mp4)")] = None,
    show: Annotated[bool, typer.Option(help="show the annotated first camera in a window")] = False,
    max_frames: Annotated[Optional[int], typer.Option(help="stop after this many ticks")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display, only the summary")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help="keep optimised graphs / TensorRT engines here between starts")] = None,
    io_binding: Annotated[Optional[bool], typer.Option("--io-binding/--no-io-binding", help="bind frames to device buffers (default: on GPU providers)")] = None,
) -> None:
    """Stream frames from cameras, videos, images, URLs or a driving log through a bundle."""
    with user_errors():
        from edgeft.runtime import Engine, PipelineConfig, SourceOptions, default_bundle, open_source

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        if batch < 1 or stride < 1 or (rate is not None and rate <= 0):
            raise EdgeftError("--batch and --stride must be at least 1, and --rate positive")
        engine = Engine.load(model or default_bundle(MODELS_DIR), device=device, threads=threads, cache_dir=cache_dir,
                             io_binding=io_binding)
        options = SourceOptions(width=width, height=height, fps=fps, loop=loop, rate=rate, stride=stride,
                                cameras=_names(cameras), correction=correction)
        sources = []
        try:
            for spec in source:
                sources.append(open_source(spec, options))
            names = [s.name for s in sources]
            if len(set(names)) != len(names):
                raise EdgeftError(f"sources need distinct names ({', '.join(names)}): use name=spec")
            sinks = _run_sinks(engine.manifest, sources, output, features, save_video, show, rate)
            _stream(engine, sources, sinks, PipelineConfig(batch=batch, max_ticks=max_frames), quiet)
        finally:
            for s in sources:
                s.close()


def _run_sinks(manifest, sources, output, features, save_video, show, rate) -> list:
    from edgeft.runtime.sinks import FeatureShards, PredictionWriter, VideoSink, WindowSink

    sinks: list = []
    try:
        if output:
            sinks.append(PredictionWriter(output, manifest))
        if features:
            sinks.append(FeatureShards(features, manifest))
        if save_video:
            sinks.append(VideoSink(save_video, manifest, fps=getattr(sources[0], "fps", None) or rate or 20.0))
        if show and WindowSink.available():
            sinks.append(WindowSink(manifest))
        elif show:
            logging.getLogger("edgeft").warning("edgeft: --show ignored: no display here")
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def _stream(engine, sources, sinks, config, quiet: bool) -> None:
    """Run the pipeline into the sinks. Ctrl-C and SIGTERM ask the pipeline to stop rather than
    raising mid-write: the loop drains, sinks are flushed (the last feature shard committed whole)
    and the summary printed before exiting 130 / 143. A second signal stops waiting."""
    import signal

    from edgeft.runtime import Pipeline

    from .console import RunDisplay, summary_table

    pipeline = Pipeline(sources, engine, config)
    received: list[int] = []

    def request_stop(signum, frame):  # noqa: ARG001
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        pipeline.stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    total = sources[0].total if len(sources) == 1 or all(s.total for s in sources) else None
    if total is not None and config.max_ticks is not None:
        total = min(total, config.max_ticks)
    live = any(s.live or s.options.rate for s in sources)
    try:
        with RunDisplay(err, pipeline.stats, total, live, enabled=not quiet) as display:
            for result in pipeline:
                for sink in sinks:
                    sink.write(result)
                display.update(result, pipeline.ticks)
    except KeyboardInterrupt:
        received.append(signal.SIGINT)
    finally:
        pipeline.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sink in sinks:
            sink.close()
    stdout.print(summary_table(pipeline.stats, engine.manifest, bool(received)))
    if received:
        raise typer.Exit(128 + int(received[0]))  # 130 for Ctrl-C, 143 for SIGTERM
    if pipeline.stats.errors:
        raise EdgeftError(pipeline.stats.errors[-1])


@app.command()
def sample(
    folder: Annotated[Path, typer.Argument(help="where to write the sample")] = Path("data/sample-drive"),
    frames: Annotated[int, typer.Option(help="frames per camera")] = 120,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
) -> None:
    """Write the built-in driving sample: a synthetic three-camera road clip and driving_log.csv."""
    with user_errors():
        from .sample import make_driving_sample

        if frames < 1:
            raise EdgeftError("--frames must be at least 1")
        log_path = make_driving_sample(folder, frames, seed)
        stdout.print(f"wrote {log_path} ({frames} ticks x 3 cameras) and {folder / 'center.mp4'}: a synthetic road, steering = drawn curvature")


@app.command()
def extract(
    dataset: Annotated[Optional[Path], typer.Argument(help="class-folder root, or a driving_log.csv (or its folder)")] = None,
    out: Annotated[Path, typer.Option(help="features folder to write")] = Path("runs/features"),
    model: Annotated[Optional[Path], typer.Option(help="bundle folder (default: the only one under models/)")] = None,
    source: Annotated[Optional[str], typer.Option(help="any run source instead of a dataset: features without labels")] = None,
    val: Annotated[float, typer.Option(help="validation fraction")] = 0.15,
    test: Annotated[float, typer.Option(help="test fraction")] = 0.15,
    seed: Annotated[int, typer.Option(help="split and augmentation seed")] = 0,
    augment: Annotated[str, typer.Option(help="training-split augmentation: flip, brightness (comma separated)")] = "",
    cameras: Annotated[str, typer.Option(help="driving log cameras to use")] = "center,left,right",
    correction: Annotated[float, typer.Option(help="driving log: steering added for left, subtracted for right")] = 0.2,
    resume: Annotated[bool, typer.Option(help="continue an interrupted extraction")] = False,
    rows_per_shard: Annotated[int, typer.Option(help="rows per .npy shard")] = 256,
    batch: Annotated[int, typer.Option(help="frames per inference call")] = 16,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | tensorrt")] = "auto",
) -> None:
    """Cache bottleneck features of a dataset (runtime, not Keras), with labels and a seeded split."""
    with user_errors():
        from edgeft.runtime import Engine, default_bundle

        from .datasets import is_driving_log, plan_dataset

        if (dataset is None) == (source is None):
            raise EdgeftError("give a DATASET (class folders or driving log) or --source, not both")
        if source is not None:
            run(source=[source], model=model, device=device, features=out, quiet=False)
            return
        engine = Engine.load(model or default_bundle(MODELS_DIR), device=device)
        aug, cams = _names(augment), _names(cameras)
        settings = {"dataset": str(dataset), "val": val, "test": test, "seed": seed, "augment": list(aug)}
        if is_driving_log(dataset):
            settings.update(cameras=list(cams), correction=correction)
        plan = plan_dataset(dataset, val, test, seed, aug, cams, correction)
        _run_extraction(engine, plan, out, settings, rows_per_shard, batch, resume)


def _run_extraction(engine, plan, out, settings, rows_per_shard, batch, resume) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from .extract import ExtractConfig
    from .extract import extract as run_extract

    if rows_per_shard < 1 or batch < 1:
        raise EdgeftError("--rows-per-shard and --batch must be at least 1")
    config = ExtractConfig(rows_per_shard=rows_per_shard, batch=batch, resume=resume)
    with Progress("[bold]extract", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("extract", total=len(plan.items))
        unreadable = run_extract(engine, plan, out, settings, config, lambda done, _: bar.update(task, completed=done))
    splits = {s: sum(1 for i in plan.items if i.split == s) for s in ("train", "val", "test")}
    out_line = f"wrote {out}: {len(plan.items)} rows ({', '.join(f'{k} {v}' for k, v in splits.items())})"
    if plan.classes:
        out_line += f", {len(plan.classes)} classes"
    if plan.skipped:
        out_line += f"; skipped {plan.skipped} non-image files"
    if unreadable:
        out_line += f"; {unreadable} unreadable images left out"
    stdout.print(out_line)


@app.command("train-head")
def train_head_command(
    features: Annotated[Path, typer.Argument(help="features folder from `edgeft extract`")],
    out: Annotated[Path, typer.Option(help="folder for head.keras and its report")] = Path("runs/head"),
    arch: Annotated[str, typer.Option(help="dense (dropout + dense) | gap (global-average-pool + dense, for CAMs)")] = "dense",
    hidden: Annotated[int, typer.Option(help="units of an optional hidden layer (dense)")] = 0,
    dropout: Annotated[float, typer.Option(help="dropout rate")] = 0.3,
    epochs: Annotated[int, typer.Option(help="maximum epochs (early stopping on validation)")] = 200,
    batch: Annotated[int, typer.Option(help="batch size")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    patience: Annotated[int, typer.Option(help="epochs without validation improvement before stopping")] = 15,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
) -> None:
    """Train a Keras head on cached features; writes head.keras, metrics.json and plots."""
    with user_errors():
        _export_available()
        from .extract import load_features
        from .train import HeadConfig, train_head

        report = train_head(load_features(features), out, HeadConfig(arch, hidden, dropout, epochs, batch, learning_rate, patience, seed))
        scores = "; ".join(f"{split} " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if k != "n") for split, m in report["metrics"].items())
        stdout.print(f"wrote {out / 'head.keras'} ({report['task']}, {report['epochs_run']} epochs): {scores}")


@app.command()
def finetune(
    backbone: Annotated[str, typer.Argument(help="the backbone the head was trained on (as given to export)")],
    dataset: Annotated[Path, typer.Argument(help="class-folder root, or a driving_log.csv (or its folder)")],
    head: Annotated[Path, typer.Option(help="head.keras from `edgeft train-head`")],
    out: Annotated[Path, typer.Option(help="folder for backbone.keras, head.keras, finetune.json")] = Path("runs/finetune"),
    weights: Annotated[str, typer.Option(help="imagenet | none | PATH, as for export")] = "imagenet",
    cut: Annotated[Optional[str], typer.Option(help="as for export")] = None,
    pooling: Annotated[str, typer.Option(help="as for export")] = "avg",
    input_size: Annotated[Optional[str], typer.Option(help="as for export")] = None,
    preprocess: Annotated[Optional[str], typer.Option(help="as for export (model files)")] = None,
    unfreeze: Annotated[int, typer.Option(help="train the last N weighted layers of the backbone")] = 0,
    from_layer: Annotated[Optional[str], typer.Option(help="or train every layer from this one on (e.g. mixed9)")] = None,
    epochs: Annotated[int, typer.Option(help="maximum epochs")] = 10,
    batch: Annotated[int, typer.Option(help="batch size")] = 16,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (keep it low)")] = 1e-5,
    val: Annotated[float, typer.Option(help="validation fraction")] = 0.15,
    test: Annotated[float, typer.Option(help="test fraction")] = 0.15,
    seed: Annotated[int, typer.Option(help="split and training seed (use the extract seed)")] = 0,
    augment: Annotated[str, typer.Option(help="training-split augmentation: flip, brightness")] = "",
    cameras: Annotated[str, typer.Option(help="driving log cameras")] = "center,left,right",
    correction: Annotated[float, typer.Option(help="driving log side-camera steering correction")] = 0.2,
) -> None:
    """Fine-tune the top of the backbone together with a trained head, at a low learning rate."""
    with user_errors():
        _export_available()
        from edgeft.export.exporter import ExportConfig, parse_input_size

        from .datasets import plan_dataset
        from .finetune import FinetuneConfig
        from .finetune import finetune as run_finetune

        config = ExportConfig(backbone=backbone, weights=weights, cut=cut, pooling=pooling, head=head, preprocess=preprocess,
                              input_size=parse_input_size(input_size) if input_size else None, seed=seed)
        plan = plan_dataset(dataset, val, test, seed, _names(augment), _names(cameras), correction)
        record = run_finetune(config, plan, out, FinetuneConfig(unfreeze, from_layer, epochs, batch, learning_rate, seed=seed))
        metric = "accuracy" if plan.task == "classification" else "mae"
        stdout.print(f"tuned {len(record['tuned_layers'])} layers ({record['tuned_layers'][0]} … {record['tuned_layers'][-1]}), "
                     f"{record['epochs_run']} epochs; {record['evaluated_on']} {metric} "
                     f"{record['before'][metric]:.4f} -> {record['after'][metric]:.4f}")
        size = "x".join(map(str, record["input"]))
        stdout.print(f"export it: edgeft export {out / 'backbone.keras'} --preprocess {record['preprocess']} --input-size {size} "
                     f"--pooling {pooling} --head {out / 'head.keras'}" + (f" --labels {out / 'labels.txt'}" if plan.classes else ""))


@app.command("bench")
def bench_command(
    bundle: Annotated[Path, typer.Argument(help="bundle folder")],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | tensorrt")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="onnxruntime intra-op threads")] = None,
    runs: Annotated[int, typer.Option(help="timed runs at batch 1 (fewer at larger batches)")] = 30,
    batches: Annotated[str, typer.Option(help="batch sizes for throughput")] = "1,8,32",
    io_binding: Annotated[Optional[bool], typer.Option("--io-binding/--no-io-binding", help="bind frames to device buffers (default: on GPU providers)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Latency, throughput, memory, cold start and achieved GFLOP/s of a bundle on this machine."""
    with user_errors():
        from .bench import bench

        sizes = tuple(int(b) for b in _names(batches))
        if runs < 1 or not sizes or min(sizes) < 1:
            raise EdgeftError("--runs and every --batches size must be at least 1")
        result = bench(bundle, device, threads, runs, batches=sizes, io_binding=io_binding)
        if json_out:
            print(result.to_json())
            return
        table = Table(show_header=False, title=f"edgeft bench: {bundle} ({result.input}, {result.provider}"
                      f"{', IO binding' if result.io_binding else ''})", title_justify="left")
        lat, cold = result.latency_ms, result.cold_start_s
        table.add_row("latency b1", f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms")
        for size, fps in result.throughput_fps.items():
            table.add_row(f"throughput b{size}", f"{fps:.1f} frames/s" + (f", {result.gflops_per_s[size]:.1f} GFLOP/s" if result.gflops_per_frame else ""))
        table.add_row("model FLOPs", f"{result.gflops_per_frame:.2f} GFLOP/frame" if result.gflops_per_frame else "n/a (needs the onnx package)")
        table.add_row("peak memory", f"{result.peak_rss_mb:.0f} MB RSS")
        table.add_row("cold start", f"{cold['to_first_result_s']:.2f} s to the first result (import {cold['import_s']:.2f} + "
                                    f"session {cold['session_s']:.2f} + first frame {cold['first_frame_s']:.2f})")
        stdout.print(table)


@app.command()
def visualize(
    bundle: Annotated[Path, typer.Argument(help="bundle folder")],
    image: Annotated[Path, typer.Argument(help="image file")],
    out: Annotated[Path, typer.Option(help="folder for the PNGs")] = Path("runs/visualize"),
) -> None:
    """Write the feature activations as a mosaic, and the class activation map when the bundle has one."""
    with user_errors():
        from edgeft.runtime import Engine

        from .images import read_image
        from .visualize import visualize as draw

        for path in draw(Engine.load(bundle), read_image(image), out, image.stem):
            stdout.print(f"wrote {path}")


def _names(text: str) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'): the comma-separated option values."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _describe(manifest, outputs) -> str:
    if manifest.task == "features":
        feats = outputs["features"]
        top = feats.reshape(-1).argsort()[::-1][:3]
        return f"features {tuple(feats.shape)}, L2 {float((feats ** 2).sum() ** 0.5):.2f}, strongest channels {list(map(int, top))}"
    pred = outputs[manifest.output("prediction").name]
    if manifest.task == "classification":
        best = int(pred.argmax())
        label = manifest.labels[best] if manifest.labels else f"class {best}"
        return f"{label} ({float(pred[best]):.3f})"
    return "prediction " + ", ".join(f"{v:.4f}" for v in pred.reshape(-1))


def _print_manifest(path: Path) -> None:
    from edgeft.runtime.bundle import read_manifest

    m = read_manifest(path)
    table = Table(show_header=False, title=f"bundle {path}", title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    b, w, i = m.backbone, m.weights, m.input
    rows = [
        ("task", m.task + (f" ({len(m.labels)} labels)" if m.labels else "")),
        ("backbone", f"{b.name} ({b.source}), cut {b.cut or 'classifier dropped'}, pooling {b.pooling}"),
        ("input", f"{i.name}: {i.dtype} {i.layout} {i.color_order} {i.height}x{i.width}, batch {i.batch or 'dynamic'}"),
        ("preprocess", f"{b.preprocess} (folded into the graph)"),
        ("outputs", ", ".join(f"{o.name} {_shape(o.shape)}" for o in m.outputs)),
        ("weights", f"{w.source}: {w.loaded_by}" + (f", file sha256 {w.file_sha256[:16]}…" if w.file_sha256 else "")),
        ("head", f"{m.head.source} (sha256 {m.head.sha256[:16]}…)" if m.head else "none"),
        ("parity", "; ".join(f"{p.output} rel {p.max_rel:.1e} abs {p.max_abs:.1e} on {p.probes} probes" for p in m.parity)
                   + f" (tolerance {m.parity_tolerance:g})"),
        ("model", f"opset {m.opset}, sha256 {m.model_sha256[:16]}…"
                  + (f", {m.quantization.method}" if m.quantization else f", {m.precision}")),
        *([("int8", f"calibrated on {m.quantization.calibration_frames} frames of {m.quantization.calibration_source}; vs FP32 on "
                    f"{m.quantization.holdout_frames} held out: " + _agreement(m.quantization.agreement))]
          if m.quantization else []),
        *([("fp16", f"vs FP32 on {m.fp16.probe_frames} probes, FP16 graph on {m.fp16.checked_on}: " + _agreement(m.fp16.agreement)
                    + "; FP16 storage emulated on CPU: " + _agreement(m.fp16.storage_emulation))] if m.fp16 else []),
        ("versions", ", ".join(f"{k} {v}" for k, v in m.versions.items())),
        ("created", m.created),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    stdout.print(table)


def _shape(shape: tuple) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _agreement(agreement: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.6f}" for k, v in agreement.items())
