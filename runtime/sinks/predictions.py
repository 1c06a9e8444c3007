"""Prediction rows, one per frame, as JSON lines or CSV: strictly valid, each line whole."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..manifest import Manifest
from ..results import Result, decode, finite_or_none
from .base import LineFile, SinkError, SinkOptions, check_new_file

SUFFIXES = (".jsonl", ".csv")
BASE_FIELDS = ["frame", "source", "t_capture", "stamp", "latency_ms", "valid"]


def prediction_fields(manifest: Manifest, result: Result) -> dict[str, object]:
    """The prediction outputs of one result as plain JSON values (features go to feature shards)."""
    row: dict[str, object] = {}
    for spec in manifest.outputs:
        if spec.role == "prediction" and spec.name in result.outputs:
            values = [finite_or_none(float(v)) for v in result.outputs[spec.name].reshape(-1)]
            row[spec.name] = values[0] if len(values) == 1 else values
    decoded = decode(manifest, result.outputs)
    if decoded.label is not None:
        row["label"], row["score"] = decoded.label, finite_or_none(decoded.score)
    return row


class PredictionWriter:
    """One row per frame: frame, source, times, latency, validity, predictions, truth."""

    what = "--output"

    @classmethod
    def check(cls, path: Path, options: SinkOptions) -> None:
        if path.suffix not in SUFFIXES:
            raise SinkError(f"--output '{path}' must end in .jsonl or .csv")
        check_new_file(path, cls.what, options.force)

    def __init__(self, path: Path, manifest: Manifest, options: SinkOptions = SinkOptions()):
        self.check(path, options)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.manifest, self.csv = path, manifest, path.suffix == ".csv"
        self._file = LineFile(path, self.what)
        self._columns: list[str] | None = None

    def write(self, result: Result) -> None:
        row: dict[str, object] = {
            "frame": result.frame, "source": result.source, "t_capture": round(result.t_capture, 6),
            "latency_ms": round(result.latency_ms, 3), "valid": result.valid,
        }
        if result.stamp is not None:
            row["stamp"] = round(result.stamp, 6)
        row.update(prediction_fields(self.manifest, result))
        if result.truth is not None:
            row["truth"] = finite_or_none(result.truth)
        if result.reason:
            row["reason"] = result.reason
        self._file.write(self._csv_line(row) if self.csv else json.dumps(row, allow_nan=False) + "\n")

    def _csv_line(self, row: dict[str, object]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self._columns is None:
            names = BASE_FIELDS + [o.name for o in self.manifest.outputs if o.role == "prediction"]
            names += ["label", "score"] if self.manifest.task == "classification" else []
            self._columns = names + ["truth", "reason"]
            writer.writerow(self._columns)
        flat = {k: (" ".join("nan" if x is None else f"{x:.6g}" for x in v) if isinstance(v, list) else v) for k, v in row.items()}
        writer.writerow(["" if flat.get(name) is None else flat[name] for name in self._columns])
        return buffer.getvalue()

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        """Undo opening: remove the (empty) file this sink created."""
        self.close()
        self.path.unlink(missing_ok=True)
