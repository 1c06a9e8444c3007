"""`edgeft export`: backbone (+ head) -> tf2onnx -> parity proof -> bundle, in that order.

Cheap checks (names, files, destination) run before TensorFlow builds anything, so a typo
fails in a second, not after a minute of conversion.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from edgeft.runtime.bundle import Bundle, sha256_bytes, sha256_file
from edgeft.runtime.engine import Engine, EngineConfig
from edgeft.runtime.manifest import (
    SCHEMA_VERSION,
    BackboneInfo,
    HeadInfo,
    InputSpec,
    Manifest,
    OutputSpec,
    WeightsInfo,
)

from .backbones import PREPROCESS_MODES, BackboneSpec, resolve_backbone
from .errors import ExportError
from .package import refuse_existing, write_bundle

TASKS = ("auto", "regression", "classification")


@dataclass(frozen=True)
class ExportConfig:
    backbone: str  # keras.applications name, or a .keras / .h5 model file
    weights: str = "imagenet"  # imagenet | none | PATH (ignored for model files: they carry theirs)
    cut: str | None = None
    pooling: str = "avg"
    input_size: tuple[int, int] | None = None  # (height, width)
    preprocess: str | None = None  # required for model files; keras.applications know their own
    head: Path | None = None
    labels: Path | None = None
    task: str = "auto"
    batch: int | None = None  # None: dynamic batch
    opset: int = 17
    name: str | None = None
    models_dir: Path = Path("models")
    force: bool = False
    tolerance: float = 1e-4
    trust_h5: bool = False
    seed: int = 0
    cam: bool = False  # add class activation maps as a graph output (GAP + dense heads)
    int8: object | None = None  # an Int8Config: quantize after the FP32 parity proof
    fp16: object | None = None  # an Fp16Config: convert for GPUs after the FP32 parity proof


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    notes: list[str] = field(default_factory=list)


def parse_input_size(text: str) -> tuple[int, int]:
    """'299' -> (299, 299); '224x320' -> (224, 320) as height x width."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise ExportError(f"input size '{text}' is not N or HxW (e.g. 299 or 224x320)")
    height = int(match.group(1))
    return height, int(match.group(2) or height)


def default_name(config: ExportConfig) -> str:
    base = Path(config.backbone).stem if _is_file(config.backbone) else config.backbone
    parts = [base, config.cut] if config.cut else [base]
    parts += ["int8"] if config.int8 is not None else []
    parts += ["fp16"] if config.fp16 is not None else []
    return re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower())


def export_bundle(config: ExportConfig, say: Callable[[str], None] = lambda _: None) -> ExportResult:
    spec, labels = precheck(config)
    dest = config.models_dir / (config.name or default_name(config))
    refuse_existing(dest, config.force)

    say("building the Keras model")
    from . import build  # TensorFlow from here on

    full, weights, preprocess, (height, width) = load_backbone(config, spec)
    features = build.truncate(full, config.cut, config.pooling)
    head = build.load_keras_file(config.head, "head") if config.head else None
    if head is not None:
        _check_head_provenance(config, spec, weights, preprocess, (height, width))
        build.check_head(head, features)
    task = build.infer_task(head, config.task) if head is not None else "features"
    if config.cam and head is None:
        raise ExportError("--cam needs --head: the maps weight the features by the head's class weights")
    cam = build.cam_kernel(head) if config.cam else None
    outputs = _output_specs(features, head, config.batch)
    if cam is not None:
        outputs.append(OutputSpec("cam", (config.batch, *features.output.shape[1:3], cam.shape[1]), "cam"))
    if task == "classification" and labels and outputs[1].shape[-1] != len(labels):
        raise ExportError(f"--labels has {len(labels)} labels but the head predicts {outputs[1].shape[-1]} classes")

    say(f"converting with tf2onnx (opset {config.opset})")
    from .convert import to_onnx

    serve = build.serve_function(features, head, preprocess, height, width, config.batch, cam)
    backbone = BackboneInfo(spec.name if spec else Path(config.backbone).name,
                            "keras.applications" if spec else "file", config.cut, config.pooling, preprocess)
    metadata = {"edgeft.schema_version": str(SCHEMA_VERSION), "edgeft.task": task,
                "edgeft.backbone": json.dumps(dataclasses.asdict(backbone)),
                "edgeft.input": f"uint8 NHWC RGB {height}x{width}", "edgeft.labels": json.dumps(labels)}
    model_bytes = to_onnx(serve, config.opset, metadata).SerializeToString()

    manifest = Manifest(
        name=dest.name,
        task=task,  # type: ignore[arg-type]
        input=InputSpec("image", height, width, config.batch),
        outputs=tuple(outputs),
        backbone=backbone,
        weights=weights,
        model_sha256=sha256_bytes(model_bytes),
        opset=config.opset,
        parity=(),
        parity_tolerance=config.tolerance,
        versions=_versions(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        head=HeadInfo(str(config.head), sha256_file(config.head)) if config.head else None,
        labels=tuple(labels),
        extra=_finetune_record(config),
    )

    say("proving parity: Keras vs onnxruntime on random frames and real photos")
    from .verify import failures, measure_parity, probe_frames

    engine = Engine(Bundle(dest, manifest, model_bytes), EngineConfig(device="cpu"))
    reference = _keras_reference(features, head, build.head_outputs(head) if head else [], spec, preprocess, cam)
    probes = probe_frames(height, width, config.seed)
    parity = measure_parity(engine, reference, probes)
    del engine  # its session would sit beside the INT8 / FP16 checks' sessions
    bad = failures(parity, config.tolerance)
    if bad:
        raise ExportError(f"parity check failed (tolerance {config.tolerance:g}): {'; '.join(bad)}; no bundle written")
    manifest = dataclasses.replace(manifest, parity=parity)
    if config.int8 is not None:
        say(f"quantizing to INT8, calibrated on {config.int8.calib}")
        from .quantize import quantize

        model_bytes, quantization = quantize(model_bytes, manifest, config.int8)
        manifest = dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes), quantization=quantization)
    if config.fp16 is not None:
        say("converting to FP16 and checking it against FP32")
        from .fp16 import convert

        model_bytes, half = convert(model_bytes, manifest, probes, config.fp16)
        manifest = dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes), fp16=half)

    write_bundle(dest, model_bytes, manifest, config.force)
    return ExportResult(dest, manifest)


def backbone_identity(config: ExportConfig, spec, weights: WeightsInfo, preprocess: str, size) -> dict:
    """What makes features interchangeable; matches edgeft.extract.backbone_identity for a bundle."""
    return {"backbone": spec.name if spec else Path(config.backbone).name, "cut": config.cut, "pooling": config.pooling,
            "preprocess": preprocess, "input": list(size), "weights_tensors_sha256": weights.tensors_sha256}


def _check_head_provenance(config: ExportConfig, spec, weights: WeightsInfo, preprocess: str, size) -> None:
    """A head trained by `edgeft train-head` or `finetune` records the backbone its features came
    from (head.json beside it); fusing it onto any other backbone would silently be wrong."""
    meta_path = config.head.parent / "head.json"
    if not meta_path.is_file():
        return
    trained_on = json.loads(meta_path.read_text()).get("backbone_identity")
    if not trained_on:
        return
    this = backbone_identity(config, spec, weights, preprocess, size)
    differs = [k for k in this if this[k] != trained_on.get(k)]
    if differs:
        detail = ", ".join(f"{k} {trained_on.get(k)!s:.16} vs {this[k]!s:.16}" for k in differs)
        raise ExportError(f"head '{config.head}' was trained on features of another backbone ({detail}); "
                          "export the backbone it was trained on, or retrain the head")


def _finetune_record(config: ExportConfig) -> dict:
    """A backbone file written by `edgeft finetune` carries finetune.json: which layers were tuned."""
    record = Path(config.backbone).parent / "finetune.json" if _is_file(config.backbone) else None
    return {"finetune": json.loads(record.read_text())} if record and record.is_file() else {}


def _is_file(backbone: str) -> bool:
    return backbone.endswith((".keras", ".h5")) or "/" in backbone


def precheck(config: ExportConfig) -> tuple[BackboneSpec | None, list[str]]:
    """Everything that can be checked before TensorFlow loads."""
    spec = None if _is_file(config.backbone) else resolve_backbone(config.backbone)
    if spec is None and config.preprocess is None:
        raise ExportError(
            f"--preprocess is required for a model file: how does '{config.backbone}' expect its input "
            f"scaled? one of {', '.join(PREPROCESS_MODES)}"
        )
    if config.preprocess is not None and config.preprocess not in PREPROCESS_MODES:
        raise ExportError(f"unknown --preprocess '{config.preprocess}': one of {', '.join(PREPROCESS_MODES)}")
    if config.task not in TASKS:
        raise ExportError(f"unknown --task '{config.task}': one of {', '.join(TASKS)}")
    if config.batch is not None and config.batch < 1:
        raise ExportError("--batch must be a positive number of frames")
    if config.head is not None and not config.head.is_file():
        raise ExportError(f"head file '{config.head}' does not exist")
    if config.cam and config.pooling != "none":
        raise ExportError("--cam needs --pooling none: class activation maps are drawn from the feature map")
    if config.labels is not None and config.head is None:
        raise ExportError("--labels needs --head: labels name the head's classes")
    if config.int8 is not None and config.fp16 is not None:
        raise ExportError("--int8 and --fp16 exclude each other: INT8 is for CPUs, FP16 for GPUs")
    labels = _read_labels(config.labels) if config.labels else []
    return spec, labels


def _read_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise ExportError(f"labels file '{path}' does not exist")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise ExportError(f"labels file '{path}' is empty")
    return labels


def load_backbone(config: ExportConfig, spec: BackboneSpec | None):
    """The full backbone with its weights, its preprocess mode and the (H, W) it will take."""
    from .build import load_keras_file
    from .weights import build_with_weights, tensors_sha256

    if spec is None:
        path = Path(config.backbone)
        model = load_keras_file(path, "backbone model", config.trust_h5)
        fixed = tuple(model.input_shape[1:3])
        size = config.input_size or fixed
        if None in size:
            raise ExportError(f"'{path}' takes any input size: pass --input-size")
        if None not in fixed and tuple(size) != fixed:
            raise ExportError(f"'{path}' takes {fixed[0]}x{fixed[1]} input, not {size[0]}x{size[1]}")
        weights = WeightsInfo(str(path), sha256_file(path), tensors_sha256(model), "stored in the model file")
        return model, weights, config.preprocess, size
    height, width = config.input_size or (spec.default_size, spec.default_size)

    def construct(weights: str | None):
        try:
            return spec.constructor()(include_top=False, weights=weights, input_shape=(height, width, 3))
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ExportError(f"{spec.name} cannot be built at input size {height}x{width}: {first}") from None

    model, weights = build_with_weights(construct, spec.name, config.weights, config.seed)
    return model, weights, config.preprocess or spec.preprocess, (height, width)


def _output_specs(features, head, batch: int | None) -> list[OutputSpec]:
    from .build import head_outputs

    specs = [OutputSpec("features", (batch, *features.output.shape[1:]), "features")]
    if head is not None:
        for name, tensor in zip(head_outputs(head), head.outputs):
            specs.append(OutputSpec(name, (batch, *tensor.shape[1:]), "prediction"))
    return specs


def _keras_reference(features, head, head_names: list[str], spec: BackboneSpec | None, mode: str, cam=None):
    """Keras forward pass on Keras-preprocessed probes, keyed like the ONNX outputs."""
    from .preprocessing import reference

    prep = reference(mode, spec.official_preprocess() if spec and mode == spec.preprocess else None)

    def run(probes: np.ndarray) -> dict[str, np.ndarray]:
        feats = np.asarray(features(prep(probes), training=False))
        result = {"features": feats}
        if head is not None:
            preds = head(feats, training=False)
            result.update(zip(head_names, map(np.asarray, preds if isinstance(preds, (list, tuple)) else [preds])))
        if cam is not None:
            result["cam"] = np.einsum("nhwc,ck->nhwk", feats, cam)
        return result

    return run


def _versions() -> dict[str, str]:
    found = {}
    for package in ("edgeft", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
