"""Training report figures: loss/metric curves plus a confusion matrix or predicted-vs-true plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_training(report: dict, predictions: np.ndarray, truth: np.ndarray, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    history = report["history"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, values in history.items():
        axes[0 if "loss" in key else 1].plot(values, label=key)
    for ax, title in zip(axes, ("loss", "metric")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    if report["task"] == "classification":
        classes = report["classes"]
        matrix = np.zeros((len(classes), len(classes)), int)
        for t, p in zip(truth, predictions.argmax(axis=1)):
            matrix[t, p] += 1
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        name = "confusion.png"
    else:
        ax.scatter(truth, predictions.reshape(-1), s=8, alpha=0.6)
        lo, hi = float(min(truth.min(), predictions.min())), float(max(truth.max(), predictions.max()))
        ax.plot([lo, hi], [lo, hi], "k--", linewidth=1)
        ax.set_xlabel("true steering")
        ax.set_ylabel("predicted steering")
        name = "steering.png"
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
