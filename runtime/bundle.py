"""Open a bundle folder: parse the manifest and verify the model bytes before any session exists."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError, utf8_text
from .manifest import MANIFEST_FILE, MODEL_FILE, Manifest, metadata_mismatches
from .onnx_file import OnnxFacts, scan

DEFAULT_MODELS_DIR = Path("models")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    # Verified against manifest.model_sha256: the file, which onnxruntime then reads itself (holding
    # our own copy of the bytes as well cost ~1x the model in peak memory), or, during export,
    # the bytes not yet written.
    model: Path | bytes


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: str | Path) -> Manifest:
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"bundle '{folder}' does not exist or is not a folder")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"bundle '{folder}' has no {MANIFEST_FILE}; is it an edgeft bundle?")
    text = utf8_text(manifest_path.read_bytes(), manifest_path, BundleError, "the manifest is damaged: re-export the bundle")
    return Manifest.from_json(text, origin=str(manifest_path))


def load_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle. The model file is hashed in chunks, never held whole in memory:
    the check guards against corruption and truncation, and onnxruntime reads the file next.
    A model that keeps tensors in other files is refused: those bytes are covered by no hash."""
    folder = Path(path)
    manifest = read_manifest(folder)
    model_path = _inside(folder, MODEL_FILE)
    if not model_path.is_file():
        raise BundleError(f"bundle '{folder}' has no {MODEL_FILE}")
    actual = sha256_file(model_path)
    if actual != manifest.model_sha256:
        raise BundleError(
            f"{model_path} does not match its manifest (sha256 {actual[:12]}… != "
            f"{manifest.model_sha256[:12]}…): the file was modified or truncated; re-export it"
        )
    check_model_facts(folder, manifest, scan(model_path))
    if manifest.proof is not None:
        proof = _inside(folder, manifest.proof.file)
        if not proof.is_file() or sha256_file(proof) != manifest.proof.sha256:
            raise BundleError(f"{proof} is missing or does not match its manifest: the probes were modified; re-export it")
    return Bundle(folder, manifest, model_path)


def _inside(folder: Path, name: str) -> Path:
    """`folder / name`, refused if it leads out of the bundle (a link to elsewhere): every byte
    a bundle runs or is proved with lies in its own folder."""
    path = folder / name
    if path.exists() and not path.resolve().is_relative_to(folder.resolve()):
        raise BundleError(f"{path} leads out of the bundle (to {path.resolve()}): a bundle's files must be its own")
    return path


def check_model_facts(where: Path, manifest: Manifest, facts: OnnxFacts) -> None:
    """One verified file (no external data), and metadata that is the manifest's own."""
    if facts.external:
        raise BundleError(f"{where / MODEL_FILE} keeps {len(facts.external)} tensor(s) in external files "
                          f"(first: {facts.external[0]}); a bundle is one verified file: re-export it")
    differing = metadata_mismatches(manifest, facts.metadata)
    if differing:
        raise BundleError(f"bundle '{where}': model.onnx's metadata disagrees with the manifest "
                          f"({', '.join(differing)}); the two files do not belong together: re-export the bundle")


def find_bundles(models_dir: str | Path = DEFAULT_MODELS_DIR) -> list[Path]:
    """Bundle folders (those holding a manifest) directly under `models_dir`, sorted."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).is_file())


def default_bundle(models_dir: str | Path = DEFAULT_MODELS_DIR) -> Path:
    """The only bundle under `models_dir`; with none or several, say which exist."""
    found = find_bundles(models_dir)
    if len(found) == 1:
        return found[0]
    if not found:
        raise BundleError(f"no bundle under '{models_dir}/': run `edgeft export BACKBONE` or pass --model")
    names = ", ".join(p.name for p in found)
    raise BundleError(f"several bundles under '{models_dir}/' ({names}): pick one with --model")
