"""`edgeft compare`: which backbone for this data on this device, by feature quality and speed.

Each candidate (a backbone with its weights, input size and precision) is exported once - a
bundle named by a hash of everything that makes it, so a second run, or another dataset, finds
it - its features extracted once with `extract` (resumable; on Ray too), then scored by a linear
probe, k-NN and LogME on one seeded split, and benched on the device in a fresh process (so
that its peak memory is its own). Driving logs and bags are split by time, class folders
stratified by class.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeft.runtime import EdgeftError, Engine, count_flops, cpu_info, load_bundle, sha256_file
from edgeft.runtime.sources import BagOptions, is_bag

from .datasets import Plan, is_driving_log, plan_dataset
from .extract import ExtractConfig, FeatureSet, extract, extraction_settings, load_features
from .logme import logme
from .probes import Targets, check_splits, knn_probe, linear_probe
from .ranking import Row, rank, recommend

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
ENTRY = re.compile(r"(?P<name>[^@:]+)(?:@(?P<size>\d+(?:[xX]\d+)?))?(?::(?P<weights>.+))?")
CALIBRATION_FRAMES, HOLDOUT_FRAMES = 64, 32


@dataclass(frozen=True)
class Candidate:
    backbone: str  # keras.applications name or a model file
    weights: str  # imagenet | none | PATH (model files carry their own)
    input_size: tuple[int, int] | None
    precision: str = "fp32"

    @property
    def label(self) -> str:
        from edgeft.export import is_model_file, resolve_backbone

        own = is_model_file(self.backbone)
        text = Path(self.backbone).name if own else resolve_backbone(self.backbone).name
        text += f"@{self.input_size[0]}" + (f"x{self.input_size[1]}" if self.input_size[1] != self.input_size[0] else "") \
            if self.input_size else ""
        text += "" if own or self.weights == "imagenet" else f":{Path(self.weights).stem if '/' in self.weights else self.weights}"
        return text + ("" if self.precision == "fp32" else f" {self.precision}")


def parse_candidates(text: str, weights: str, input_size: tuple[int, int] | None, precisions: tuple[str, ...]) -> list[Candidate]:
    """'InceptionV3,MobileNetV2@96:none,mine.keras' x precisions; `weights` and `input_size` are
    the defaults of entries that name none."""
    from edgeft.export import is_model_file, parse_input_size, resolve_backbone

    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise EdgeftError(f"--precision takes {', '.join(PRECISIONS)} (comma separated), not '{','.join(unknown)}'")
    found = []
    for entry in (part.strip() for part in text.split(",") if part.strip()):
        match = ENTRY.fullmatch(entry)
        if not match:
            raise EdgeftError(f"backbone '{entry}' is not NAME[@SIZE][:WEIGHTS] (e.g. MobileNetV2@96:none)")
        name = match["name"].strip()
        if not is_model_file(name):
            resolve_backbone(name)  # a typo fails now, before anything is exported
        elif not Path(name).is_file():
            raise EdgeftError(f"backbone model file '{name}' does not exist")
        size = parse_input_size(match["size"]) if match["size"] else input_size
        chosen = match["weights"] or weights
        if not is_model_file(name) and chosen not in ("imagenet", "none") and not Path(chosen).is_file():
            raise EdgeftError(f"weights file '{chosen}' of '{entry}' does not exist (use imagenet, none or a PATH)")
        found += [Candidate(name, chosen, size, p) for p in precisions]
    if not found:
        raise EdgeftError("--backbones names no backbone")
    labels = [c.label for c in found]
    if len(set(labels)) != len(labels):
        raise EdgeftError(f"--backbones names the same candidate twice: {sorted({x for x in labels if labels.count(x) > 1})}")
    return found


@dataclass(frozen=True)
class CompareConfig:
    dataset: Path
    out: Path
    candidates: tuple[Candidate, ...]
    models_dir: Path | None = None  # where bundles are cached (default OUT/bundles)
    preprocess: str | None = None  # for model files
    pooling: str = "avg"
    seed: int = 0
    val: float = 0.2
    test: float = 0.2
    cameras: tuple[str, ...] = ("center", "left", "right")
    correction: float = 0.2
    bag: BagOptions = BagOptions()
    device: str = "auto"
    batch: int = 16
    runs: int = 30  # timed batch-1 runs per candidate
    resamples: int = 1000  # bootstrap resamples of the test split
    ray: object | None = None  # a RayConfig: extract on a cluster

    @property
    def bundles(self) -> Path:
        return self.models_dir or self.out / "bundles"

    @property
    def by_time(self) -> bool:
        return is_driving_log(self.dataset) or is_bag(str(self.dataset))


@dataclass
class Comparison:
    dataset: str
    task: str
    metric: str
    split: dict
    device: str
    cpu: str
    rows: list[Row]
    recommendation: str
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: export, extract, probes, bench


Say = Callable[[str], None]
Progress = Callable[[str, int], object]  # (label, total) -> a context manager whose value has update(done, total)


def plan_comparison(config: CompareConfig) -> Plan:
    """The dataset planned and checked (three splits, compatible options): before anything is exported."""
    if config.ray is not None and any(c.precision in ("bf16", "fp16") for c in config.candidates):
        raise EdgeftError("--ray extracts with each bundle's own precision: compare bf16 / fp16 without --ray")
    plan = plan_dataset(config.dataset, config.val, config.test, config.seed, (), config.cameras, config.correction, config.bag,
                        config.by_time)
    rows = describe_split(plan, config.by_time)["rows"]
    if any(rows[s] == 0 for s in ("train", "val", "test")):
        raise EdgeftError(f"compare needs train, validation and test rows ({', '.join(f'{k} {v}' for k, v in rows.items())}): "
                          "give --val and --test above 0, or a pre-split dataset with all three")
    return plan


def compare(config: CompareConfig, say: Say = lambda _: None, progress: Progress | None = None, plan: Plan | None = None) -> Comparison:
    plan = plan or plan_comparison(config)
    split = describe_split(plan, config.by_time, (Path(str(config.dataset)) / "train").is_dir())
    seconds = dict.fromkeys(("export", "extract", "probes", "bench"), 0.0)
    rows = []
    for candidate in config.candidates:
        spent: dict[str, float] = {}
        with _timed(spent, "export"):
            bundle = cached_bundle(candidate, config, plan, say)
        with _timed(spent, "extract"):
            folder, features = cached_features(bundle, candidate, config, plan, say, progress)
        with _timed(spent, "probes"):
            row = score(candidate, bundle, folder, features, plan)
        with _timed(spent, "bench"):
            say(f"benching {candidate.label} on {config.device}")
            row.bench = bench_in_process(bundle, config.device, candidate, config.runs)
        row.seconds = spent
        rows.append(row)
        for phase, value in spent.items():
            seconds[phase] += value
    ranked = rank(rows, config.resamples, config.seed)
    return Comparison(str(config.dataset), plan.task, ranked[0].probe.metric, split, config.device, cpu_info().describe(), ranked,
                      recommend(ranked), seconds)


@contextlib.contextmanager
def _timed(into: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - start


def describe_split(plan: Plan, by_time: bool, presplit: bool = False) -> dict:
    """What was trained, tuned and tested on: contiguous blocks (in log order) or stratified counts."""
    splits = np.array([item.split for item in plan.items])
    rows = {s: int((splits == s).sum()) for s in ("train", "val", "test")}
    if by_time:
        blocks = {s: [int(np.flatnonzero(splits == s)[0]), int(np.flatnonzero(splits == s)[-1])] for s in rows if rows[s]}
        return {"kind": "time: contiguous blocks in log order (train, then val, then test)", "rows": rows, "items": blocks}
    per_class = {c: {s: sum(1 for i in plan.items if i.label == c and i.split == s) for s in rows} for c in plan.classes}
    return {"kind": "stratified by class" if not presplit else "the dataset's own train/val/test folders", "rows": rows,
            "classes": per_class}


def request_key(candidate: Candidate, config: CompareConfig, calibration: str | None) -> str:
    """Everything that makes the bundle; model and weights files by their content."""
    from edgeft.export import is_model_file

    own = is_model_file(candidate.backbone)
    weights = candidate.weights if candidate.weights in ("imagenet", "none") or own else sha256_file(Path(candidate.weights))
    record = {"backbone": sha256_file(Path(candidate.backbone)) if own else candidate.backbone.lower(),
              "weights": None if own else weights, "input": candidate.input_size, "pooling": config.pooling,
              "preprocess": config.preprocess if own else None, "seed": config.seed, "int8": calibration}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def cached_bundle(candidate: Candidate, config: CompareConfig, plan: Plan, say: Say) -> Path:
    """The candidate's bundle: found under its request hash, or exported (INT8: calibrated on training images)."""
    from edgeft.export import ExportConfig, Int8Config, export_bundle, is_model_file

    calibration, fingerprint = calibration_source(plan, config) if candidate.precision == "int8" else (None, None)
    key = request_key(candidate, config, fingerprint)
    name = re.sub(r"[^a-z0-9._-]+", "-", candidate.label.split(" ")[0].lower()) + ("-int8" if calibration else "") + f"-{key[:10]}"
    dest = config.bundles / name
    if dest.is_dir():  # bundles are written whole (renamed into place) or not at all
        say(f"{candidate.label}: cached bundle {dest}")
        return dest
    say(f"{candidate.label}: exporting to {dest}")
    own = is_model_file(candidate.backbone)
    int8 = Int8Config(calibration, CALIBRATION_FRAMES, HOLDOUT_FRAMES) if calibration else None
    export_bundle(ExportConfig(candidate.backbone, weights=candidate.weights if not own else "imagenet", pooling=config.pooling,
                               input_size=candidate.input_size, preprocess=config.preprocess if own else None, name=name,
                               models_dir=config.bundles, seed=config.seed, int8=int8))
    return dest


def calibration_source(plan: Plan, config: CompareConfig) -> tuple[str, str]:
    """INT8 calibration frames from the training split: a seeded sample linked into one folder
    (frames inside a bag are calibrated on from the bag itself); and a fingerprint of them."""
    paths = sorted({item.path for item in plan.items if item.split == "train"})
    if not Path(paths[0]).is_file():
        return str(config.dataset), str(config.dataset)
    rng = np.random.default_rng(config.seed)
    chosen = [paths[i] for i in sorted(rng.choice(len(paths), min(len(paths), CALIBRATION_FRAMES + HOLDOUT_FRAMES), replace=False))]
    fingerprint = sha256_text("\n".join(str(Path(p).resolve()) for p in chosen))
    folder = config.out.resolve() / "calibration" / fingerprint[:10]
    if not folder.is_dir():
        tmp = folder.with_name(folder.name + ".partial")
        tmp.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(chosen):
            link = tmp / f"{i:05d}{Path(path).suffix.lower()}"
            link.unlink(missing_ok=True)
            link.symlink_to(Path(path).resolve())
        tmp.rename(folder)
    return str(folder), fingerprint


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cached_features(bundle: Path, candidate: Candidate, config: CompareConfig, plan: Plan, say: Say,
                    progress: Progress | None) -> tuple[Path, FeatureSet]:
    """Features of every planned item through this bundle at this precision, extracted once (an
    interrupted extraction resumes where it stopped)."""
    settings = extraction_settings(config.dataset, config.val, config.test, config.seed, (), config.cameras, config.correction,
                                   config.bag, config.by_time)
    precision = candidate.precision if candidate.precision in ("bf16", "fp16") else None
    tag = sha256_text(json.dumps({**settings, "device": config.device, "precision": precision}, sort_keys=True))[:10]
    folder = config.out / "features" / f"{bundle.name}-{candidate.precision}-{tag}"
    extract_config = ExtractConfig(batch=config.batch, resume=True)
    try:
        features = load_features(folder)
        say(f"{candidate.label}: cached features {folder}")
        return folder, features
    except EdgeftError:
        pass  # not there yet, or unfinished: extract (resuming)
    say(f"{candidate.label}: extracting features into {folder}")
    bar = progress(f"extract {candidate.label}", len(plan.items)) if progress else None
    with bar if bar is not None else _Quiet() as shown:
        engine = Engine.load(bundle, device=config.device, precision=precision)  # on Ray too: every actor runs its choice
        if config.ray is not None:
            from .ray_extract import extract_on_ray

            extract_on_ray(engine, plan, folder, settings, extract_config, config.ray, shown.update)
        else:
            extract(engine, plan, folder, settings, extract_config, shown.update)
        del engine
    return folder, load_features(folder)


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, done: int, total: int) -> None:
        return None


def targets_of(features: FeatureSet, plan: Plan) -> Targets:
    regression = plan.task == "regression"
    if regression:
        y = np.array([float(v) for v in features.labels])
    else:
        index = {c: i for i, c in enumerate(plan.classes)}
        y = np.array([index[v] for v in features.labels])
    return Targets(y, features.split("train"), features.split("val"), features.split("test"), regression)


def score(candidate: Candidate, bundle: Path, folder: Path, features: FeatureSet, plan: Plan) -> Row:
    """Linear probe, k-NN and LogME (on train + val: the rows a head would learn from) of one candidate,
    on one BLAS thread: the probes' matrices are small, and two threads that wait on each other
    made a fit 8x slower on a shared 2-core machine (RESULTS.md)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _score(candidate, bundle, folder, features, plan)


def _score(candidate: Candidate, bundle: Path, folder: Path, features: FeatureSet, plan: Plan) -> Row:
    targets = targets_of(features, plan)
    check_splits(targets)
    x = features.x.reshape(len(features.x), -1)
    learn = targets.train | targets.val
    manifest = load_bundle(bundle).manifest
    model = bundle / "model.onnx"
    return Row(candidate.label, {"backbone": candidate.backbone, "weights": manifest.weights.source, "precision": candidate.precision,
                                 "input": f"{manifest.input.height}x{manifest.input.width}"},
               str(bundle.resolve()), str(folder.resolve()), int(x.shape[1]), onnx_parameters(model), count_flops(model),
               sum(p.stat().st_size for p in bundle.iterdir() if p.is_file()) / 1e6,
               linear_probe(x, targets), knn_probe(x, targets), logme(x[learn], targets.y[learn], targets.regression), {})


def onnx_parameters(model: Path) -> int:
    """Weights in the graph: the elements of its initializers (BatchNorm already folded in)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return int(sum(int(np.prod(t.dims)) for t in graph.initializer if len(t.dims) > 0))


BENCH_CODE = """
import json, sys
from dataclasses import asdict
from edgeft.runtime.bench import bench
result = bench(sys.argv[1], sys.argv[2], runs=int(sys.argv[3]), batches=(1, 8), with_cold_start=False, precision=sys.argv[4] or None)
print(json.dumps(asdict(result)))
"""


def bench_in_process(bundle: Path, device: str, candidate: Candidate, runs: int) -> dict:
    """`bench` in a fresh interpreter: its peak memory is this bundle's alone, and no idle session
    of another candidate spins beside it."""
    precision = candidate.precision if candidate.precision in ("bf16", "fp16") else ""
    proc = subprocess.run([sys.executable, "-c", BENCH_CODE, str(bundle), device, str(runs), precision],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise EdgeftError(f"benching {candidate.label} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: result[k] for k in ("provider", "precision", "latency_ms", "throughput_fps", "peak_rss_mb")}

