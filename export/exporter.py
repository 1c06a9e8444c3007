"""`edgeft export`: backbone (+ head) -> tf2onnx -> parity proof -> bundle, in that order.

Cheap checks (names, files, destination) run before TensorFlow builds anything, so a typo
fails in a second, not after a minute of conversion. Each step reports its seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from edgeft.runtime.bundle import Bundle, sha256_bytes, sha256_file
from edgeft.runtime.engine import Engine, EngineConfig
from edgeft.runtime.manifest import HeadInfo, InputSpec, Manifest, OutputSpec, Proof, mirrored_metadata
from edgeft.runtime.proof import PROOF_FILE, THRESHOLDS, check_thresholds, proof_bytes

from .backbones import PREPROCESS_MODES
from .errors import ExportError
from .keras_model import BackboneRequest, KerasModel, build_keras_model, is_model_file
from .package import refuse_existing, write_bundle

TASKS = ("auto", "regression", "classification")
LOWEST_OPSET = 13  # the ops keras.applications backbones convert to
PROOF_HOLDOUT = 8  # frames held out from INT8 calibration that travel with the bundle


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
    top: bool = False  # keep a keras.applications classifier (include_top) with the ImageNet class names

    @property
    def keeps_classifier(self) -> bool:
        """--top, or a model file exported as what it is (labels or a task named, no separate head)."""
        own = is_model_file(self.backbone) and self.head is None and (self.labels is not None or self.task != "auto")
        return self.top or own

    @property
    def request(self) -> BackboneRequest:
        return BackboneRequest(self.backbone, self.weights, self.cut, self.pooling, self.input_size, self.preprocess,
                               self.head, self.trust_h5, self.seed, self.keeps_classifier)


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    seconds: dict[str, float] = field(default_factory=dict)  # per step: build, convert, parity, int8, fp16, write


class StepTimer:
    """Say each step as it starts and keep its seconds, as Ultralytics' exporter reports them."""

    def __init__(self, say: Callable[[str], None]):
        self.say, self.seconds = say, {}

    @contextlib.contextmanager
    def __call__(self, name: str, message: str) -> Iterator[None]:
        self.say(message)
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start


def default_name(config: ExportConfig) -> str:
    base = Path(config.backbone).stem if is_model_file(config.backbone) else config.backbone
    parts = [base, config.cut] if config.cut else [base]
    parts += ["top"] if config.top else []
    parts += ["int8"] if config.int8 is not None else []
    parts += ["fp16"] if config.fp16 is not None else []
    return re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower())


def export_bundle(config: ExportConfig, say: Callable[[str], None] = lambda _: None) -> ExportResult:
    labels, labels_from = precheck(config)
    dest = config.models_dir / (config.name or default_name(config))
    refuse_existing(dest, config.force)
    step = StepTimer(say)
    with step("build", "building the Keras model"):
        model = build_keras_model(config.request)
        check_opset(config.opset)
        manifest, cam = _plan_manifest(dest, config, model, labels, labels_from)
    with step("convert", f"converting with tf2onnx (opset {config.opset})"):
        from . import build
        from .convert import to_onnx

        size = model.size
        serve = build.serve_function(model.features, model.head, model.backbone.preprocess, *size, config.batch, cam)
        model_bytes = to_onnx(serve, config.opset, mirrored_metadata(manifest)).SerializeToString()
        manifest = dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes))
    with step("parity", "proving parity: Keras vs onnxruntime on random frames and real photos"):
        manifest, probes, reference = _prove_parity(model_bytes, manifest, model, cam, config)
    holdout = np.zeros(len(probes), bool)  # which probes were held out from INT8 calibration
    if config.int8 is not None:
        with step("int8", f"quantizing to INT8, calibrated on {config.int8.calib}"):
            from .quantize import quantize

            model_bytes, quantization, held_out, held_reference = quantize(model_bytes, manifest, config.int8)
            manifest = dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes), quantization=quantization)
            probes = np.concatenate([probes, held_out[:PROOF_HOLDOUT]])
            reference = {k: np.concatenate([v, held_reference[k][:PROOF_HOLDOUT]]) for k, v in reference.items()}
            holdout = np.concatenate([holdout, np.ones(len(probes) - len(holdout), bool)])
    if config.fp16 is not None:
        with step("fp16", "converting to FP16 and checking it against FP32"):
            from .fp16 import convert

            model_bytes, half = convert(model_bytes, manifest, probes, config.fp16)
            manifest = dataclasses.replace(manifest, model_sha256=sha256_bytes(model_bytes), fp16=half)
    with step("write", f"writing {dest}"):
        proof = proof_bytes(probes, reference, holdout)
        manifest = dataclasses.replace(manifest, proof=Proof(PROOF_FILE, sha256_bytes(proof), len(probes), int(holdout.sum()),
                                                             _thresholds(config)))
        write_bundle(dest, model_bytes, manifest, config.force, {PROOF_FILE: proof})
    return ExportResult(dest, manifest, step.seconds)


def _thresholds(config: ExportConfig) -> dict[str, float]:
    """What on-device verification holds each precision to: export's own bars where it set them."""
    chosen = {**THRESHOLDS, "fp32_max_rel": config.tolerance}
    if config.int8 is not None:
        chosen.update(int8_min_cosine=config.int8.min_cosine, min_top1=config.int8.min_top1)
    if config.fp16 is not None:
        chosen.update(fp16_min_cosine=config.fp16.min_cosine)
    return chosen


def _plan_manifest(dest: Path, config: ExportConfig, model: KerasModel, labels: list[str], labels_from: str | None
                   ) -> tuple[Manifest, np.ndarray | None]:
    """The manifest of the graph about to be converted (its hash is filled in after), and the
    class-activation kernel when --cam asks for one."""
    from . import build

    head = model.head
    task = build.infer_task(head, config.task) if head is not None else "features"
    if config.cam and head is None:
        raise ExportError("--cam needs --head: the maps weight the features by the head's class weights")
    cam = build.cam_kernel(head) if config.cam else None
    outputs = [OutputSpec("features", (config.batch, *model.features.output.shape[1:]), "features")]
    if head is not None:
        outputs += [OutputSpec(name, (config.batch, *tensor.shape[1:]), "prediction")
                    for name, tensor in zip(build.head_outputs(head), head.outputs)]
    if cam is not None:
        outputs.append(OutputSpec("cam", (config.batch, *model.features.output.shape[1:3], cam.shape[1]), "cam"))
    if task == "classification" and labels and outputs[1].shape[-1] != len(labels):
        raise ExportError(f"--labels has {len(labels)} labels but the {'classifier' if model.classifier_split else 'head'} "
                          f"predicts {outputs[1].shape[-1]} classes")
    extra = _finetune_record(config)
    if model.classifier_split:
        extra["classifier"] = {"kept": "include_top" if config.top else "the model file's own", "split_after": model.classifier_split,
                               "labels": labels_from}
    manifest = Manifest(
        name=dest.name, task=task, input=InputSpec("image", *model.size, config.batch), outputs=tuple(outputs),  # type: ignore[arg-type]
        backbone=model.backbone, weights=model.weights, model_sha256="", opset=config.opset, parity=(),
        parity_tolerance=config.tolerance, versions=_versions(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        head=HeadInfo(str(config.head), sha256_file(config.head)) if config.head else None,
        labels=tuple(labels), extra=extra,
    )
    return manifest, cam


def _prove_parity(model_bytes: bytes, manifest: Manifest, model: KerasModel, cam: np.ndarray | None,
                  config: ExportConfig) -> tuple[Manifest, np.ndarray, dict[str, np.ndarray]]:
    """Keras (through its own preprocess_input) vs the runtime's Engine (raw uint8) on noise and
    real photos; above the tolerance nothing is written."""
    from . import build
    from .verify import failures, measure_parity, probe_frames

    engine = Engine(Bundle(Path(manifest.name), manifest, model_bytes), EngineConfig(device="cpu"))
    reference = _keras_reference(model, build.head_outputs(model.head) if model.head else [], cam)
    probes = probe_frames(*model.size, config.seed)
    parity, outputs = measure_parity(engine, reference, probes)
    del engine  # its session would sit beside the INT8 / FP16 checks' sessions
    bad = failures(parity, config.tolerance)
    if bad:
        raise ExportError(f"parity check failed (tolerance {config.tolerance:g}): {'; '.join(bad)}; no bundle written")
    return dataclasses.replace(manifest, parity=parity), probes, outputs


def _keras_reference(model: KerasModel, head_names: list[str], cam: np.ndarray | None):
    """Keras forward pass on Keras-preprocessed probes, keyed like the ONNX outputs."""
    prep = model.keras_preprocess()

    def run(probes: np.ndarray) -> dict[str, np.ndarray]:
        feats = np.asarray(model.features(prep(probes), training=False))
        result = {"features": feats}
        if model.head is not None:
            preds = model.head(feats, training=False)
            result.update(zip(head_names, map(np.asarray, preds if isinstance(preds, (list, tuple)) else [preds])))
        if cam is not None:
            result["cam"] = np.einsum("nhwc,ck->nhwk", feats, cam)
        return result

    return run


def _finetune_record(config: ExportConfig) -> dict:
    """A backbone file written by `edgeft finetune` carries finetune.json: which layers were tuned."""
    record = Path(config.backbone).parent / "finetune.json" if is_model_file(config.backbone) else None
    return {"finetune": json.loads(record.read_text())} if record and record.is_file() else {}


def precheck(config: ExportConfig) -> tuple[list[str], str | None]:
    """Everything that can be checked before TensorFlow loads; returns the labels and where they came from."""
    if is_model_file(config.backbone) and config.preprocess is None:
        raise ExportError(
            f"--preprocess is required for a model file: how does '{config.backbone}' expect its input "
            f"scaled? one of {', '.join(PREPROCESS_MODES)}"
        )
    if not is_model_file(config.backbone):
        from .backbones import resolve_backbone

        resolve_backbone(config.backbone)  # a typo fails here, with suggestions
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
    _check_classifier(config)
    if config.labels is not None and not config.keeps_classifier and config.head is None:
        raise ExportError("--labels needs --head (labels name the head's classes), --top for the ImageNet classifier, "
                          "or a .keras classifier file")
    if config.int8 is not None and config.fp16 is not None:
        raise ExportError("--int8 and --fp16 exclude each other: INT8 is for CPUs, FP16 for GPUs")
    check_thresholds(_thresholds(config), "the bundle's verification bars", ExportError)  # what the runtime would refuse to load
    if config.labels:
        return _read_labels(config.labels), str(config.labels)
    if config.top:
        from .imagenet import imagenet_labels

        return imagenet_labels()
    return [], None


def _check_classifier(config: ExportConfig) -> None:
    if not config.top:
        return
    if is_model_file(config.backbone):
        raise ExportError("--top keeps a keras.applications classifier; a .keras classifier is exported as one with --labels "
                          "or --task")
    clashes = [flag for flag, on in (("--head", config.head is not None), ("--cut", config.cut is not None),
                                     ("--pooling", config.pooling != "avg"), ("--cam", config.cam)) if on]
    if clashes:
        raise ExportError(f"--top keeps the backbone's own classifier and pooling: drop {', '.join(clashes)}")


def check_opset(opset: int) -> None:
    """Between LOWEST_OPSET and the highest tf2onnx converts to, and one onnxruntime loads."""
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from tf2onnx.constants import OPSET_TO_IR_VERSION

    highest = max(OPSET_TO_IR_VERSION)
    if not LOWEST_OPSET <= opset <= highest:
        raise ExportError(f"--opset {opset} is not supported: tf2onnx {version('tf2onnx')} converts to opsets "
                          f"{LOWEST_OPSET}..{highest} (default 17)")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    probe = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "opset", [x],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
                              opset_imports=[helper.make_opsetid("", opset)], ir_version=OPSET_TO_IR_VERSION[opset])
    try:
        ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - onnxruntime's own exception classes
        raise ExportError(f"--opset {opset} is not supported by onnxruntime {ort.__version__}") from None


def _read_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise ExportError(f"labels file '{path}' does not exist")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise ExportError(f"labels file '{path}' is empty")
    return labels


def _versions() -> dict[str, str]:
    found = {}
    for package in ("edgeft", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
