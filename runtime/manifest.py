"""The bundle contract: `manifest.json` schema, parsing and validation.

The runtime owns this schema; the export stage writes it through these same dataclasses,
so the two can never drift apart. Parsing is strict: an unknown schema version, a missing
field or a wrong type is refused with a message naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import BundleError

SCHEMA_VERSION = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.txt"

Task = Literal["features", "regression", "classification"]
Preprocess = Literal["tf", "caffe", "torch", "unit", "none"]


@dataclass(frozen=True)
class InputSpec:
    """What the graph consumes: uint8 NHWC frames in `color_order` at height x width."""

    name: str
    height: int
    width: int
    batch: int | None = None  # None: dynamic batch
    channels: int = 3
    dtype: str = "uint8"
    layout: str = "NHWC"
    color_order: str = "RGB"


@dataclass(frozen=True)
class OutputSpec:
    """One named graph output; `shape[0]` is the batch axis (None when dynamic)."""

    name: str
    shape: tuple[int | None, ...]
    role: Literal["features", "prediction", "cam"]  # cam: class activation maps, N x h x w x classes


@dataclass(frozen=True)
class BackboneInfo:
    name: str  # keras.applications name, or the file name of the user's own model
    source: Literal["keras.applications", "file"]
    cut: str | None
    pooling: Literal["avg", "max", "none"]
    preprocess: Preprocess


@dataclass(frozen=True)
class WeightsInfo:
    source: str  # "imagenet", "none", or the weights file path as given
    file_sha256: str | None  # sha256 of the weights file, when there is one
    tensors_sha256: str  # sha256 of the backbone's weight tensors as exported
    loaded_by: str  # how they got there: keras download, keras load_weights, in order, random init


@dataclass(frozen=True)
class ParityRecord:
    """Keras vs onnxruntime on the same uint8 probes; rel = max_abs / max |keras|."""

    output: str
    max_abs: float
    max_rel: float
    probes: int


@dataclass(frozen=True)
class HeadInfo:
    source: str
    sha256: str


@dataclass(frozen=True)
class Quantization:
    """An INT8 bundle: how it was calibrated and how closely it agrees with its FP32 model."""

    method: str
    calibration_source: str
    calibration_frames: int
    holdout_frames: int
    agreement: dict[str, float]  # feature cosine mean/min, prediction error, top-1 agreement
    target: str | None = None  # the CPU it was quantized for: "avx2 (7-bit weights)" | "vnni (8-bit weights)"


@dataclass(frozen=True)
class HalfPrecision:
    """An FP16 bundle (for GPUs): how it was converted and how closely it agrees with its FP32 model."""

    method: str
    checked_on: str  # the device that ran the FP16 graph for `agreement`: cuda, or cpu (no GPU at export)
    probe_frames: int
    agreement: dict[str, float]  # the FP16 graph vs FP32 (on a CPU: weight rounding only)
    storage_emulation: dict[str, float]  # FP32 graph with FP16 weights and FP16-rounded activations vs FP32


@dataclass(frozen=True)
class Proof:
    """The parity probes and the FP32 reference outputs on them (proof.npz), hashed, with the
    thresholds an on-device verification holds each precision to."""

    file: str
    sha256: str
    probes: int
    holdout: int  # probes held out from the INT8 calibration source (0 for FP32 / FP16 bundles)
    thresholds: dict[str, float]


@dataclass(frozen=True)
class Manifest:
    name: str
    task: Task
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    backbone: BackboneInfo
    weights: WeightsInfo
    model_sha256: str
    opset: int
    parity: tuple[ParityRecord, ...]
    parity_tolerance: float
    versions: dict[str, str]
    created: str
    head: HeadInfo | None = None
    labels: tuple[str, ...] = ()
    quantization: Quantization | None = None  # INT8; None and fp16 None: FP32, the model the parity proof checked
    fp16: HalfPrecision | None = None
    proof: Proof | None = None  # bundles exported before the proof travelled with them have none
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        return "int8" if self.quantization else "fp16" if self.fp16 else "fp32"

    @property
    def identity(self) -> dict[str, Any]:
        """The backbone identity of this bundle's features (see `backbone_identity`)."""
        return backbone_identity(self.backbone, (self.input.height, self.input.width), self.weights.tensors_sha256)

    def output(self, role: str) -> OutputSpec | None:
        """The first output with this role, or None."""
        return next((o for o in self.outputs if o.role == role), None)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: str = MANIFEST_FILE) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BundleError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise BundleError(f"{origin}: expected a JSON object at the top level")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{origin}: schema_version {version!r} is not supported "
                f"(this edgeft reads version {SCHEMA_VERSION}); re-export the bundle"
            )
        manifest = _parse(cls, data, origin)
        _check_consistency(manifest, origin)
        return manifest


# The manifest fields mirrored into model.onnx's metadata_props, so the file alone still says what
# it is, and a model file that does not belong to its manifest is caught on load. Bundles written
# before `outputs` and `identity` were mirrored carry only the required keys.
METADATA_REQUIRED = ("edgeft.schema_version", "edgeft.task", "edgeft.input")


def mirrored_metadata(manifest: Manifest) -> dict[str, str]:
    i = manifest.input
    return {
        "edgeft.schema_version": str(manifest.schema_version),
        "edgeft.task": manifest.task,
        "edgeft.backbone": json.dumps(dataclasses.asdict(manifest.backbone)),
        "edgeft.input": f"{i.dtype} {i.layout} {i.color_order} {i.height}x{i.width}" + (f" batch {i.batch}" if i.batch else ""),
        "edgeft.outputs": json.dumps([[o.name, o.role, list(o.shape)] for o in manifest.outputs]),
        "edgeft.identity": json.dumps(manifest.identity, sort_keys=True),
        "edgeft.labels": json.dumps(list(manifest.labels)),
    }


def metadata_mismatches(manifest: Manifest, found: dict[str, str]) -> list[str]:
    """The mirrored keys on which `found` (a model's metadata_props) and the manifest disagree."""
    expected = mirrored_metadata(manifest)
    missing = [key for key in METADATA_REQUIRED if key not in found]
    if missing:
        return [f"{key} missing" for key in missing]
    return [key for key, value in expected.items() if key in found and found[key] != value]


def backbone_identity(backbone: BackboneInfo, size: tuple[int, int], weights_tensors_sha256: str) -> dict[str, Any]:
    """What makes two bundles' features interchangeable: same backbone, cut, pooling,
    preprocessing, input size and weight tensors. A head trained on one is valid on the other."""
    return {"backbone": backbone.name, "cut": backbone.cut, "pooling": backbone.pooling, "preprocess": backbone.preprocess,
            "input": list(size), "weights_tensors_sha256": weights_tensors_sha256}


def _parse(tp: Any, value: Any, where: str) -> Any:
    """Convert JSON `value` into type `tp`, raising BundleError naming the path on mismatch."""
    if dataclasses.is_dataclass(tp):
        return _parse_dataclass(tp, value, where)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _parse_union(typing.get_args(tp), value, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise BundleError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(_parse(item, v, f"{where}[{i}]") for i, v in enumerate(_expect(list, value, where, "a list")))
    if origin is dict:
        item = typing.get_args(tp)[1]
        return {k: _parse(item, v, f"{where}.{k}") for k, v in _expect(dict, value, where, "an object").items()}
    return _parse_scalar(tp, value, where)


def _expect(kind: type, value: Any, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise BundleError(f"{where}: expected {what}")
    return value


def _parse_dataclass(tp: Any, value: Any, where: str) -> Any:
    _expect(dict, value, where, "an object")
    hints = typing.get_type_hints(tp)
    kwargs = {}
    for f in dataclasses.fields(tp):
        if f.name in value:
            kwargs[f.name] = _parse(hints[f.name], value[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BundleError(f"{where}: missing field '{f.name}'")
    return tp(**kwargs)


def _parse_union(options: tuple, value: Any, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    present = [o for o in options if o is not type(None)]
    if len(present) == 1:  # X | None: X's own error, which names the field inside it
        return _parse(present[0], value, where)
    for option in present:
        try:
            return _parse(option, value, where)
        except BundleError:
            continue
    raise BundleError(f"{where}: {value!r} is not a valid {' | '.join(getattr(o, '__name__', str(o)) for o in options)}")


def _parse_scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    if tp is Any:
        return value
    raise BundleError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {type(value).__name__}")


def _check_consistency(m: Manifest, origin: str) -> None:
    if m.input.dtype != "uint8" or m.input.layout != "NHWC" or m.input.channels != 3:
        raise BundleError(f"{origin}: input must be uint8 NHWC with 3 channels")
    if m.input.color_order not in ("RGB", "BGR"):
        raise BundleError(f"{origin}: input.color_order must be RGB or BGR")
    if min(m.input.height, m.input.width) < 1 or (m.input.batch is not None and m.input.batch < 1):
        raise BundleError(f"{origin}: input height, width and batch must be positive")
    if m.quantization is not None and m.fp16 is not None:
        raise BundleError(f"{origin}: a bundle is INT8 (quantization) or FP16 (fp16), not both")
    if not m.outputs or m.output("features") is None:
        raise BundleError(f"{origin}: outputs must include one with role 'features'")
    if len({o.name for o in m.outputs}) != len(m.outputs):
        raise BundleError(f"{origin}: output names must be unique")
    if m.proof is not None:
        _check_proof(m.proof, origin)
    if m.task == "classification" and m.labels:
        classes = m.output("prediction").shape[-1] if m.output("prediction") else None
        if classes != len(m.labels):
            raise BundleError(f"{origin}: {len(m.labels)} labels for {classes} classes")


def _check_proof(proof: Proof, origin: str) -> None:
    """The probe file is a file of the bundle (a plain name, as model.onnx is: never a path
    out of it), and its bars are within the bounds a verification may be held to."""
    from .proof import check_thresholds

    name = proof.file
    if not name or name in (".", "..") or "/" in name or "\\" in name or ":" in name:
        raise BundleError(f"{origin}: proof.file {name!r} must be the name of a file inside the bundle")
    check_thresholds(proof.thresholds, f"{origin}: proof.thresholds")
