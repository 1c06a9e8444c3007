"""edgeft.runtime: load verified bundles and run them with onnxruntime. Never imports TensorFlow."""

from .bundle import Bundle, default_bundle, find_bundles, load_bundle, read_manifest
from .engine import Engine, EngineConfig, Prediction
from .errors import BundleError, EdgeftError, FrameError, ProviderError
from .manifest import Manifest
from .pipeline import Pipeline, PipelineConfig, Result
from .sinks import FeatureShards, PredictionWriter, VideoSink
from .sources import Frame, Source, SourceError, SourceOptions, open_source
from .stats import Stats

__all__ = [
    "Bundle",
    "FeatureShards",
    "Frame",
    "Pipeline",
    "PipelineConfig",
    "PredictionWriter",
    "Result",
    "Source",
    "SourceError",
    "SourceOptions",
    "Stats",
    "VideoSink",
    "open_source",
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
