"""Commands about bundles: which backbones exist, where they can be cut, export, inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from edgeft.runtime import EdgeftError, EngineConfig

from .common import (EXPORT, MODELS_DIR, Cut, Device, InputSize, ModelsDir, Pooling, Precision, Preprocess, Seed, TrustH5, Weights,
                     app, err, export_available, say, stdout, user_errors)
from .display import manifest_table

HEAD, PRECISION = "Head", "Precision"


@app.command(rich_help_panel="Bundles")
def backbones() -> None:
    """List every keras.applications backbone with its input size, preprocessing and size."""
    from edgeft.export import BACKBONES, PREPROCESS_MODES

    table = Table("backbone", "default input", "preprocess", "params (no top)", title="keras.applications backbones")
    for spec in BACKBONES:
        table.add_row(spec.name, f"{spec.default_size}x{spec.default_size}", spec.preprocess, f"{spec.params / 1e6:.1f} M")
    stdout.print(table)
    for mode, meaning in PREPROCESS_MODES.items():
        stdout.print(f"  [bold]{mode}[/]: {meaning}")


@app.command(rich_help_panel="Bundles")
def layers(
    backbone: Annotated[str, typer.Argument(help="keras.applications name or a .keras model file")],
    input_size: InputSize = None,
    trust_h5: TrustH5 = False,
) -> None:
    """List the layers a backbone can be cut at (--cut), with their output shapes."""
    with user_errors():
        export_available()
        from edgeft.export import cut_points

        name, points = cut_points(backbone, input_size, trust_h5)
        table = Table("cut point", "output shape", title=f"{name}: layers every path passes through")
        for point in points:
            table.add_row(point.name, str(point.shape))
        stdout.print(table)


@app.command(rich_help_panel="Bundles")
def export(
    backbone: Annotated[str, typer.Argument(help="keras.applications name (any case) or a .keras model file")],
    weights: Weights = "imagenet",
    cut: Cut = None,
    pooling: Pooling = "avg",
    input_size: InputSize = None,
    preprocess: Preprocess = None,
    trust_h5: TrustH5 = False,
    top: Annotated[bool, typer.Option(help="keep the ImageNet classifier (include_top) with its 1000 class names (from keras-hub)", rich_help_panel=HEAD)] = False,
    head: Annotated[Optional[Path], typer.Option(help="trained Keras head (.keras) to fuse after the features", rich_help_panel=HEAD)] = None,
    labels: Annotated[Optional[Path], typer.Option(help="class names, one per line: of a --head, or of a .keras classifier exported whole", rich_help_panel=HEAD)] = None,
    task: Annotated[str, typer.Option(help="auto | regression | classification (auto: from the final activation); naming one "
                                           "exports a .keras model file whole, its final layers as the head", rich_help_panel=HEAD)] = "auto",
    cam: Annotated[bool, typer.Option(help="add class activation maps as an output (GAP + dense head, --pooling none)", rich_help_panel=HEAD)] = False,
    batch: Annotated[Optional[int], typer.Option(help="static batch size (default: dynamic)", rich_help_panel=EXPORT)] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset", rich_help_panel=EXPORT)] = 17,
    name: Annotated[Optional[str], typer.Option(help="bundle folder name (default: from backbone and cut)", rich_help_panel=EXPORT)] = None,
    models_dir: ModelsDir = MODELS_DIR,
    force: Annotated[bool, typer.Option(help="replace an existing bundle", rich_help_panel=EXPORT)] = False,
    tolerance: Annotated[float, typer.Option(help="max relative Keras-vs-ONNX error per output", rich_help_panel=EXPORT)] = 1e-4,
    seed: Seed = 0,
    int8: Annotated[bool, typer.Option(help="quantize to INT8 (static QDQ, per-channel), calibrated on --calib", rich_help_panel=PRECISION)] = False,
    calib: Annotated[Optional[str], typer.Option(help="INT8 calibration source: driving log, video, image folder or glob", rich_help_panel=PRECISION)] = None,
    calib_frames: Annotated[int, typer.Option(help="frames to calibrate on (as many again + half are needed)", rich_help_panel=PRECISION)] = 64,
    int8_min_cosine: Annotated[float, typer.Option(help="refuse the INT8 bundle below this mean feature cosine vs FP32", rich_help_panel=PRECISION)] = 0.99,
    int8_min_top1: Annotated[float, typer.Option(help="refuse below this top-1 agreement vs FP32 (classifiers)", rich_help_panel=PRECISION)] = 0.95,
    int8_target: Annotated[str, typer.Option(help="auto (this CPU) | avx2 (7-bit weights) | vnni (VNNI/AMX: 8-bit weights)", rich_help_panel=PRECISION)] = "auto",
    fp16: Annotated[bool, typer.Option(help="convert to FP16 for GPUs, checked against FP32 (on a GPU if there is one)", rich_help_panel=PRECISION)] = False,
    fp16_min_cosine: Annotated[float, typer.Option(help="refuse the FP16 bundle below this mean feature cosine vs FP32", rich_help_panel=PRECISION)] = 0.999,
) -> None:
    """Export BACKBONE (+ optional head) to a verified ONNX bundle under models/."""
    with user_errors():
        export_available()
        from edgeft.export import ExportConfig, Fp16Config, Int8Config, export_bundle, parse_input_size

        if int8 != (calib is not None):
            raise EdgeftError("--int8 and --calib go together: INT8 is calibrated on frames from a real source")
        config = ExportConfig(
            backbone=backbone, weights=weights, cut=cut, pooling=pooling, preprocess=preprocess, trust_h5=trust_h5,
            input_size=parse_input_size(input_size) if input_size else None, head=head, labels=labels, task=task,
            batch=batch, opset=opset, name=name, models_dir=models_dir, force=force, tolerance=tolerance, seed=seed, cam=cam, top=top,
            int8=Int8Config(calib, calib_frames, max(8, calib_frames // 2), int8_min_cosine, int8_min_top1, int8_target) if int8 else None,
            fp16=Fp16Config(fp16_min_cosine) if fp16 else None,
        )
        result = export_bundle(config, say=lambda step: err.print(f"· {step}", style="dim", markup=False, highlight=False))
        say(f"wrote {result.path} in {sum(result.seconds.values()):.1f} s ("
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.seconds.items()) + ")")
        _show(result.path)


@app.command(rich_help_panel="Bundles")
def inspect(bundle: Annotated[Path, typer.Argument(help="bundle folder")]) -> None:
    """Print a bundle's manifest, and whether it verifies and loads here (hash, files, metadata, session)."""
    with user_errors():
        _show(bundle)


@app.command(rich_help_panel="Bundles")
def verify(
    bundle: Annotated[Path, typer.Argument(help="bundle folder")],
    device: Device = "auto",
    precision: Precision = None,
    min_cosine: Annotated[Optional[float], typer.Option(help="override the feature-cosine bar of the precision running")] = None,
    max_rel: Annotated[Optional[float], typer.Option(help="override the FP32 max relative error bar")] = None,
) -> None:
    """Re-prove a bundle on this device: its probes through the backend and precision asked for,
    held to the bundle's FP32 reference. A backend that falls short is refused (exit 1)."""
    with user_errors():
        from edgeft.runtime import Engine, load_bundle
        from edgeft.runtime.proof import verify as prove

        engine = Engine(load_bundle(bundle), EngineConfig(device=device, precision=precision))
        if min_cosine is not None and engine.precision == "fp32":
            raise EdgeftError(f"--min-cosine applies to bf16, fp16 and int8; {engine.provider} is held to --max-rel")
        override = {f"{engine.precision}_min_cosine": min_cosine} if min_cosine is not None else {}
        override |= {"fp32_max_rel": max_rel} if max_rel is not None else {}
        say(f"verified: {prove(engine, override).summary()}")  # afresh: never a record of an earlier run


def _show(bundle: Path) -> None:
    """The manifest as a table, then a real load: a bundle whose hash matches may still not run."""
    from edgeft.runtime import Engine, read_manifest
    from edgeft.runtime.verified import recorded

    manifest = read_manifest(bundle)
    checks = [f"{k}: " + ", ".join(f"{m} {v:.6g}" for m, v in r["agreement"].items()) + f" ({'passed' if r['passed'] else 'FAILED'}, "
              f"{r['checked_at']}, {r['cpu']})" for k, r in recorded(manifest.model_sha256).items()]
    try:
        engine = Engine.load(bundle, device="cpu")
    except EdgeftError as exc:
        stdout.print(manifest_table(bundle, manifest, f"NO: {exc}", checks))
        raise EdgeftError(f"bundle '{bundle}' does not load: {exc}") from None
    stdout.print(manifest_table(bundle, manifest, f"yes: every file's sha256 verified, one file, metadata matches, {engine.provider} session",
                                checks))
