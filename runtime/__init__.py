"""edgeft.runtime: load verified bundles and run them with onnxruntime. Never imports TensorFlow."""

from .bundle import Bundle, default_bundle, find_bundles, load_bundle, read_manifest
from .engine import Engine, EngineConfig, Prediction
from .errors import BundleError, EdgeftError, FrameError, ProviderError
from .manifest import Manifest

__all__ = [
    "Bundle",
    "BundleError",
    "EdgeftError",
    "Engine",
    "EngineConfig",
    "FrameError",
    "Manifest",
    "Prediction",
    "ProviderError",
    "default_bundle",
    "find_bundles",
    "load_bundle",
    "read_manifest",
]
