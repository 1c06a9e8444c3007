"""Where results go: prediction rows (jsonl/csv), feature shards (.npy + index), annotated video.

Every sink survives an interrupted run: rows are flushed as written, and each feature shard
appears under its final name only once complete (written to a temp file, then renamed), so a
reader never sees half a shard.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import EdgeftError
from .manifest import Manifest
from .overlay import annotate
from .pipeline import Result

FEATURES_META = "features.json"
FEATURES_INDEX = "index.csv"


class Sink(Protocol):
    def write(self, result: Result) -> None: ...

    def close(self) -> None: ...


def prediction_fields(manifest: Manifest, result: Result) -> dict[str, object]:
    """The prediction outputs of one result as plain JSON values (features go to FeatureShards)."""
    row: dict[str, object] = {}
    for spec in manifest.outputs:
        if spec.role != "prediction" or spec.name not in result.outputs:
            continue
        values = result.outputs[spec.name].reshape(-1).astype(float)
        row[spec.name] = float(values[0]) if values.size == 1 else [float(v) for v in values]
        if manifest.task == "classification" and values.size > 1:
            best = int(values.argmax())
            row["label"] = manifest.labels[best] if manifest.labels else str(best)
            row["score"] = float(values[best])
    return row


class PredictionWriter:
    """One row per frame: frame, source, timestamp, latency, validity, predictions, truth."""

    def __init__(self, path: Path, manifest: Manifest):
        if path.suffix not in (".jsonl", ".csv"):
            raise EdgeftError(f"--output '{path}' must end in .jsonl or .csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.manifest, self.csv = manifest, path.suffix == ".csv"
        self._fh = open(path, "w", newline="", encoding="utf-8", buffering=1)
        self._writer: csv.DictWriter | None = None

    def write(self, result: Result) -> None:
        row: dict[str, object] = {
            "frame": result.frame, "source": result.source, "t_capture": round(result.t_capture, 6),
            "latency_ms": round(result.latency_ms, 3), "valid": result.valid,
        }
        row.update(prediction_fields(self.manifest, result))
        if result.truth is not None:
            row["truth"] = result.truth
        if result.reason:
            row["reason"] = result.reason
        if not self.csv:
            self._fh.write(json.dumps(row) + "\n")
            return
        flat = {k: (" ".join(f"{x:.6g}" for x in v) if isinstance(v, list) else v) for k, v in row.items()}
        if self._writer is None:
            names = ["frame", "source", "t_capture", "latency_ms", "valid"]
            names += [o.name for o in self.manifest.outputs if o.role == "prediction"]
            names += ["label", "score"] if self.manifest.task == "classification" else []
            self._writer = csv.DictWriter(self._fh, names + ["truth", "reason"], extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow(flat)

    def close(self) -> None:
        self._fh.close()


class FeatureShards:
    """Features as `shard-NNNNN.npy` (rows x feature shape) plus `index.csv` (frame -> shard, row).

    `features.json` records the bundle's model hash, so features are never mixed with another model's.
    """

    def __init__(self, folder: Path, manifest: Manifest, rows_per_shard: int = 1024):
        if folder.exists() and any(folder.iterdir()):
            raise EdgeftError(f"features folder '{folder}' is not empty: pick a new one (shards are never mixed)")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.rows_per_shard = folder, rows_per_shard
        self.output = manifest.output("features")
        meta = {"bundle": manifest.name, "model_sha256": manifest.model_sha256, "output": self.output.name,
                "shape": list(self.output.shape[1:]), "dtype": "float32"}
        atomic_write(folder / FEATURES_META, (json.dumps(meta, indent=2) + "\n").encode())
        self._rows: list[np.ndarray] = []
        self._keys: list[tuple[str, int, float]] = []
        self._shard = 0
        self._index = open(folder / FEATURES_INDEX, "w", newline="", encoding="utf-8")
        self._index_writer = csv.writer(self._index)
        self._index_writer.writerow(["frame", "source", "t_capture", "shard", "row"])

    def write(self, result: Result) -> None:
        if not result.valid:
            return
        self._rows.append(result.outputs[self.output.name])
        self._keys.append((result.source, result.frame, result.t_capture))
        if len(self._rows) >= self.rows_per_shard:
            self._commit()

    def _commit(self) -> None:
        if not self._rows:
            return
        name = f"shard-{self._shard:05d}.npy"
        buffer = npy_bytes(np.stack(self._rows).astype(np.float32))
        atomic_write(self.folder / name, buffer)
        for row, (source, frame, t) in enumerate(self._keys):
            self._index_writer.writerow([frame, source, f"{t:.6f}", name, row])
        self._index.flush()
        os.fsync(self._index.fileno())
        self._rows, self._keys = [], []
        self._shard += 1

    def close(self) -> None:
        self._commit()
        self._index.close()


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as .npy file bytes, for atomic_write."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VideoSink:
    """The first camera of the rig, annotated with the prediction, as an mp4 (mp4v)."""

    def __init__(self, path: Path, manifest: Manifest, fps: float):
        if path.suffix.lower() not in (".mp4", ".avi", ".mkv"):
            raise EdgeftError(f"--save-video '{path}' must end in .mp4, .avi or .mkv")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.manifest, self.fps = path, manifest, fps
        self._writer: cv2.VideoWriter | None = None
        self._camera: str | None = None
        self._size: tuple[int, int] | None = None

    def write(self, result: Result) -> None:
        if result.image is None:
            return
        if self._camera is None:
            self._camera = result.source
        if result.source != self._camera:
            return
        frame = annotate(result.image, result, self.manifest)
        if self._writer is None:
            self._size = (frame.shape[1], frame.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                raise EdgeftError(f"cannot write video '{self.path}' (no mp4v encoder in this OpenCV?)")
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class WindowSink:
    """`--show`: an OpenCV window of the first camera, where a display exists."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self._camera: str | None = None

    @staticmethod
    def available() -> bool:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"

    def write(self, result: Result) -> None:
        self._camera = self._camera or result.source
        if result.image is not None and result.source == self._camera:
            cv2.imshow("edgeft", annotate(result.image, result, self.manifest))
            cv2.waitKey(1)

    def close(self) -> None:
        cv2.destroyAllWindows()
