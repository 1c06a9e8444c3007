"""Probes on cached features: what a head trained on them would score, with its uncertainty.

The linear probe is what transfer papers use as ground truth (Kornblith et al. 2019): L2
logistic regression for classes, ridge for steering, on standardised features, with the
regularisation chosen on the validation split, refitted on train + val, scored once on test.
k-NN (cosine) is the training-free second opinion. Every probe keeps its per-item test outcome,
so candidates scored on the same test items can be bootstrapped together (`paired_bootstrap`):
on small data, candidates often tie within noise, and a ranking must say so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeft.runtime import EdgeftError

C_GRID = tuple(10.0 ** p for p in range(-4, 3))  # logistic regression: inverse L2 strength
ALPHA_GRID = tuple(10.0 ** p for p in range(-2, 6))  # ridge: L2 strength
K_GRID = (1, 3, 5, 10, 20)


@dataclass(frozen=True)
class Targets:
    """Labels as numbers, with the split of every row."""

    y: np.ndarray  # class indices (classification) or float targets (regression)
    train: np.ndarray  # bool masks over rows
    val: np.ndarray
    test: np.ndarray
    regression: bool

    @property
    def metric(self) -> str:
        return "R2" if self.regression else "accuracy"


@dataclass(frozen=True)
class Probe:
    kind: str  # linear | knn
    metric: str  # accuracy | R2
    score: float  # on the test split
    val_score: float  # of the chosen setting, on the validation split
    chosen: str  # the setting validation picked, e.g. "C=0.1", "k=5"
    truth: np.ndarray  # test targets, and the probe's predictions on them: what bootstrapping resamples
    predicted: np.ndarray


def check_splits(targets: Targets) -> None:
    if not targets.train.any() or not targets.val.any() or not targets.test.any():
        counts = ", ".join(f"{n} {int(m.sum())}" for n, m in (("train", targets.train), ("val", targets.val), ("test", targets.test)))
        raise EdgeftError(f"compare needs train, validation and test rows ({counts}): give --val and --test above 0, "
                          "or a pre-split dataset with all three")
    if not targets.regression and len(np.unique(targets.y[targets.train])) < 2:
        raise EdgeftError("the training split holds a single class: a probe needs at least two")


def linear_probe(x: np.ndarray, targets: Targets) -> Probe:
    """Logistic regression (classes) or ridge (steering), L2 strength chosen on validation."""
    from sklearn.linear_model import LogisticRegression, Ridge

    if targets.regression:
        return _probe("linear", x, targets, [(f"alpha={a:g}", lambda a=a: Ridge(alpha=a)) for a in ALPHA_GRID], standardise=True)
    # The validation sweep walks C upwards from one model, each fit starting where the last stopped
    # (2x fewer lbfgs iterations, the same choice); the refit on train + val starts afresh.
    sweep = LogisticRegression(max_iter=300, tol=1e-3, warm_start=True)
    return _probe("linear", x, targets, [(f"C={c:g}", lambda c=c: sweep.set_params(C=c)) for c in C_GRID], standardise=True,
                  refit=lambda name: LogisticRegression(C=float(name[2:]), max_iter=300, tol=1e-3))


def knn_probe(x: np.ndarray, targets: Targets) -> Probe:
    """k nearest neighbours by cosine (features L2-normalised), k chosen on validation."""
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    model = KNeighborsRegressor if targets.regression else KNeighborsClassifier
    fits = int(targets.train.sum())
    grid = [(f"k={k}", lambda k=k: model(n_neighbors=k)) for k in K_GRID if k <= fits] or [("k=1", lambda: model(n_neighbors=1))]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return _probe("knn", x / np.where(norms > 0, norms, 1.0), targets, grid, standardise=False)


def _probe(kind: str, x: np.ndarray, targets: Targets, grid: list[tuple[str, Callable]], standardise: bool,
           refit: Callable[[str], object] | None = None) -> Probe:
    """Fit each setting on train, keep the best on val, refit it on train + val (`refit(name)`, or
    the setting's own factory), score on test."""
    x = x.reshape(len(x), -1).astype(np.float64)
    y, score = targets.y, _scorer(targets.regression)
    fit_rows = targets.train | targets.val
    view = _View(x, targets.train, standardise)
    best = max(((score(y[targets.val], _fit(make, view, y[targets.train])(view(x[targets.val]))), name, make)
                for name, make in grid), key=lambda found: found[0])
    val_score, name, make = best
    make = (lambda: refit(name)) if refit is not None else make
    view = _View(x, fit_rows, standardise)
    predicted = _fit(make, view, y[fit_rows])(view(x[targets.test]))
    truth = y[targets.test]
    return Probe(kind, targets.metric, float(score(truth, predicted)), float(val_score), name, truth, predicted)


class _View:
    """The features as a linear probe fitted on `rows` sees them: standardised by those rows'
    statistics and, with more dimensions than rows, in an orthonormal basis of their span. An L2
    penalty keeps the weights in that span, so the fit is exact, and far cheaper."""

    def __init__(self, x: np.ndarray, rows: np.ndarray, standardise: bool):
        self.rows = x[rows]
        self.mean = self.rows.mean(axis=0) if standardise else 0.0
        std = self.rows.std(axis=0) if standardise else 1.0
        self.scale = np.where(std > 0, std, 1.0) if standardise else 1.0
        self.basis = _span((self.rows - self.mean) / self.scale) if standardise and x.shape[1] > len(self.rows) else None
        self.fitting = self(self.rows)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return z @ self.basis if self.basis is not None else z


def _span(z: np.ndarray) -> np.ndarray:
    """An orthonormal basis (D x r) of the rows' span, from the small Gram matrix (eigh of n x n is
    far cheaper than an SVD of n x D)."""
    values, vectors = np.linalg.eigh(z @ z.T)
    keep = values > values.max() * len(z) * np.finfo(np.float64).eps if values.max() > 0 else values > np.inf
    if not keep.any():
        return np.zeros((z.shape[1], 1))
    return (z.T @ vectors[:, keep]) / np.sqrt(values[keep])


def _fit(make: Callable, view: _View, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs stopping at max_iter on a weakly regularised setting: validation judges it
        model.fit(view.fitting, y)
    return model.predict


def _scorer(regression: bool) -> Callable[[np.ndarray, np.ndarray], float]:
    return r2 if regression else (lambda truth, predicted: float((truth == predicted).mean()))


def r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination; below 0 when worse than predicting the test mean."""
    total = float(((truth - truth.mean()) ** 2).sum())
    residual = float(((truth - predicted) ** 2).sum())
    return 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else -np.inf)


def bootstrap_indices(count: int, resamples: int, seed: int) -> np.ndarray:
    """resamples x count indices into the test items, drawn once and shared by every candidate."""
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def resampled_scores(probe: Probe, indices: np.ndarray) -> np.ndarray:
    """The probe's test score on each bootstrap resample of the test items."""
    if probe.metric == "accuracy":
        return (probe.truth == probe.predicted)[indices].mean(axis=1)
    return np.array([r2(probe.truth[i], probe.predicted[i]) for i in indices])


def interval(scores: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return float(low), float(high)
