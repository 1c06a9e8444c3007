"""Labelled datasets for transfer learning, planned before any image is read.

A plan is the ordered list of items (image, label, camera, split, augmentation) that
`extract` turns into features. Planning is deterministic for a seed, so an interrupted
extraction can resume and a training run can be reproduced from the features' index alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeft.runtime import EdgeftError, first_line
from edgeft.runtime.sources import (IMAGE_SUFFIXES, SIDE_SIGN, BagOptions, SourceOptions, check_not_bare_bag_folder, is_bag, natural_key,
                                    read_bag_log, read_log, resolve_image)

SPLITS = ("train", "val", "test")
AUGMENTATIONS = ("flip", "brightness")


@dataclass(frozen=True)
class Item:
    path: str
    label: str  # class name, or steering as text (regression)
    split: str
    camera: str = ""
    flip: bool = False  # mirrored copy (steering negated)
    brightness: float = 1.0  # multiplicative brightness jitter


@dataclass(frozen=True)
class Plan:
    task: str  # classification | regression
    items: list[Item]
    classes: tuple[str, ...] = ()
    skipped: int = 0  # files that are not images


PRESPLIT = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def is_driving_log(path: Path) -> bool:
    return path.suffix == ".csv" or (path / "driving_log.csv").is_file()


def plan_dataset(path: Path, val: float, test: float, seed: int, augment: tuple[str, ...],
                 cameras: tuple[str, ...], correction: float, bag: BagOptions = BagOptions(), by_time: bool = False) -> Plan:
    """A driving log (or its folder) or a ROS bag for steering, otherwise class folders; local,
    or in object storage (a `location` URI: the same walk, through universal-pathlib). `by_time`
    splits a log or bag into contiguous blocks (train, then val, then test); class folders are
    always split stratified."""
    try:
        return _plan(path, val, test, seed, augment, cameras, correction, bag, by_time)
    except Exception as exc:  # noqa: BLE001 - each storage back end raises its own types (credentials, access, network)
        if isinstance(exc, EdgeftError) or isinstance(path, Path):
            raise
        raise EdgeftError(f"cannot read the dataset at '{path}': {first_line(exc)}") from None


def _plan(path: Path, val: float, test: float, seed: int, augment: tuple[str, ...],
          cameras: tuple[str, ...], correction: float, bag: BagOptions, by_time: bool) -> Plan:
    if is_bag(str(path)):
        return plan_bag(path, cameras, correction, val, test, seed, augment, bag, by_time)
    if is_driving_log(path):
        return plan_driving_log(path, cameras, correction, val, test, seed, augment, by_time)
    if isinstance(path, Path) and path.is_dir():
        check_not_bare_bag_folder(path)
    if by_time:
        raise EdgeftError("a split by time is for driving logs and bags: class folders are split stratified by class")
    return plan_class_folders(path, val, test, seed, augment)


def plan_class_folders(root: Path, val: float, test: float, seed: int, augment: tuple[str, ...]) -> Plan:
    """Keras `image_dataset_from_directory` layout: one sub-folder per class, label = folder name.
    A root holding `train/` (and `val/` or `validation/`, `test/`) of class folders keeps that split."""
    if not root.is_dir():
        raise EdgeftError(f"dataset folder '{root}' does not exist")
    if (root / "train").is_dir():
        return _plan_presplit(root, seed, augment)
    per_class, skipped = _class_images(root, minimum=2, why="to be split")
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    for name, images in per_class.items():  # stratified: every class in every split it can fill
        for path, split in zip(images, _splits(len(images), val, test, rng)):
            items.append(Item(str(path), name, split))
    return Plan("classification", _augmented(items, augment, rng, regression=False), tuple(per_class), skipped)


def _class_images(root: Path, minimum: int, why: str) -> tuple[dict[str, list[Path]], int]:
    """Class name -> its image files (natural order), and how many non-image files were skipped."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise EdgeftError(f"'{root}' needs at least two class sub-folders, found {len(classes)}")
    per_class: dict[str, list[Path]] = {}
    skipped = 0
    for name in classes:
        files = sorted((p for p in (root / name).rglob("*") if p.is_file()), key=natural_key)
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped += len(files) - len(images)
        if len(images) < minimum:
            raise EdgeftError(f"class '{name}' in '{root}' has {len(images)} image(s): each class needs at least {minimum} {why}")
        per_class[name] = images
    return per_class, skipped


def _plan_presplit(root: Path, seed: int, augment: tuple[str, ...]) -> Plan:
    parts = {PRESPLIT[p.name]: _class_images(p, minimum=1, why="(or remove the folder)")
             for p in sorted(root.iterdir()) if p.name in PRESPLIT}
    classes = tuple(parts["train"][0])
    for split, (per_class, _) in parts.items():
        if not set(per_class) <= set(classes):
            raise EdgeftError(f"'{root}/{split}' has classes {sorted(set(per_class) - set(classes))} that train/ lacks")
    items = [Item(str(path), name, split) for split, (per_class, _) in parts.items() for name, paths in per_class.items() for path in paths]
    return Plan("classification", _augmented(items, augment, np.random.default_rng(seed), regression=False),
                classes, sum(skipped for _, skipped in parts.values()))


def plan_driving_log(log: Path, cameras: tuple[str, ...], correction: float, val: float, test: float,
                     seed: int, augment: tuple[str, ...], by_time: bool = False) -> Plan:
    """Steering regression from a driving_log.csv; see `_plan_rows`."""
    if log.is_dir():
        log = log / "driving_log.csv"
    rows = [({c: str(resolve_image(p, log.parent)) for c, p in row.paths.items() if p}, row.steering) for row in read_log(log)]
    return _plan_rows(rows, f"driving log '{log}'", cameras, correction, val, test, seed, augment, by_time)


def plan_bag(bag: Path, cameras: tuple[str, ...], correction: float, val: float, test: float, seed: int,
             augment: tuple[str, ...], options: BagOptions = BagOptions(), by_time: bool = False) -> Plan:
    """Steering regression from a ROS bag read as a driving log: one row per synchronised tick with
    truth; its frames are named by reference into the bag (`bag#topic@record-time`)."""
    rows = read_bag_log(str(bag), SourceOptions(bag=options))
    if not rows:
        raise EdgeftError(f"bag '{bag}' has no frame with ground truth to label it: none falls inside the truth topic's time range")
    present = {camera for paths, _ in rows for camera in paths}
    chosen = tuple(c for c in cameras if c in present) or tuple(sorted(present))
    return _plan_rows(rows, f"bag '{bag}'", chosen, correction, val, test, seed, augment, by_time)


def _plan_rows(rows: list[tuple[dict[str, str], float]], where: str, cameras: tuple[str, ...], correction: float,
               val: float, test: float, seed: int, augment: tuple[str, ...], by_time: bool) -> Plan:
    """Side cameras become extra samples with steering +- correction. Splits are by row, so the
    views of one moment never straddle train and test; `by_time`, by blocks of rows, so that
    neighbouring frames (near-duplicates) do not either."""
    rng = np.random.default_rng(seed)
    items = []
    for (paths, steering), split in zip(rows, _splits(len(rows), val, test, rng, by_time)):
        for camera in cameras:
            if paths.get(camera):
                label = steering + SIDE_SIGN.get(camera, 0.0) * correction
                items.append(Item(paths[camera], f"{label:.6f}", split, camera))
    if not items:
        raise EdgeftError(f"{where} has no images for cameras {', '.join(cameras)}")
    return Plan("regression", _augmented(items, augment, rng, regression=True))


def _splits(count: int, val: float, test: float, rng: np.random.Generator, by_time: bool = False) -> list[str]:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise EdgeftError("--val and --test must be fractions in [0, 1) adding up to less than 1")
    n_val = int(round(count * val)) if val else 0
    n_test = int(round(count * test)) if test else 0
    if count - n_val - n_test < 1:
        n_val = n_test = 0
    order = rng.permutation(count) if not by_time else np.arange(count - n_val - n_test, count)
    split = np.array(["train"] * count, dtype=object)
    split[order[:n_val]] = "val"
    split[order[n_val : n_val + n_test]] = "test"
    return list(split)


def _augmented(items: list[Item], augment: tuple[str, ...], rng: np.random.Generator, regression: bool) -> list[Item]:
    """Extra, seeded copies of training items: mirrored (steering negated) and/or re-lit."""
    unknown = set(augment) - set(AUGMENTATIONS)
    if unknown:
        raise EdgeftError(f"unknown augmentation {', '.join(sorted(unknown))}: choose from {', '.join(AUGMENTATIONS)}")
    extra = []
    for item in (i for i in items if i.split == "train"):
        if "flip" in augment:
            label = f"{-float(item.label):.6f}" if regression else item.label
            extra.append(Item(item.path, label, "train", item.camera, flip=True))
        if "brightness" in augment:
            extra.append(Item(item.path, item.label, "train", item.camera, brightness=float(rng.uniform(0.6, 1.4))))
    return items + extra
