"""`edgeft finetune`: unfreeze the top of the backbone and train it with the head, end to end.

The backbone is built exactly as `export` builds it (same weights, cut, pooling, size), the
images are fed through Keras' own preprocessing, BatchNorm statistics stay frozen (the usual
practice: a small dataset would wreck them), and the learning rate is low. The result is a
backbone file plus head that `edgeft export` turns into a bundle recording the tuned layers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeft.runtime.errors import EdgeftError

from .datasets import Plan
from .extract import load_item_image


@dataclass(frozen=True)
class FinetuneConfig:
    unfreeze: int = 0  # the last N weighted layers of the backbone
    from_layer: str | None = None  # or: every layer from this one on (e.g. InceptionV3's mixed9)
    epochs: int = 10
    batch: int = 16
    learning_rate: float = 1e-5
    patience: int = 3
    seed: int = 0


def finetune(export_config, plan: Plan, out: Path, config: FinetuneConfig) -> dict:
    import keras

    from edgeft.export import build
    from edgeft.export.exporter import backbone_identity, load_backbone, precheck
    from edgeft.export.preprocessing import reference
    from edgeft.export.weights import tensors_sha256

    if export_config.head is None:
        raise EdgeftError("finetune needs --head: train one first with `edgeft train-head`")
    spec, _ = precheck(export_config)
    keras.utils.set_random_seed(config.seed)
    full, weights, preprocess, size = load_backbone(export_config, spec)
    features = build.truncate(full, export_config.cut, export_config.pooling)
    head = build.load_keras_file(export_config.head, "head")
    build.check_head(head, features)
    tuned = _unfreeze(features, config)
    task = plan.task
    x, y, splits = _load(plan, size, reference(preprocess, spec.official_preprocess() if spec and preprocess == spec.preprocess else None))
    inputs = keras.Input((*size, 3))
    model = keras.Model(inputs, head(features(inputs, training=False)))
    loss, metric = ("sparse_categorical_crossentropy", "accuracy") if task == "classification" else ("mse", "mae")
    model.compile(keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=[metric])
    train, val, test = (splits == s for s in ("train", "val", "test"))
    evaluate_on = test if test.any() else val
    before = dict(zip(["loss", metric], model.evaluate(x[evaluate_on], y[evaluate_on], verbose=0)))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss" if val.any() else "loss", patience=config.patience, restore_best_weights=True)
    history = model.fit(x[train], y[train], validation_data=(x[val], y[val]) if val.any() else None,
                        epochs=config.epochs, batch_size=config.batch, callbacks=[stop], verbose=0)
    after = dict(zip(["loss", metric], model.evaluate(x[evaluate_on], y[evaluate_on], verbose=0)))

    out.mkdir(parents=True, exist_ok=True)
    features.save(out / "backbone.keras")
    head.save(out / "head.keras")
    file_config = type(export_config)(backbone=str(out / "backbone.keras"), pooling=export_config.pooling, preprocess=preprocess)
    from edgeft.runtime.manifest import WeightsInfo

    identity = backbone_identity(file_config, None, WeightsInfo("", None, tensors_sha256(features), ""), preprocess, size)
    record = {"base": {"backbone": spec.name if spec else export_config.backbone, "weights": weights.source,
                       "weights_tensors_sha256": weights.tensors_sha256, "cut": export_config.cut, "pooling": export_config.pooling},
              "tuned_layers": tuned, "config": asdict(config), "epochs_run": len(history.history["loss"]),
              "evaluated_on": "test" if test.any() else "val", "before": before, "after": after}
    (out / "finetune.json").write_text(json.dumps(record, indent=2) + "\n")
    classes = list(plan.classes)
    (out / "head.json").write_text(json.dumps({"task": task, "classes": classes, "backbone_identity": identity}, indent=2) + "\n")
    if classes:
        (out / "labels.txt").write_text("\n".join(classes) + "\n")
    return record | {"preprocess": preprocess, "input": list(size)}


def _unfreeze(features, config: FinetuneConfig) -> list[str]:
    """Mark the chosen top layers trainable (BatchNorm excepted); return their names."""
    import keras

    def tunable(layers):
        return [la for la in layers if la.weights and not isinstance(la, keras.layers.BatchNormalization)]

    if config.from_layer is not None:
        names = [layer.name for layer in features.layers]
        if config.from_layer not in names:
            raise EdgeftError(f"the backbone has no layer '{config.from_layer}' (`edgeft layers` lists them)")
        chosen = tunable(features.layers[names.index(config.from_layer) :])
    elif config.unfreeze > 0:
        chosen = tunable(features.layers)[-config.unfreeze :]
    else:
        raise EdgeftError("say what to tune: --unfreeze N (last N layers) or --from-layer NAME")
    tuned = {layer.name for layer in chosen}
    for layer in features.layers:
        layer.trainable = layer.name in tuned
    return [layer.name for layer in chosen]


def _load(plan: Plan, size: tuple[int, int], prep) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every readable planned image, resized as the runtime resizes, through Keras' preprocessing."""
    images, labels, splits = [], [], []
    index = {c: i for i, c in enumerate(plan.classes)}
    for item in plan.items:
        image = load_item_image(item)
        if image is None:
            continue
        rgb = cv2.cvtColor(cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        images.append(rgb)
        labels.append(index[item.label] if plan.task == "classification" else float(item.label))
        splits.append(item.split)
    if not images:
        raise EdgeftError("no readable images in the dataset")
    return prep(np.stack(images)), np.array(labels), np.array(splits)
