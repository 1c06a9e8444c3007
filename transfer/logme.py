"""LogME (You et al., ICML 2021): how well features explain labels, without training a probe.

Each target column y (one-vs-rest 0/1 per class, or a regression target) gets a Bayesian linear
model y = F w + e, w ~ N(0, 1/alpha), e ~ N(0, 1/beta), and the score is its log evidence
log p(y | F, alpha, beta), maximised over alpha and beta, per sample, averaged over the targets.

Written for what backbones give: often fewer samples N than feature dimensions D. Everything is
done in the eigenbasis of F^T F or F F^T, whichever is smaller (the k <= min(N, D) non-zero
directions), and the evidence counts the D - k directions the data do not span (the reference
implementation drops them, thuml/LogME#23). Alpha and beta are iterated (MacKay's updates) to a
relative tolerance rather than a fixed count, with no additive epsilon, on features normalised
to unit mean square: the maximum evidence does not depend on the scale of the features (scaling
F by c is undone by alpha * c^2), and with this the computed score does not either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeft.runtime import EdgeftError

BOUNDARY = 1e-12  # alpha / beta beyond sigma_max / this (or below sigma_min x this) has reached its limit


@dataclass(frozen=True)
class LogME:
    score: float  # mean over targets of the maximum log evidence per sample (higher: better features)
    per_target: tuple[float, ...]  # per class (classification) or per target column (regression)
    iterations: int  # the most any target needed
    converged: bool


def logme(features: np.ndarray, targets: np.ndarray, regression: bool = False, tol: float = 1e-8,
          max_iter: int = 10_000) -> LogME:
    """LogME of `features` (N x D) for class `targets` (N integers) or regression targets (N or N x T)."""
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    if regression:
        y = np.asarray(targets, np.float64).reshape(len(f), -1)
    else:
        labels = np.asarray(targets)
        y = (labels[:, None] == np.unique(labels)[None, :]).astype(np.float64)
    if len(f) < 2 or not np.isfinite(f).all() or not np.isfinite(y).all():
        raise EdgeftError("LogME needs at least two samples with finite features and targets")
    rms = math.sqrt(float((f * f).sum()) / len(f))
    sigma, u = spectrum(f / rms if rms > 0 else f)
    results = [max_evidence(sigma, u, column, tol, max_iter) for column in y.T]
    scores = tuple(r[0] for r in results)
    return LogME(float(np.mean(scores)), scores, max(r[1] for r in results), all(r[2] for r in results))


def spectrum(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero eigenvalues sigma (k) of F^T F and the matching left singular vectors U (N x k),
    from whichever Gram matrix is smaller."""
    n, d = f.shape
    if n >= d:
        sigma, v = np.linalg.eigh(f.T @ f)
    else:
        sigma, u = np.linalg.eigh(f @ f.T)
    top = float(sigma.max()) if sigma.size else 0.0
    keep = sigma > top * max(n, d) * np.finfo(np.float64).eps if top > 0 else np.zeros(sigma.shape, bool)
    if n >= d:
        return sigma[keep], (f @ v[:, keep]) / np.sqrt(sigma[keep])
    return sigma[keep], u[:, keep]


def max_evidence(sigma: np.ndarray, u: np.ndarray, y: np.ndarray, tol: float, max_iter: int) -> tuple[float, int, bool]:
    """(maximum log evidence / N, iterations, converged) of one target column."""
    n = len(y)
    total = float(y @ y)
    if total == 0:
        raise EdgeftError("LogME: a target column is all zeros (a constant zero regression target)")
    x2 = (u.T @ y) ** 2
    outside = max(total - float(x2.sum()), 0.0)  # the part of y no feature direction reaches
    no_fit = -0.5 * (math.log(2 * math.pi) + 1 + math.log(total / n))  # per sample at w = 0 (alpha -> infinity, beta = N / |y|^2)
    if sigma.size == 0 or float(x2.sum()) <= total * 1e-15:
        return no_fit, 0, True  # no feature direction reaches y
    low, high = float(sigma.min()) * BOUNDARY, float(sigma.max()) / BOUNDARY
    t, converged, iterations = 1.0, False, 0  # t = alpha / beta; the features have unit mean square here
    for iterations in range(1, max_iter + 1):
        alpha, beta = _update(sigma, x2, outside, n, t)
        if not alpha / beta < high:  # the evidence rises all the way to w = 0: the features do not help
            return no_fit, iterations, True
        step, t = abs(alpha / beta - t), max(alpha / beta, low)  # at `low`: y is interpolated (k = N), the limit is finite
        if step <= tol * t or t == low:
            converged = True
            break
    alpha, beta = _update(sigma, x2, outside, n, t)
    return max(evidence(sigma, x2, outside, n, alpha, beta) / n, no_fit), iterations, converged


def _update(sigma: np.ndarray, x2: np.ndarray, outside: float, n: int, t: float) -> tuple[float, float]:
    """MacKay's fixed-point step: alpha = gamma / |m|^2, beta = (N - gamma) / |y - F m|^2 at alpha / beta = t."""
    gamma = float((sigma / (sigma + t)).sum())  # the well-determined directions
    m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
    residual = float((x2 * (t / (sigma + t)) ** 2).sum()) + outside
    return (gamma / m2 if m2 > 0 else math.inf), (n - gamma) / residual


def evidence(sigma: np.ndarray, x2: np.ndarray, outside: float, n: int, alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) in the eigenbasis. Of log det(alpha I + beta F^T F) the D - k
    unspanned directions contribute (D - k) log alpha, which cancels D/2 log alpha down to k/2."""
    t = alpha / beta
    m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
    residual = float((x2 * (t / (sigma + t)) ** 2).sum()) + outside
    k = len(sigma)
    return (k / 2 * math.log(alpha) + n / 2 * math.log(beta) - 0.5 * float(np.log(alpha + beta * sigma).sum())
            - beta / 2 * residual - alpha / 2 * m2 - n / 2 * math.log(2 * math.pi))
