"""edgeft.runtime: load verified bundles and run them (onnxruntime, OpenVINO), streaming. Never imports TensorFlow."""

from .bench import BenchResult, bench, count_flops
from .bundle import Bundle, default_bundle, find_bundles, load_bundle, read_manifest, sha256_file
from .cpu import cpu_info
from .engine import Engine, EngineConfig, Prediction
from .errors import BundleError, EdgeftError, FrameError, ProviderError, first_line
from .manifest import Manifest, backbone_identity
from .overlay import annotate, cam_overlay
from .pipeline import Pipeline, PipelineConfig
from .results import Decoded, Result, decode
from .runner import RunOutcome, run
from .sinks import (FeatureSink, PredictionWriter, Sink, SinkError, SinkOptions, VideoSink, check_sinks, open_sink, open_sinks,
                    read_features)
from .sources import Frame, Rig, Source, SourceError, SourceOptions, open_rig, open_source
from .stats import Histogram, Stats

__all__ = [
    "BenchResult", "Bundle", "BundleError", "Decoded", "EdgeftError", "Engine", "EngineConfig", "FeatureSink", "Frame", "FrameError",
    "Histogram", "Manifest", "Pipeline", "PipelineConfig", "Prediction", "PredictionWriter", "ProviderError", "Result", "Rig", "RunOutcome",
    "Sink", "SinkError", "SinkOptions", "Source", "SourceError", "SourceOptions", "Stats", "VideoSink",
    "annotate", "backbone_identity", "cam_overlay", "check_sinks", "count_flops", "cpu_info", "decode", "default_bundle", "find_bundles", "first_line", "load_bundle", "open_sink", "open_sinks",
    "open_rig", "open_source", "read_features", "read_manifest", "run", "bench", "sha256_file",
]
