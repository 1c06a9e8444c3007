"""The static backbone table agrees with the installed Keras, and folded preprocessing with
each module's own `preprocess_input`."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from edgeft.export.backbones import BACKBONES, resolve_backbone

from helpers import cli

keras = pytest.importorskip("keras", reason="the export extra (TensorFlow) is not installed")


def test_every_keras_application_is_in_the_table() -> None:
    constructors = {n for n in dir(keras.applications) if n[0].isupper() and callable(getattr(keras.applications, n))}
    assert {spec.name for spec in BACKBONES} == constructors


@pytest.mark.parametrize("module", sorted({spec.module for spec in BACKBONES}))
def test_folded_preprocessing_equals_the_modules_own(module: str) -> None:
    from edgeft.export.preprocessing import fold

    mode = next(spec.preprocess for spec in BACKBONES if spec.module == module)
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    official = importlib.import_module(f"keras.applications.{module}").preprocess_input
    expected = np.asarray(official(frames.astype(np.float32)))
    np.testing.assert_allclose(np.asarray(fold(frames, mode)), expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["MobileNetV2", "VGG16", "ResNet50", "InceptionV3"])
def test_parameter_counts_match_built_models(name: str) -> None:
    spec = resolve_backbone(name)
    assert spec.constructor()(include_top=False, weights=None).count_params() == spec.params


def test_backbones_command_lists_every_backbone() -> None:
    result = cli("backbones")
    assert result.exit_code == 0
    for spec in BACKBONES:
        assert spec.name in result.output
