"""Start-up without re-optimisation: cache onnxruntime's optimised graph per model and provider.

onnxruntime rewrites the graph (fusions, constant folding, layout changes) every time a session
is created. With a cache folder, the first start saves the optimised model; later starts load
it with optimisation off. The key is the verified model's sha256, the onnxruntime version and
the provider, so a new model or runtime never meets a stale file, and the cached file's own
sha256 is checked before use (a modified cache entry is discarded, never run).
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from .bundle import sha256_file


def cache_key(model_sha256: str, provider: str) -> str:
    return f"{model_sha256[:24]}-ort{ort.__version__}-{provider.removesuffix('ExecutionProvider').lower()}"


def cached_model(cache_dir: Path, key: str) -> Path | None:
    model, digest = cache_dir / f"{key}.onnx", cache_dir / f"{key}.sha256"
    if not (model.is_file() and digest.is_file()):
        return None
    if sha256_file(model) != digest.read_text().strip():
        model.unlink(missing_ok=True)
        digest.unlink(missing_ok=True)
        return None
    return model


def seal(cache_dir: Path, key: str) -> None:
    """Record the sha256 of the optimised model onnxruntime just wrote."""
    model = cache_dir / f"{key}.onnx"
    if model.is_file():
        (cache_dir / f"{key}.sha256").write_text(sha256_file(model) + "\n")
