"""`edgeft extract`: run a bundle (onnxruntime, not Keras) over a planned dataset into shards.

Layout: `features.json` (bundle hash, task, classes, split settings), `items.csv` (one row per
feature row: image, label, split, augmentation) and `shard-NNNNN.npy` of `rows_per_shard` rows
each, written whole. `--resume` recomputes only missing shards, in the same batches, so the
result equals an uninterrupted run bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeft.runtime import Engine
from edgeft.runtime.errors import EdgeftError
from edgeft.runtime.sinks import FEATURES_META, atomic_write, npy_bytes
from edgeft.runtime.sources.images import read_bgr

from .datasets import Item, Plan, read_items

ITEMS_FILE = "items.csv"


@dataclass(frozen=True)
class ExtractConfig:
    rows_per_shard: int = 256
    batch: int = 16
    resume: bool = False


@dataclass
class FeatureSet:
    """Features loaded back with their labels and splits (rows that failed to read are dropped)."""

    x: np.ndarray
    labels: list[str]
    splits: np.ndarray
    meta: dict
    dropped: int = 0

    def split(self, name: str) -> np.ndarray:
        return self.splits == name


def extract(engine: Engine, plan: Plan, out: Path, settings: dict, config: ExtractConfig = ExtractConfig(),
            progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Fill `out` with features of every planned item; returns the number of unreadable images."""
    if engine.manifest.output("features") is None:
        raise EdgeftError("the bundle has no features output")
    meta = {
        "bundle": engine.manifest.name, "model_sha256": engine.manifest.model_sha256,
        "backbone": engine.manifest.backbone.name, "backbone_identity": backbone_identity(engine.manifest), "output": "features",
        "shape": list(engine.manifest.output("features").shape[1:]), "dtype": "float32",
        "task": plan.task, "classes": list(plan.classes), "rows_per_shard": config.rows_per_shard,
        "rows": len(plan.items), "skipped_files": plan.skipped, **settings,
    }
    done = _prepare_folder(out, plan, meta, config)
    unreadable = 0
    for start in range(done, len(plan.items), config.rows_per_shard):
        chunk = plan.items[start : start + config.rows_per_shard]
        rows = []
        for b in range(0, len(chunk), config.batch):
            images = [load_item_image(item) for item in chunk[b : b + config.batch]]
            good = [i for i, img in enumerate(images) if img is not None]
            unreadable += len(images) - len(good)
            feats = np.full((len(images), *meta["shape"]), np.nan, np.float32)
            if good:
                feats[good] = engine.predict([images[i] for i in good])["features"]
            rows.append(feats)
        atomic_write(out / f"shard-{start // config.rows_per_shard:05d}.npy", npy_bytes(np.concatenate(rows)))
        progress(start + len(chunk), len(plan.items))
    return unreadable


def backbone_identity(manifest) -> dict:
    """What makes two bundles' features interchangeable: same backbone, cut, pooling,
    preprocessing, input size and weight tensors. A head is only valid on its own."""
    b = manifest.backbone
    return {"backbone": b.name, "cut": b.cut, "pooling": b.pooling, "preprocess": b.preprocess,
            "input": [manifest.input.height, manifest.input.width], "weights_tensors_sha256": manifest.weights.tensors_sha256}


def _prepare_folder(out: Path, plan: Plan, meta: dict, config: ExtractConfig) -> int:
    """Create the folder, or check a resumable one matches; return rows already extracted."""
    if out.exists() and any(out.iterdir()):
        if not config.resume:
            raise EdgeftError(f"'{out}' already holds features: pass --resume to continue it, or pick a new folder")
        old = json.loads((out / FEATURES_META).read_text()) if (out / FEATURES_META).is_file() else {}
        if old != meta or read_items(out / ITEMS_FILE) != plan.items:
            raise EdgeftError(f"cannot resume '{out}': it was started with another bundle, dataset or settings")
        shards = sorted(out.glob("shard-*.npy"))
        return sum(len(np.load(s, mmap_mode="r")) for s in shards)
    out.mkdir(parents=True, exist_ok=True)
    plan.write(out / ITEMS_FILE)
    atomic_write(out / FEATURES_META, (json.dumps(meta, indent=2) + "\n").encode())
    return 0


def load_item_image(item: Item) -> np.ndarray | None:
    image = read_bgr(Path(item.path))
    if image is None:
        return None
    if item.flip:
        image = cv2.flip(image, 1)
    if item.brightness != 1.0:
        image = cv2.convertScaleAbs(image, alpha=item.brightness)
    return image


def load_features(folder: Path) -> FeatureSet:
    if not (folder / FEATURES_META).is_file():
        raise EdgeftError(f"'{folder}' is not a features folder (no {FEATURES_META}); run `edgeft extract` first")
    meta = json.loads((folder / FEATURES_META).read_text())
    if not (folder / ITEMS_FILE).is_file():
        raise EdgeftError(f"'{folder}' has features but no labels (extracted from a plain --source): extract a labelled dataset")
    items = read_items(folder / ITEMS_FILE)
    shards = sorted(folder.glob("shard-*.npy"))
    x = np.concatenate([np.load(s) for s in shards]) if shards else np.zeros((0, *meta["shape"]), np.float32)
    if len(x) != len(items):
        raise EdgeftError(f"'{folder}' holds {len(x)} of {len(items)} feature rows: finish it with `edgeft extract --resume`")
    ok = ~np.isnan(x.reshape(len(x), -1)).any(axis=1)
    return FeatureSet(x[ok], [i.label for i, keep in zip(items, ok) if keep],
                      np.array([i.split for i, keep in zip(items, ok) if keep]), meta, int((~ok).sum()))
