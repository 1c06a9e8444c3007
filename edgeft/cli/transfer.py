"""Transfer-learning commands: the sample drive, feature caching, head training, fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeft.runtime import EdgeftError, Engine, PipelineConfig, SinkOptions, SourceOptions
from edgeft.runtime.sources import location
from edgeft.transfer import ExtractConfig
from edgeft.transfer.ray_cluster import RayConfig

from .common import (DATA, OUTPUT, Augment, Cameras, Correction, Cut, Decode, Device, End, Force, Incomplete, InputSize, Model,
                     Pooling, Precision, Preprocess, RayActors, RayAddress, RayCpusPerActor, Seed, Split, Start, SyncTolerance, Test,
                     TrustH5, TruthField, TruthTopic, Val, Weights, app, bag_options, by_time, decode_mode, err, export_available, names,
                     say, user_errors)
from .display import ProgressBar
from .running import load_engine, stream_into

TRAINING = "Training"


@app.command(rich_help_panel="Transfer learning")
def sample(
    folder: Annotated[Path, typer.Argument(help="where to write the sample")] = Path("data/sample-drive"),
    frames: Annotated[int, typer.Option(help="frames per camera")] = 120,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
) -> None:
    """Write the built-in driving sample: a synthetic three-camera road clip and driving_log.csv."""
    with user_errors():
        from edgeft.transfer.sample import make_driving_sample

        if frames < 1:
            raise EdgeftError("--frames must be at least 1")
        log_path = make_driving_sample(folder, frames, seed)
        say(f"wrote {log_path} ({frames} ticks x 3 cameras) and {folder / 'center.mp4'}: the built-in road (synthetic), "
            "steering = what its expert steers from each pose")


@app.command(rich_help_panel="Transfer learning")
def extract(
    dataset: Annotated[Optional[str], typer.Argument(help="class-folder root, a driving_log.csv (or its folder), or a ROS bag; "
                                                   "the first two also as a URI (s3://bucket/drive/)")] = None,
    out: Annotated[Path, typer.Option(help="features folder to write", rich_help_panel=OUTPUT)] = Path("runs/features"),
    model: Model = None,
    device: Device = "auto",
    precision: Precision = None,
    source: Annotated[Optional[str], typer.Option(help="any run source instead of a dataset: features without labels", rich_help_panel=DATA)] = None,
    val: Val = 0.15,
    test: Test = 0.15,
    seed: Seed = 0,
    augment: Augment = "",
    cameras: Cameras = "center,left,right",
    correction: Correction = 0.2,
    split: Split = "random",
    resume: Annotated[bool, typer.Option(help="continue an interrupted extraction", rich_help_panel=OUTPUT)] = False,
    force: Force = False,
    rows_per_shard: Annotated[int, typer.Option(help="rows per .npy shard", rich_help_panel=OUTPUT)] = 256,
    batch: Annotated[int, typer.Option(help="frames per inference call")] = 16,
    decode: Decode = "auto",
    truth_topic: TruthTopic = None,
    truth_field: TruthField = None,
    sync_tolerance: SyncTolerance = None,
    incomplete: Incomplete = "run",
    start: Start = None,
    end: End = None,
    ray: RayAddress = None,
    ray_actors: RayActors = None,
    ray_cpus_per_actor: RayCpusPerActor = 1,
) -> None:
    """Cache bottleneck features of a dataset (runtime, not Keras), with labels and a seeded split."""
    with user_errors():
        from edgeft.transfer import extract as run_extract, extraction_report, extraction_settings, plan_dataset

        if (dataset is None) == (source is None):
            raise EdgeftError("give a DATASET (class folders or driving log) or --source, not both")
        data = location(dataset) if dataset is not None else None
        mode = decode_mode(decode)
        config = ExtractConfig(rows_per_shard=rows_per_shard, batch=batch, resume=resume, force=force, decode=mode)
        bag = bag_options(truth_topic, truth_field, sync_tolerance, incomplete, start, end)
        planning = (val, test, seed, names(augment), names(cameras), correction, bag, by_time(split))
        engine = load_engine(model, device, precision=precision)  # with --ray too: every actor runs what this chose
        if ray is not None:
            ray_config = RayConfig(ray, ray_actors, ray_cpus_per_actor, decode=mode)
            if source is not None:
                _extract_source_on_ray(engine, source, out, SourceOptions(bag=bag), SinkOptions(force=force, resume=resume,
                                       rows_per_shard=rows_per_shard), batch, ray_config)
            else:
                _extract_on_ray(engine, data, out, planning, config, ray_config)
            return
        if source is not None:
            sinks = SinkOptions(force=force, resume=resume, rows_per_shard=rows_per_shard)
            stream_into(engine, [source], [f"features:{out}"], SourceOptions(bag=bag), sinks, PipelineConfig(batch=batch, decode=mode),
                        quiet=False)
            return
        plan = plan_dataset(data, *planning)
        settings = extraction_settings(data, *planning, decode=mode)
        with ProgressBar(err, "extract", len(plan.items)) as progress:
            unreadable = run_extract(engine, plan, out, settings, config, progress.update)
        say(extraction_report(plan, out, unreadable))


def _extract_on_ray(engine: Engine, dataset: Path, out: Path, planning: tuple, config: ExtractConfig, ray: RayConfig) -> None:
    from edgeft.transfer import extraction_report, extraction_settings, plan_dataset
    from edgeft.transfer.ray_extract import extract_on_ray

    plan = plan_dataset(dataset, *planning)
    with ProgressBar(err, "extract on Ray", len(plan.items)) as progress:
        settings = extraction_settings(dataset, *planning, decode=config.decode)
        unreadable, report = extract_on_ray(engine, plan, out, settings, config, ray, progress.update)
    say(extraction_report(plan, out, unreadable))
    for line in report.lines():
        say(line)


def _extract_source_on_ray(engine: Engine, source: str, out: Path, sources: SourceOptions, sinks: SinkOptions, batch: int,
                           ray: RayConfig) -> None:
    from edgeft.transfer.ray_extract import extract_source_on_ray

    with ProgressBar(err, "extract on Ray", None) as progress:
        written, unreadable, report = extract_source_on_ray(engine, source, sources, out, sinks, batch, ray, progress.update)
    say(f"wrote {out}: {written} rows from {source}" + (f"; {unreadable} unreadable frames left out" if unreadable else ""))
    for line in report.lines():
        say(line)


@app.command("train-head", rich_help_panel="Transfer learning")
def train_head_command(
    features: Annotated[Path, typer.Argument(help="features folder from `edgeft extract`")],
    out: Annotated[Path, typer.Option(help="folder for head.keras and its report")] = Path("runs/head"),
    arch: Annotated[str, typer.Option(help="dense (dropout + dense) | gap (global-average-pool + dense, for CAMs)", rich_help_panel=TRAINING)] = "dense",
    hidden: Annotated[int, typer.Option(help="units of an optional hidden layer (dense)", rich_help_panel=TRAINING)] = 0,
    dropout: Annotated[float, typer.Option(help="dropout rate", rich_help_panel=TRAINING)] = 0.3,
    epochs: Annotated[int, typer.Option(help="maximum epochs (early stopping on validation)", rich_help_panel=TRAINING)] = 200,
    batch: Annotated[int, typer.Option(help="batch size", rich_help_panel=TRAINING)] = 32,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate", rich_help_panel=TRAINING)] = 1e-3,
    patience: Annotated[int, typer.Option(help="epochs without validation improvement before stopping", rich_help_panel=TRAINING)] = 15,
    seed: Seed = 0,
) -> None:
    """Train a Keras head on cached features; writes head.keras, metrics.json and plots."""
    with user_errors():
        export_available()
        from edgeft.transfer import HeadConfig, load_features, train_head

        report = train_head(load_features(features), out, HeadConfig(arch, hidden, dropout, epochs, batch, learning_rate, patience, seed))
        scores = "; ".join(f"{split} " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if k != "n") for split, m in report["metrics"].items())
        say(f"wrote {out / 'head.keras'} ({report['task']}, {report['epochs_run']} epochs): {scores}")


@app.command(rich_help_panel="Transfer learning")
def finetune(
    backbone: Annotated[str, typer.Argument(help="the backbone the head was trained on (as given to export)")],
    dataset: Annotated[str, typer.Argument(help="class-folder root, or a driving_log.csv (or its folder); local or a URI")],
    head: Annotated[Path, typer.Option(help="head.keras from `edgeft train-head`")],
    out: Annotated[Path, typer.Option(help="folder for backbone.keras, head.keras, finetune.json")] = Path("runs/finetune"),
    weights: Weights = "imagenet",
    cut: Cut = None,
    pooling: Pooling = "avg",
    input_size: InputSize = None,
    preprocess: Preprocess = None,
    trust_h5: TrustH5 = False,
    unfreeze: Annotated[int, typer.Option(help="train the last N weighted layers of the backbone", rich_help_panel=TRAINING)] = 0,
    from_layer: Annotated[Optional[str], typer.Option(help="or train every layer from this one on (e.g. mixed9)", rich_help_panel=TRAINING)] = None,
    epochs: Annotated[int, typer.Option(help="maximum epochs", rich_help_panel=TRAINING)] = 10,
    batch: Annotated[int, typer.Option(help="batch size", rich_help_panel=TRAINING)] = 16,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (keep it low)", rich_help_panel=TRAINING)] = 1e-5,
    val: Val = 0.15,
    test: Test = 0.15,
    seed: Seed = 0,
    augment: Augment = "",
    cameras: Cameras = "center,left,right",
    correction: Correction = 0.2,
    truth_topic: TruthTopic = None,
    truth_field: TruthField = None,
    sync_tolerance: SyncTolerance = None,
    incomplete: Incomplete = "run",
) -> None:
    """Fine-tune the top of the backbone together with a trained head, at a low learning rate."""
    with user_errors():
        export_available()
        from edgeft.export import BackboneRequest, parse_input_size
        from edgeft.transfer import FinetuneConfig, finetune_summary, plan_dataset
        from edgeft.transfer import finetune as run_finetune

        request = BackboneRequest(backbone, weights, cut, pooling, parse_input_size(input_size) if input_size else None,
                                  preprocess, head, trust_h5, seed)
        bag = bag_options(truth_topic, truth_field, sync_tolerance, incomplete, None, None)
        plan = plan_dataset(location(dataset), val, test, seed, names(augment), names(cameras), correction, bag)
        record = run_finetune(request, plan, out, FinetuneConfig(unfreeze, from_layer, epochs, batch, learning_rate, seed=seed))
        for line in finetune_summary(record, out, pooling, bool(plan.classes)):
            say(line)
