"""`edgeft compare`: rank backbones on the user's data by feature quality x speed on this device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import (MODEL, OUTPUT, Cameras, Correction, Device, End, Force, Incomplete, InputSize, Pooling, Preprocess, RayActors,
                     RayAddress, RayCpusPerActor, Seed, Start, SyncTolerance, Test, TruthField, TruthTopic, Val, Weights, app, bag_options,
                     err, export_available, names, say, stdout, user_errors)
from .display import ProgressBar



@app.command(rich_help_panel="Transfer learning")
def compare(
    dataset: Annotated[str, typer.Argument(help="class-folder root, a driving_log.csv (or its folder), or a ROS bag")],
    backbones: Annotated[str, typer.Option(help="comma separated NAME\\[@SIZE]\\[:WEIGHTS]: keras.applications names or .keras files, "
                                                "e.g. InceptionV3,MobileNetV2@160:none,mine.keras", rich_help_panel=MODEL)],
    out: Annotated[Path, typer.Option(help="folder for compare.json/.csv/.png and the cached features", rich_help_panel=OUTPUT)] = Path("runs/compare"),
    weights: Weights = "imagenet",
    input_size: InputSize = None,
    pooling: Pooling = "avg",
    preprocess: Preprocess = None,
    precision: Annotated[str, typer.Option(help="fp32 | bf16 | fp16 | int8, comma separated: one row per backbone and precision "
                                                "(int8: an INT8 bundle calibrated on training images)", rich_help_panel=MODEL)] = "fp32",
    device: Device = "auto",
    models_dir: Annotated[Optional[Path], typer.Option(help="cache the exported bundles here (default OUT/bundles); share it "
                                                            "between comparisons", rich_help_panel=OUTPUT)] = None,
    val: Val = 0.2,
    test: Test = 0.2,
    seed: Seed = 0,
    cameras: Cameras = "center,left,right",
    correction: Correction = 0.2,
    batch: Annotated[int, typer.Option(help="frames per inference call while extracting")] = 16,
    runs: Annotated[int, typer.Option(help="timed batch-1 runs per candidate")] = 30,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples of the test split")] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="print compare.json instead of the table")] = False,
    force: Force = False,
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
    """Which backbone for this data on this device? Export each once, extract its features once,
    score them (linear probe with a bootstrap CI, k-NN, LogME) and bench them; one table, sorted
    by the probe, ties and the Pareto front marked, and compare.png."""
    with user_errors():
        from edgeft.runtime import EdgeftError
        from edgeft.runtime.sources import is_uri, location

        if min(batch, runs, resamples) < 1:
            raise EdgeftError("--batch, --runs and --resamples must be at least 1")
        from edgeft.export import parse_input_size
        from edgeft.transfer.compare import CompareConfig, compare as run_compare, parse_candidates, plan_comparison
        from edgeft.transfer.compare_report import check_outputs, write_outputs
        from edgeft.transfer.ray_cluster import RayConfig

        _sklearn_available()
        check_outputs(out, force)
        candidates = parse_candidates(backbones, weights, parse_input_size(input_size) if input_size else None, names(precision))
        data = location(dataset)
        config = CompareConfig(
            dataset=data if is_uri(dataset) else data.resolve(),  # cached features are keyed by the dataset's absolute path
            out=out, candidates=tuple(candidates), models_dir=models_dir, preprocess=preprocess, pooling=pooling, seed=seed, val=val,
            test=test, cameras=names(cameras), correction=correction,
            bag=bag_options(truth_topic, truth_field, sync_tolerance, incomplete, start, end), device=device, batch=batch, runs=runs,
            resamples=resamples, ray=RayConfig(ray, ray_actors, ray_cpus_per_actor) if ray is not None else None)
        plan = plan_comparison(config)  # a bad dataset or split fails here, before TensorFlow loads
        export_available()
        result = run_compare(config, say=lambda line: err.print(f"· {line}", style="dim", markup=False, highlight=False),
                             progress=lambda label, total: ProgressBar(err, label, total), plan=plan)
        written = write_outputs(result, out)
        if json_out:
            print(json.dumps(json.loads((out / "compare.json").read_text())))
            return
        (stdout if stdout.is_terminal else Console(width=200)).print(compare_table(result))  # a file or pipe: whole rows
        say(f"recommendation: {result.recommendation}")
        say("wrote " + ", ".join(str(p) for p in written) + " (" + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()) + ")")


def _sklearn_available() -> None:
    from edgeft.runtime import EdgeftError

    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise EdgeftError("compare's probes need scikit-learn: pip install 'edgeft[export]'") from None


def compare_table(result) -> Table:
    split = result.split
    table = Table("#", "candidate", f"probe {result.metric} [95% CI]", "k-NN", "LogME", "dims", "params", "GFLOPs", "MB",
                  "p50 ms", "p90 ms", "b8 fps", "RSS MB", "front",
                  title=f"edgeft compare: {escape(result.dataset)} ({result.task}; split {split['kind']}: "
                        + ", ".join(f"{k} {v}" for k, v in split["rows"].items()) + f")\ndevice {result.device}, CPU: {escape(result.cpu)}",
                  title_justify="left", caption="≈ within the bootstrap CI of the best; ★ on the Pareto front (probe x latency)",
                  caption_justify="left")
    for i, row in enumerate(result.rows, 1):
        low, high = row.interval
        fps = {str(k): v for k, v in row.bench["throughput_fps"].items()}
        table.add_row(str(i), escape(row.label), f"{'≈ ' if row.tied else ''}{row.probe.score:.3f} [{low:.3f}, {high:.3f}]",
                      f"{row.knn.score:.3f}", f"{row.logme.score:.3f}", str(row.dims), f"{row.params / 1e6:.2f} M",
                      f"{row.gflops:.2f}" if row.gflops is not None else "-", f"{row.bundle_mb:.1f}",
                      f"{row.bench['latency_ms']['p50']:.2f}", f"{row.bench['latency_ms']['p90']:.2f}",
                      f"{fps['8']:.1f}" if "8" in fps else "-", f"{row.bench['peak_rss_mb']:.0f}", "★" if row.pareto else "")
    return table
