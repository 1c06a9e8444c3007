"""Manifest schema: round trip, and every kind of malformed manifest refused by field name."""

import dataclasses
import json

import pytest

from edgeft.runtime.errors import BundleError
from edgeft.runtime.manifest import (
    BackboneInfo,
    InputSpec,
    Manifest,
    OutputSpec,
    ParityRecord,
    WeightsInfo,
)


def make_manifest(**changes) -> Manifest:
    base = Manifest(
        name="m",
        task="classification",
        input=InputSpec("image", 96, 128),
        outputs=(OutputSpec("features", (None, 1280), "features"), OutputSpec("prediction", (None, 3), "prediction")),
        backbone=BackboneInfo("MobileNetV2", "keras.applications", None, "avg", "tf"),
        weights=WeightsInfo("none", None, "ab" * 32, "random init, seed 0"),
        model_sha256="cd" * 32,
        opset=17,
        parity=(ParityRecord("features", 1e-6, 1e-7, 6),),
        parity_tolerance=1e-4,
        versions={"edgeft": "0.1.0"},
        created="2026-11-24T00:00:00+00:00",
        labels=("a", "b", "c"),
    )
    return dataclasses.replace(base, **changes)


def test_round_trip_preserves_every_field() -> None:
    manifest = make_manifest()
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_output_lookup_by_role() -> None:
    manifest = make_manifest()
    assert manifest.output("prediction").shape == (None, 3)
    assert manifest.output("features").name == "features"


def mutate(edit) -> str:
    data = json.loads(make_manifest().to_json())
    edit(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("model_sha256"), "missing field 'model_sha256'"),
        (lambda d: d["input"].update(height="96"), "manifest.json.input.height: expected int"),
        (lambda d: d.update(task="segmentation"), "is not one of"),
        (lambda d: d.update(schema_version=99), "schema_version 99 is not supported"),
        (lambda d: d.update(labels=["a", "b"]), "2 labels for 3 classes"),
        (lambda d: d["input"].update(dtype="float32"), "input must be uint8 NHWC"),
        (lambda d: d.update(outputs=[]), "role 'features'"),
        (lambda d: d["parity"][0].update(max_rel="tiny"), "parity[0].max_rel"),
        (lambda d: d.update(quantization=dict(method="q", calibration_source="v", calibration_frames=1, holdout_frames=1, agreement={}),
                            fp16=dict(method="h", checked_on="cpu", probe_frames=1, agreement={}, storage_emulation={})),
         "INT8 \\(quantization\\) or FP16 \\(fp16\\), not both"),
    ],
)
def test_malformed_manifest_is_refused_naming_the_field(edit, message) -> None:
    with pytest.raises(BundleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Manifest.from_json(mutate(edit), origin="manifest.json")


def test_invalid_json_is_refused() -> None:
    with pytest.raises(BundleError, match="not valid JSON"):
        Manifest.from_json("{not json")
