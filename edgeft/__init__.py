"""edgeft: transfer-learned vision backbones, exported to verified ONNX bundles, run on the edge."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgeft")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
