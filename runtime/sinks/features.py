"""The one feature-folder format, written by `run --features` and `extract` alike.

    features.json    the bundle's model hash and identity, output shape, dtype, rows per shard,
                     the key columns, and whatever the writer adds (task, classes, split settings)
    index.csv        one line per feature row: its key columns, then `shard` and `row`
    shard-NNNNN.npy  rows x feature shape, float32

A shard appears under its final name only when complete (temp file, fsync, rename), with the
mode any other file gets; its index lines follow in one write. A folder killed at any moment
therefore holds whole shards, and an index that never names a row it lacks.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..manifest import Manifest
from ..results import Result
from .base import LineFile, SinkError, SinkOptions, atomic_write, check_writable_parent, npy_bytes

META_FILE = "features.json"
INDEX_FILE = "index.csv"
LEGACY_ITEMS_FILE = "items.csv"  # extract's plan in folders written before the formats were one
FORMAT = "edgeft-features/2"
RUN_COLUMNS = ["frame", "source", "t_capture", "stamp"]


def shard_name(number: int) -> str:
    return f"shard-{number:05d}.npy"


def features_meta(manifest: Manifest, columns: list[str], rows_per_shard: int, computed_by: dict | None = None,
                  **extra: object) -> dict:
    """What a features folder says of itself. `computed_by` (Engine.computed_by: device, precision,
    backend) is what the numbers depend on beyond the bundle; the CPU they were computed on goes
    beside it as `computed_on`, recorded but not required to match on --resume."""
    output = manifest.output("features")
    meta = {"format": FORMAT, "bundle": manifest.name, "model_sha256": manifest.model_sha256,
            "backbone": manifest.backbone.name, "backbone_identity": manifest.identity, "output": output.name,
            "shape": list(output.shape[1:]), "dtype": "float32", "rows_per_shard": rows_per_shard, "columns": columns, **extra}
    if computed_by is not None:
        from ..cpu import cpu_info

        meta.update(computed_by=dict(computed_by), computed_on=cpu_info().describe())
    return meta


def _check_resumable_meta(folder: Path, old: dict, meta: dict) -> None:
    """A resumed folder continues only the very same computation: never two backends or precisions in one folder."""
    if "computed_by" in old and "computed_by" in meta and old["computed_by"] != meta["computed_by"]:
        was, now = old["computed_by"], meta["computed_by"]
        raise SinkError(f"cannot resume '{folder}': its features were computed with {was['backend']} and this run would use "
                        f"{now['backend']}: pass --device {was['device']} --precision {was['precision']} to continue it, "
                        "or --force to start over")
    ignored = ("computed_by", "computed_on")  # a folder written before they were recorded resumes as before
    changed = sorted(k for k in set(old) | set(meta) if k not in ignored and old.get(k) != meta.get(k))
    if changed:
        raise SinkError(f"cannot resume '{folder}': it was started with another bundle, dataset or settings "
                        f"({', '.join(changed)} differ)")


def check_folder(folder: Path, options: SinkOptions, what: str = "--features") -> None:
    """A new or empty folder; an earlier features folder only with --resume (kept) or --force (replaced)."""
    if folder.exists() and not folder.is_dir():
        raise SinkError(f"{what} '{folder}' is a file: give a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / META_FILE).is_file():
            raise SinkError(f"{what} '{folder}' is not empty and holds no {META_FILE}: pick a new folder (shards are never mixed)")
        if not (options.resume or options.force):
            raise SinkError(f"{what} '{folder}' already holds features: pass --resume to continue it, --force to replace it, "
                            "or pick a new folder")
        foreign = [p.name for p in folder.iterdir() if not _ours(p.name)]
        if options.force and not options.resume and foreign:
            raise SinkError(f"{what} '{folder}' also holds {', '.join(sorted(foreign)[:3])}: --force replaces only a features "
                            "folder; pick a new folder")
    check_writable_parent(folder / META_FILE, what)


def _ours(name: str) -> bool:
    return name in (META_FILE, INDEX_FILE, LEGACY_ITEMS_FILE) or (name.startswith(("shard-", ".shard-")) and ".npy" in name) \
        or (name.startswith(".") and name.endswith(".tmp"))


def _clear(folder: Path) -> None:
    for path in folder.iterdir():
        if _ours(path.name):
            path.unlink()


@dataclass(frozen=True)
class IndexedRow:
    key: dict[str, str]
    shard: str
    row: int


def read_index(folder: Path) -> list[IndexedRow]:
    path = folder / INDEX_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [IndexedRow({k: v for k, v in r.items() if k not in ("shard", "row")}, r["shard"], int(r["row"]))
                for r in csv.DictReader(fh)]


class ShardWriter:
    """Writes shards and their index lines into a features folder it has created or resumed."""

    def __init__(self, folder: Path, meta: dict, options: SinkOptions, what: str = "--features"):
        check_folder(folder, options, what)
        self.folder, self.meta, self.columns = folder, meta, list(meta["columns"])
        self.created = False
        if folder.is_dir() and options.force and not options.resume:
            _clear(folder)
        resuming = options.resume and (folder / META_FILE).is_file()
        if resuming:
            _check_resumable_meta(folder, json.loads((folder / META_FILE).read_text(encoding="utf-8")), meta)
        else:
            self.created = not folder.exists()
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())
            atomic_write(folder / INDEX_FILE, _csv_lines([[*self.columns, "shard", "row"]]).encode())
        # the rows an earlier run indexed (what a resumed run checks and skips); rows written now are
        # only counted, so a day-long `run --features` keeps no per-frame record in memory
        self.indexed: dict[str, list[IndexedRow]] = defaultdict(list)
        for entry in read_index(folder):
            self.indexed[entry.shard].append(entry)
        self.counts: dict[str, int] = {name: len(rows) for name, rows in self.indexed.items()}
        self._index = LineFile(folder / INDEX_FILE, f"{what} index", append=True)

    def shard_complete(self, number: int, rows: int) -> bool:
        """Its file holds `rows` rows and the index names every one of them."""
        path = self.folder / shard_name(number)
        if self.counts.get(shard_name(number), 0) != rows or not path.is_file():
            return False
        try:
            return len(np.load(path, mmap_mode="r")) == rows
        except (OSError, ValueError):
            return False

    def write_shard(self, number: int, rows: np.ndarray, keys: list[list[object]]) -> None:
        """The shard file (whole), then its index lines unless the index already has them."""
        name = shard_name(number)
        atomic_write(self.folder / name, npy_bytes(np.ascontiguousarray(rows, np.float32)))
        if self.counts.get(name, 0) != len(keys):
            if self.counts.get(name):
                raise SinkError(f"'{self.folder / INDEX_FILE}' names {self.counts[name]} rows of {name}, not {len(keys)}: "
                                "extract into a new folder")
            self._index.write(_csv_lines([[*key, name, row] for row, key in enumerate(keys)]))
            self._index.sync()
            self.counts[name] = len(keys)

    def close(self) -> None:
        self._index.close()


def _csv_lines(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


class FeatureSink:
    """`run --features DIR`: each valid result's features, keyed by frame, source and times."""

    @classmethod
    def check(cls, folder: Path, options: SinkOptions) -> None:
        check_folder(folder, options)

    def __init__(self, folder: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        self.output = manifest.output("features")
        self.writer = ShardWriter(folder, features_meta(manifest, RUN_COLUMNS, options.rows_per_shard, options.computed_by),
                                  options)
        self.rows_per_shard = options.rows_per_shard
        names = sorted(self.writer.counts)
        self._shard = int(names[-1][6:11]) + 1 if names else 0
        self._rows: list[np.ndarray] = []
        self._keys: list[list[object]] = []

    def done(self) -> set[tuple[str, int]]:
        """(source, frame) of every row already written: what a resumed run may skip."""
        return {(r.key["source"], int(r.key["frame"])) for rows in self.writer.indexed.values() for r in rows}

    def write(self, result: Result) -> None:
        if result.valid:
            self.write_row(result.outputs[self.output.name], result.frame, result.source, result.t_capture, result.stamp)

    def write_row(self, features: np.ndarray, frame: int, source: str, t_capture: float, stamp: float | None) -> None:
        """One frame's features, as `write` keys them (for writers that have no Result: a cluster's rows)."""
        self._rows.append(features)
        self._keys.append([frame, source, f"{t_capture:.6f}", "" if stamp is None else f"{stamp:.6f}"])
        if len(self._rows) >= self.rows_per_shard:
            self._commit()

    def _commit(self) -> None:
        if self._rows:
            rows, keys, self._rows, self._keys = np.stack(self._rows), self._keys, [], []
            self.writer.write_shard(self._shard, rows, keys)
            self._shard += 1

    def close(self) -> None:
        try:
            self._commit()
        finally:
            self.writer.close()

    def discard(self) -> None:
        """Undo opening: remove the folder this sink created (a resumed one is left as it was)."""
        self.writer.close()
        if self.writer.created:
            shutil.rmtree(self.writer.folder, ignore_errors=True)


def read_features(folder: Path) -> tuple[dict, list[dict[str, str]], np.ndarray]:
    """Meta, one key per row and the rows of a features folder, in shard order.

    Folders from before the formats were one still load: `extract`'s kept its keys in
    `items.csv` (row i in shard i // rows_per_shard), `run --features`' had no `columns`."""
    if not (folder / META_FILE).is_file():
        raise SinkError(f"'{folder}' is not a features folder (no {META_FILE})")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    empty = np.zeros((0, *meta["shape"]), np.float32)
    if (folder / INDEX_FILE).is_file():
        entries = sorted(read_index(folder), key=lambda e: (e.shard, e.row))
        shards = {name: np.load(folder / name) for name in {e.shard for e in entries} if (folder / name).is_file()}
        missing = sorted({e.shard for e in entries} - set(shards))
        if missing:
            raise SinkError(f"'{folder}' has index lines for {missing[0]}, which is missing: extract again or --resume")
        rows = np.stack([shards[e.shard][e.row] for e in entries]) if entries else empty
        return meta, [e.key for e in entries], rows
    if (folder / LEGACY_ITEMS_FILE).is_file():
        with open(folder / LEGACY_ITEMS_FILE, newline="", encoding="utf-8") as fh:
            keys = list(csv.DictReader(fh))
        shards = sorted(folder.glob("shard-*.npy"))
        return meta, keys, np.concatenate([np.load(s) for s in shards]) if shards else empty
    return meta, [], empty
