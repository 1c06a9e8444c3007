"""Frozen-network transfer on real handwritten digits: odd vs even from few labels.

    .venv/bin/python benchmarks/digits_transfer.py [--budgets 10 50 200] [--seeds 0 1 2]

Data: scikit-learn's bundled digits (1,797 real 8x8 scans, upscaled to 32x32), split once
(seed 0) into 897 images to pre-train on, a pool of 400 to draw the few labels from, and 500
held out for testing. A small CNN is trained on digits 0-9, saved as the user's own .keras
model, exported cut at its 64-d `embedding` layer (frozen), and for each label budget a binary
head is trained on `edgeft extract` features with `edgeft train-head`, fused with `export
--head`, and scored through the runtime (edgeft.runtime.Engine) on the 500 test images.
Baseline: the same CNN architecture trained from scratch on the same few labels.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgeft.export.quiet import native_stderr_muted  # noqa: E402

with native_stderr_muted():
    import keras  # noqa: E402

from edgeft.transfer.datasets import plan_class_folders  # noqa: E402
from edgeft.export.exporter import ExportConfig, export_bundle  # noqa: E402
from edgeft.transfer.extract import extract, load_features  # noqa: E402
from edgeft.runtime import Engine  # noqa: E402
from edgeft.transfer.train import HeadConfig, train_head  # noqa: E402

SIZE = 32


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    big = np.stack([cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) for im in small])
    return np.repeat(big[..., None], 3, axis=-1), digits.target


def cnn(classes: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu", name="embedding")(x)
    x = keras.layers.Dropout(0.3)(x)
    model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="digits_cnn")
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / ("odd" if label % 2 else "even")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)


def draw_budget(pool_labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    while True:  # both classes must be present
        pick = rng.choice(len(pool_labels), budget, replace=False)
        if len(set(pool_labels[pick] % 2)) == 2:
            return pick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    images, labels = digit_images()
    order = np.random.default_rng(0).permutation(len(labels))
    pre, pool, test = order[:897], order[897:1297], order[1297:]
    work = Path(tempfile.mkdtemp(prefix="digits-"))
    write_folder(work / "test", images[test], labels[test])

    base = cnn(10, seed=0)
    base.fit(images[pre] / 255.0, labels[pre], epochs=40, batch_size=32, verbose=0, validation_split=0.1,
             callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    base_acc = base.evaluate(images[test] / 255.0, labels[test], verbose=0)[1]
    base.save(work / "digits_cnn.keras")
    with native_stderr_muted():
        frozen = export_bundle(ExportConfig(str(work / "digits_cnn.keras"), preprocess="unit", cut="embedding",
                                            name="digits-embedding", models_dir=work / "models")).path
    engine = Engine.load(frozen, device="cpu")
    print(f"pre-trained CNN (digits 0-9, {len(pre)} images): test accuracy {base_acc:.3f}; frozen at 'embedding' (64-d)")
    print(f"test set: {len(test)} held-out digits (odd vs even); {len(args.seeds)} label draws per budget\n")

    rows = []
    for budget in args.budgets:
        frozen_acc, bundle_acc, scratch_acc = [], [], []
        for seed in args.seeds:
            pick = pool[draw_budget(labels[pool], budget, np.random.default_rng(1000 * budget + seed))]
            run = work / f"b{budget}-s{seed}"
            write_folder(run / "data" / "train", images[pick], labels[pick])
            (run / "data" / "test").symlink_to(work / "test")
            extract(engine, plan_class_folders(run / "data", 0, 0, seed, ()), run / "feat", {"seed": seed})
            report = train_head(load_features(run / "feat"), run / "head", HeadConfig(epochs=300, patience=30, seed=seed))
            frozen_acc.append(report["metrics"]["test"]["accuracy"])
            with native_stderr_muted():
                fused = export_bundle(ExportConfig(str(work / "digits_cnn.keras"), preprocess="unit", cut="embedding",
                                                   head=run / "head" / "head.keras", labels=run / "head" / "labels.txt",
                                                   name=f"fused-b{budget}-s{seed}", models_dir=work / "models")).path
            bundle_acc.append(runtime_accuracy(Engine.load(fused, device="cpu"), images[test], labels[test]))
            scratch = cnn(2, seed=seed)
            scratch.fit(images[pick] / 255.0, labels[pick] % 2, epochs=150, batch_size=16, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor="loss", patience=20, restore_best_weights=True)])
            scratch_acc.append(scratch.evaluate(images[test] / 255.0, labels[test] % 2, verbose=0)[1])
        rows.append((budget, frozen_acc, bundle_acc, scratch_acc))
        print(f"budget {budget}: frozen+head {np.mean(frozen_acc):.3f}, bundle {np.mean(bundle_acc):.3f}, scratch {np.mean(scratch_acc):.3f}", flush=True)

    print(f"\n{'labels':>7} | {'frozen CNN + head (train-head)':>31} | {'same, as bundle (runtime)':>26} | {'from scratch':>14}")
    for budget, f, b, s in rows:
        print(f"{budget:>7} | {np.mean(f):>22.3f} ± {np.std(f):.3f} | {np.mean(b):>17.3f} ± {np.std(b):.3f} | {np.mean(s):>6.3f} ± {np.std(s):.3f}")
    print("\naccuracy on the 500 held-out digits, mean ± std over label draws (seeds " + ", ".join(map(str, args.seeds)) + ")")


def runtime_accuracy(engine: Engine, images: np.ndarray, labels: np.ndarray) -> float:
    probs = engine.predict([cv2.cvtColor(im, cv2.COLOR_RGB2BGR) for im in images])["prediction"]
    predicted = np.array([engine.manifest.labels[i] for i in probs.argmax(axis=1)])
    return float((predicted == np.where(labels % 2, "odd", "even")).mean())


if __name__ == "__main__":
    main()
