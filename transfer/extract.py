"""`edgeft extract`: run a bundle (onnxruntime, not Keras) over a planned dataset into shards.

The folder has the one feature-folder format (`edgeft.runtime.sinks.features`): its index keys
each row by the planned item (image, label, split, camera, augmentation), and shard N holds
items N x rows_per_shard onward. `--resume` recomputes exactly the shards that are missing or
incomplete, wherever they are, in the same batches, so the result equals an uninterrupted run
bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, astuple, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from edgeft.runtime import EdgeftError, Engine, Manifest, SinkOptions, read_features
from edgeft.runtime.sinks import ShardWriter, features_meta, shard_name
from edgeft.runtime.sources import BagOptions, FrameReader, check_mode, fit_for, is_bag

from .datasets import Item, Plan, is_driving_log

ITEM_COLUMNS = [f.name for f in fields(Item)]


@dataclass(frozen=True)
class ExtractConfig:
    rows_per_shard: int = 256
    batch: int = 16
    resume: bool = False
    force: bool = False  # replace an existing features folder
    decode: str = "reduced"  # JPEG frames at the model's size ("reduced") or decoded whole, then resized ("full")

    def __post_init__(self) -> None:
        if self.rows_per_shard < 1 or self.batch < 1:
            raise EdgeftError("--rows-per-shard and --batch must be at least 1")
        check_mode(self.decode)


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


Shard = tuple[int, list[Item]]  # a shard's number and its planned items
Featurize = Callable[[list[Shard]], Iterator[tuple[int, np.ndarray, int]]]  # -> (number, rows, unreadable), in order


def extract(engine: Engine, plan: Plan, out: Path, settings: dict, config: ExtractConfig = ExtractConfig(),
            progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Fill `out` with features of every planned item, in this process; returns the number of unreadable images."""
    return write_features(engine.manifest, engine.computed_by, plan, out, settings, config,
                          local_features(engine, config.batch, config.decode), progress)


def write_features(manifest: Manifest, computed_by: dict, plan: Plan, out: Path, settings: dict, config: ExtractConfig,
                   featurize: Featurize, progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """The plan's shards that are missing or incomplete, computed by `featurize` (this process, or
    a Ray cluster, both with the engine `computed_by` names) and written whole; returns the number
    of unreadable images."""
    if manifest.output("features") is None:
        raise EdgeftError("the bundle has no features output")
    meta = features_meta(manifest, ITEM_COLUMNS, config.rows_per_shard, computed_by, task=plan.task, classes=list(plan.classes),
                         rows=len(plan.items), skipped_files=plan.skipped, **settings)
    writer = ShardWriter(out, meta, SinkOptions(resume=config.resume, force=config.force), what="extract --out")
    try:
        _check_resumable(writer, plan, config.rows_per_shard)
        shards = [(number, plan.items[start : start + config.rows_per_shard])
                  for number, start in enumerate(range(0, len(plan.items), config.rows_per_shard))]
        pending = [(n, items) for n, items in shards if not writer.shard_complete(n, len(items))]
        done, unreadable = len(plan.items) - sum(len(items) for _, items in pending), 0
        progress(done, len(plan.items))
        keys = dict(pending)
        for number, rows, missing in featurize(pending):
            writer.write_shard(number, rows, [_key(item) for item in keys[number]])
            unreadable += missing
            done += len(rows)
            progress(done, len(plan.items))
    finally:
        writer.close()
    if plan.items and unreadable == len(plan.items):
        raise EdgeftError(f"none of the {len(plan.items)} planned images could be read (first: {plan.items[0].path})")
    return unreadable


def local_features(engine: Engine, batch: int, decode: str = "reduced") -> Featurize:
    def featurize(shards: list[Shard]) -> Iterator[tuple[int, np.ndarray, int]]:
        shape = engine.manifest.output("features").shape[1:]
        with FrameReader(fit_for(engine.manifest.input, decode)) as frames:
            for number, items in shards:
                yield number, *item_features(engine, items, batch, shape, frames)

    return featurize


def extraction_settings(dataset: Path, val: float, test: float, seed: int, augment: tuple[str, ...],
                        cameras: tuple[str, ...], correction: float, bag: BagOptions = BagOptions(), by_time: bool = False,
                        decode: str = "reduced") -> dict:
    """The settings recorded with the features (a resumed run must match them)."""
    settings = {"dataset": str(dataset), "val": val, "test": test, "seed": seed, "augment": list(augment), "decode": decode}
    if is_driving_log(dataset) or is_bag(str(dataset)):
        settings.update(cameras=list(cameras), correction=correction)
        if by_time:
            settings["split"] = "time"  # contiguous blocks; the default (shuffled rows) records nothing, as before
    if is_bag(str(dataset)):
        settings.update(bag=asdict(bag))
    return settings


def extraction_report(plan: Plan, out: Path, unreadable: int) -> str:
    splits = {s: sum(1 for i in plan.items if i.split == s) for s in ("train", "val", "test")}
    line = f"wrote {out}: {len(plan.items)} rows ({', '.join(f'{k} {v}' for k, v in splits.items())})"
    if plan.classes:
        line += f", {len(plan.classes)} classes"
    if plan.skipped:
        line += f"; skipped {plan.skipped} non-image files"
    if unreadable:
        line += f"; {unreadable} unreadable images left out"
    return line


def _key(item: Item) -> list[str]:
    return [str(value) for value in astuple(item)]


def _check_resumable(writer: ShardWriter, plan: Plan, rows_per_shard: int) -> None:
    """Every row the folder already indexes must be the item this plan puts there."""
    for number in range(-(-len(plan.items) // rows_per_shard)):
        start = number * rows_per_shard
        for entry in writer.indexed.get(shard_name(number), []):
            position = start + entry.row
            if position >= len(plan.items) or [entry.key.get(c) for c in ITEM_COLUMNS] != _key(plan.items[position]):
                raise EdgeftError(f"cannot resume '{writer.folder}': it was started with another bundle, dataset or settings "
                                  f"(row {position} differs)")


def item_features(engine: Engine, chunk: list[Item], batch: int, shape: tuple, frames: FrameReader) -> tuple[np.ndarray, int]:
    """Features of `chunk`, NaN rows for images that cannot be read, and how many those were."""
    rows, missing = [], 0
    for b in range(0, len(chunk), batch):
        images = load_item_images(chunk[b : b + batch], frames)
        good = [i for i, img in enumerate(images) if img is not None]
        missing += len(images) - len(good)
        feats = np.full((len(images), *shape), np.nan, np.float32)
        if good:
            feats[good] = engine.predict([images[i] for i in good])["features"]
        rows.append(feats)
    return np.concatenate(rows), missing


def load_item_images(items: list[Item], frames: FrameReader) -> list[np.ndarray | None]:
    """The items' images, augmented as planned: files, recorded frames and video frames by
    reference (`FrameReader`, a batch at a time); None for one that cannot be read."""
    return [_augmented_image(image, item) for image, item in zip(frames.read([item.path for item in items]), items)]


def _augmented_image(image: np.ndarray | None, item: Item) -> np.ndarray | None:
    if image is None:
        return None
    if item.flip:
        image = cv2.flip(image, 1)
    if item.brightness != 1.0:
        image = cv2.convertScaleAbs(image, alpha=item.brightness)
    return image


def load_features(folder: Path) -> FeatureSet:
    """A labelled features folder, as written by `extract` (either format)."""
    meta, keys, x = read_features(folder)
    if keys and "label" not in keys[0] or meta.get("task") not in ("classification", "regression"):
        raise EdgeftError(f"'{folder}' has features but no labels (extracted from a plain --source): extract a labelled dataset")
    if len(x) != meta["rows"]:
        raise EdgeftError(f"'{folder}' holds {len(x)} of {meta['rows']} feature rows: finish it with `edgeft extract --resume`")
    ok = ~np.isnan(x.reshape(len(x), -1)).any(axis=1)
    return FeatureSet(x[ok], [k["label"] for k, keep in zip(keys, ok) if keep],
                      np.array([k["split"] for k, keep in zip(keys, ok) if keep]), meta, int((~ok).sum()))
