"""Write a bundle folder atomically: build it in a temp folder beside the target, then rename.

A failed or interrupted export leaves no half bundle; with `force`, the old bundle is
swapped out only once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgeft.runtime.manifest import LABELS_FILE, MANIFEST_FILE, MODEL_FILE, Manifest

from .errors import ExportError


def refuse_existing(dest: Path, force: bool) -> None:
    if dest.exists() and not force:
        raise ExportError(f"bundle '{dest}' already exists: pass --force to replace it, or --name to pick another")


def write_bundle(dest: Path, model_bytes: bytes, manifest: Manifest, force: bool, files: dict[str, bytes] | None = None) -> Path:
    """The model, the manifest, the labels and `files` (the proof), swapped in whole."""
    refuse_existing(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        _write(tmp / MODEL_FILE, model_bytes)
        _write(tmp / MANIFEST_FILE, manifest.to_json().encode())
        if manifest.labels:
            _write(tmp / LABELS_FILE, ("\n".join(manifest.labels) + "\n").encode())
        for name, data in (files or {}).items():
            _write(tmp / name, data)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            dest.rename(old / dest.name)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
