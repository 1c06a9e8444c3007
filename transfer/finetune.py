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

from edgeft.export import HEAD_META, BackboneRequest, KerasModel, build_keras_model, saved_identity
from edgeft.runtime import EdgeftError
from edgeft.runtime.sources import FrameReader

from .datasets import Plan
from .extract import load_item_images


@dataclass(frozen=True)
class FinetuneConfig:
    unfreeze: int = 0  # the last N weighted layers of the backbone
    from_layer: str | None = None  # or: every layer from this one on (e.g. InceptionV3's mixed9)
    epochs: int = 10
    batch: int = 16
    learning_rate: float = 1e-5
    patience: int = 3
    seed: int = 0


def finetune(request: BackboneRequest, plan: Plan, out: Path, config: FinetuneConfig) -> dict:
    """Tune, evaluate before and after, and write backbone.keras, head.keras, finetune.json."""
    import keras

    if request.head is None:
        raise EdgeftError("finetune needs --head: train one first with `edgeft train-head`")
    keras.utils.set_random_seed(config.seed)
    model = build_keras_model(request)
    tuned = _unfreeze(model.features, config)
    x, y, splits = _load(plan, model.size, model.keras_preprocess())
    train, val, test = (splits == s for s in ("train", "val", "test"))
    evaluate_on = test if test.any() else val
    metric, before, after, epochs = _train(model, plan.task, x, y, (train, val, evaluate_on), config)

    out.mkdir(parents=True, exist_ok=True)
    model.features.save(out / "backbone.keras")
    model.head.save(out / "head.keras")
    identity = saved_identity(model.features, out / "backbone.keras", request.pooling, model.backbone.preprocess, model.size)
    record = {"base": {"backbone": model.backbone.name, "weights": model.weights.source,
                       "weights_tensors_sha256": model.weights.tensors_sha256, "cut": request.cut, "pooling": request.pooling},
              "tuned_layers": tuned, "config": asdict(config), "epochs_run": epochs,
              "evaluated_on": "test" if test.any() else "val", "before": before, "after": after}
    (out / "finetune.json").write_text(json.dumps(record, indent=2) + "\n")
    classes = list(plan.classes)
    (out / HEAD_META).write_text(json.dumps({"task": plan.task, "classes": classes, "backbone_identity": identity}, indent=2) + "\n")
    if classes:
        (out / "labels.txt").write_text("\n".join(classes) + "\n")
    return record | {"preprocess": model.backbone.preprocess, "input": list(model.size), "metric": metric}


def _train(model: KerasModel, task: str, x: np.ndarray, y: np.ndarray, masks: tuple, config: FinetuneConfig):
    """Backbone and head end to end at a low learning rate; the metric before and after."""
    import keras

    train, val, evaluate_on = masks
    inputs = keras.Input((*model.size, 3))
    whole = keras.Model(inputs, model.head(model.features(inputs, training=False)))
    loss, metric = ("sparse_categorical_crossentropy", "accuracy") if task == "classification" else ("mse", "mae")
    whole.compile(keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=[metric])
    before = dict(zip(["loss", metric], whole.evaluate(x[evaluate_on], y[evaluate_on], verbose=0)))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss" if val.any() else "loss", patience=config.patience,
                                         restore_best_weights=True)
    history = whole.fit(x[train], y[train], validation_data=(x[val], y[val]) if val.any() else None,
                        epochs=config.epochs, batch_size=config.batch, callbacks=[stop], verbose=0)
    after = dict(zip(["loss", metric], whole.evaluate(x[evaluate_on], y[evaluate_on], verbose=0)))
    return metric, before, after, len(history.history["loss"])


def finetune_summary(record: dict, out: Path, pooling: str, classes: bool) -> list[str]:
    """What was tuned and how it scored, and the `edgeft export` line that makes it a bundle."""
    metric = record["metric"]
    size = "x".join(map(str, record["input"]))
    return [
        f"tuned {len(record['tuned_layers'])} layers ({record['tuned_layers'][0]} … {record['tuned_layers'][-1]}), "
        f"{record['epochs_run']} epochs; {record['evaluated_on']} {metric} {record['before'][metric]:.4f} -> {record['after'][metric]:.4f}",
        f"export it: edgeft export {out / 'backbone.keras'} --preprocess {record['preprocess']} --input-size {size} "
        f"--pooling {pooling} --head {out / 'head.keras'}" + (f" --labels {out / 'labels.txt'}" if classes else ""),
    ]


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
    with FrameReader() as frames:
        loaded = [image for start in range(0, len(plan.items), 64)
                  for image in load_item_images(plan.items[start : start + 64], frames)]
    for item, image in zip(plan.items, loaded):
        if image is None:
            continue
        rgb = cv2.cvtColor(cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        images.append(rgb)
        labels.append(index[item.label] if plan.task == "classification" else float(item.label))
        splits.append(item.split)
    if not images:
        raise EdgeftError("no readable images in the dataset")
    return prep(np.stack(images)), np.array(labels), np.array(splits)
