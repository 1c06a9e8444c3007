"""The keras.applications backbones by name: default input size, preprocessing, size.

A static table, so `edgeft backbones` answers without importing TensorFlow; a test checks
it against the installed Keras (every constructor present, modes equal to each module's own
`preprocess_input`, parameter counts equal to the built models').
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ExportError

PREPROCESS_MODES: dict[str, str] = {
    "tf": "scale to [-1, 1] (x / 127.5 - 1)",
    "caffe": "RGB -> BGR, subtract the ImageNet mean (no scaling)",
    "torch": "scale to [0, 1], subtract mean and divide by std of ImageNet",
    "unit": "scale to [0, 1] (x / 255)",
    "none": "raw 0-255 floats (the model scales its own input)",
}


@dataclass(frozen=True)
class BackboneSpec:
    name: str  # the keras.applications constructor
    module: str  # keras.applications.<module>, home of its preprocess_input
    default_size: int  # the square input size its ImageNet weights were trained at
    preprocess: str  # a key of PREPROCESS_MODES
    params: int  # parameters without the classifier (include_top=False)

    def constructor(self) -> Callable[..., Any]:
        import keras

        return getattr(keras.applications, self.name)

    def official_preprocess(self) -> Callable[..., Any]:
        import importlib

        return importlib.import_module(f"keras.applications.{self.module}").preprocess_input


BACKBONES: tuple[BackboneSpec, ...] = (
    BackboneSpec("ConvNeXtBase", "convnext", 224, "none", 87_566_464),
    BackboneSpec("ConvNeXtLarge", "convnext", 224, "none", 196_230_336),
    BackboneSpec("ConvNeXtSmall", "convnext", 224, "none", 49_454_688),
    BackboneSpec("ConvNeXtTiny", "convnext", 224, "none", 27_820_128),
    BackboneSpec("ConvNeXtXLarge", "convnext", 224, "none", 348_147_968),
    BackboneSpec("DenseNet121", "densenet", 224, "torch", 7_037_504),
    BackboneSpec("DenseNet169", "densenet", 224, "torch", 12_642_880),
    BackboneSpec("DenseNet201", "densenet", 224, "torch", 18_321_984),
    BackboneSpec("EfficientNetB0", "efficientnet", 224, "none", 4_049_571),
    BackboneSpec("EfficientNetB1", "efficientnet", 240, "none", 6_575_239),
    BackboneSpec("EfficientNetB2", "efficientnet", 260, "none", 7_768_569),
    BackboneSpec("EfficientNetB3", "efficientnet", 300, "none", 10_783_535),
    BackboneSpec("EfficientNetB4", "efficientnet", 380, "none", 17_673_823),
    BackboneSpec("EfficientNetB5", "efficientnet", 456, "none", 28_513_527),
    BackboneSpec("EfficientNetB6", "efficientnet", 528, "none", 40_960_143),
    BackboneSpec("EfficientNetB7", "efficientnet", 600, "none", 64_097_687),
    BackboneSpec("EfficientNetV2B0", "efficientnet_v2", 224, "none", 5_919_312),
    BackboneSpec("EfficientNetV2B1", "efficientnet_v2", 240, "none", 6_931_124),
    BackboneSpec("EfficientNetV2B2", "efficientnet_v2", 260, "none", 8_769_374),
    BackboneSpec("EfficientNetV2B3", "efficientnet_v2", 300, "none", 12_930_622),
    BackboneSpec("EfficientNetV2L", "efficientnet_v2", 480, "none", 117_746_848),
    BackboneSpec("EfficientNetV2M", "efficientnet_v2", 480, "none", 53_150_388),
    BackboneSpec("EfficientNetV2S", "efficientnet_v2", 384, "none", 20_331_360),
    BackboneSpec("InceptionResNetV2", "inception_resnet_v2", 299, "tf", 54_336_736),
    BackboneSpec("InceptionV3", "inception_v3", 299, "tf", 21_802_784),
    BackboneSpec("MobileNet", "mobilenet", 224, "tf", 3_228_864),
    BackboneSpec("MobileNetV2", "mobilenet_v2", 224, "tf", 2_257_984),
    BackboneSpec("MobileNetV3Large", "mobilenet_v3", 224, "none", 2_996_352),
    BackboneSpec("MobileNetV3Small", "mobilenet_v3", 224, "none", 939_120),
    BackboneSpec("NASNetLarge", "nasnet", 331, "tf", 84_887_922),
    BackboneSpec("NASNetMobile", "nasnet", 224, "tf", 4_269_716),
    BackboneSpec("ResNet101", "resnet", 224, "caffe", 42_658_176),
    BackboneSpec("ResNet101V2", "resnet_v2", 224, "tf", 42_626_560),
    BackboneSpec("ResNet152", "resnet", 224, "caffe", 58_370_944),
    BackboneSpec("ResNet152V2", "resnet_v2", 224, "tf", 58_331_648),
    BackboneSpec("ResNet50", "resnet", 224, "caffe", 23_587_712),
    BackboneSpec("ResNet50V2", "resnet_v2", 224, "tf", 23_564_800),
    BackboneSpec("VGG16", "vgg16", 224, "caffe", 14_714_688),
    BackboneSpec("VGG19", "vgg19", 224, "caffe", 20_024_384),
    BackboneSpec("Xception", "xception", 299, "tf", 20_861_480),
)

_BY_LOWER = {spec.name.lower(): spec for spec in BACKBONES}


def resolve_backbone(name: str) -> BackboneSpec:
    """Case-insensitive lookup with a did-you-mean for typos."""
    spec = _BY_LOWER.get(name.lower())
    if spec is not None:
        return spec
    close = difflib.get_close_matches(name.lower(), list(_BY_LOWER), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(_BY_LOWER[c].name for c in close)}?" if close else ""
    raise ExportError(f"unknown backbone '{name}'{hint} (`edgeft backbones` lists them; a model file path also works)")
