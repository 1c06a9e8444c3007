"""The verifications made on this machine, kept per model (`~/.cache/edgeft/verified/`, or
`$EDGEFT_CACHE`): what `inspect` lists, and what lets a backend proved here before start without
running its probes again.

A record is a hint, never a source of failure: a file that is not JSON, a record of the wrong
shape or with missing keys is ignored (and replaced by the next verification). A passing record
is reused only for exactly the same model, backend, precision, thresholds, CPU and backend
version; `edgeft verify` and `verify=True` always prove afresh.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, fields
from pathlib import Path

from .cpu import cpu_info

KEYS = {"backend": str, "precision": str, "passed": bool, "measure": str, "agreement": dict, "thresholds": dict,
        "probes": int, "checked_at": str, "cpu": str}


def cache_root() -> Path:
    return Path(os.environ.get("EDGEFT_CACHE") or Path.home() / ".cache" / "edgeft")


def _records_path(model_sha256: str) -> Path:
    return cache_root() / "verified" / f"{model_sha256[:32]}.json"


def machine(backend: str) -> dict[str, str]:
    """What a record holds of this machine: the CPU (model and ISA) and the backend's version."""
    module = "openvino" if backend.startswith("OpenVINO") else "onnxruntime"
    version = getattr(sys.modules.get(module), "__version__", "unknown")
    return {"cpu": cpu_info().model, "isa": cpu_info().isa, "runtime": f"{module} {version}"}


def record(model_sha256: str, result) -> None:
    """Keep the newest result per backend and precision for this model on this machine; a cache
    that cannot be written is no reason to fail a run."""
    path = _records_path(model_sha256)
    try:
        records = recorded(model_sha256)
        records[result.backend] = {**asdict(result), **machine(result.backend)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(records, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def recorded(model_sha256: str) -> dict[str, dict]:
    """The well-formed records for this model, by backend; anything else in the file is ignored."""
    path = _records_path(model_sha256)
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {backend: entry for backend, entry in data.items() if _well_formed(entry)}


def _well_formed(entry: object) -> bool:
    return isinstance(entry, dict) and all(isinstance(entry.get(key), kind) for key, kind in KEYS.items()) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in (*entry["agreement"].values(), *entry["thresholds"].values()))


def reusable(model_sha256: str, backend: str, precision: str, thresholds: dict[str, float], kind: type):
    """A passing verification of this very model, backend, precision and thresholds made on this
    CPU with this backend version, as a `kind` (Verification); else None."""
    entry = recorded(model_sha256).get(backend)
    if entry is None or not entry["passed"] or entry["precision"] != precision or entry["thresholds"] != thresholds:
        return None
    if any(entry.get(key) != value for key, value in machine(backend).items()):
        return None
    return kind(**{f.name: entry[f.name] for f in fields(kind) if f.name in entry and f.name != "reused"}, reused=True)
