"""LogME against a brute-force evidence maximisation that shares none of its algebra.

The brute force writes the marginal likelihood of y = F w + e directly, as an N-dimensional
Gaussian with covariance I / beta + F F^T / alpha (log-determinant and solve on that matrix, no
SVD, no fixed-point updates), and maximises it over log alpha and log beta with Nelder-Mead
from several starts.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeft.runtime import EdgeftError
from edgeft.transfer.logme import logme

optimize = pytest.importorskip("scipy.optimize", reason="scipy (a scikit-learn dependency) runs the brute force")


def brute_force_evidence(f: np.ndarray, y: np.ndarray) -> float:
    """max over alpha, beta of log N(y; 0, I / beta + F F^T / alpha), per sample."""
    n = len(y)

    def negative(log_params: np.ndarray) -> float:
        with np.errstate(over="ignore"):  # a start far out: inf covariance terms, a huge value, rejected
            alpha, beta = np.exp(log_params)
        covariance = np.eye(n) / beta + f @ f.T / alpha
        _, logdet = np.linalg.slogdet(covariance)
        return 0.5 * (n * np.log(2 * np.pi) + logdet + y @ np.linalg.solve(covariance, y))

    starts = ([0.0, 0.0], [6.0, -2.0], [-6.0, 3.0], [3.0, 3.0], [12.0, 0.0])
    best = min((optimize.minimize(negative, start, method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 40_000}) for start in starts),
               key=lambda r: r.fun)
    return -best.fun / n


def features(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, d)  # unequal column scales


@pytest.mark.parametrize(("n", "d"), [(80, 12), (30, 90)], ids=["N>D", "N<D"])
def test_classification_matches_brute_force(n, d) -> None:
    f = features(n, d, seed=n)
    rng = np.random.default_rng(1)
    labels = (f[:, 0] + 0.7 * rng.normal(size=n) > 0).astype(int) + (f[:, 1] > 0.5)  # three classes, learnable
    result = logme(f, labels)
    expected = np.mean([brute_force_evidence(f, (labels == c).astype(float)) for c in np.unique(labels)])
    assert result.converged
    assert result.score == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert len(result.per_target) == 3


@pytest.mark.parametrize(("n", "d"), [(60, 8), (25, 70)], ids=["N>D", "N<D"])
def test_regression_target_matches_brute_force(n, d) -> None:
    f = features(n, d, seed=d)
    rng = np.random.default_rng(2)
    steering = f @ rng.normal(size=d) * 0.1 + rng.normal(size=n) * 0.5
    result = logme(f, steering, regression=True)
    assert result.converged
    assert result.score == pytest.approx(brute_force_evidence(f, steering), rel=1e-7, abs=1e-9)
    two = logme(f, np.stack([steering, -2 * steering + 1], axis=1), regression=True)  # several targets: their mean
    assert two.per_target[0] == pytest.approx(result.score, rel=1e-12)
    assert len(two.per_target) == 2


def test_features_that_cannot_help_reach_the_no_feature_limit() -> None:
    """N < D with labels unrelated to the features: the evidence is highest at w = 0 (alpha -> inf)."""
    rng = np.random.default_rng(3)
    f, labels = rng.normal(size=(20, 200)), rng.integers(0, 2, 20)
    result = logme(f, labels)
    expected = np.mean([brute_force_evidence(f, (labels == c).astype(float)) for c in (0, 1)])
    assert result.score == pytest.approx(expected, rel=1e-6)
    zero = logme(np.zeros((20, 200)), labels)  # a dead backbone: exactly the no-feature evidence
    assert zero.score == pytest.approx(result.score, rel=1e-6) and zero.score <= result.score + 1e-12


@pytest.mark.parametrize("scale", [1e-12, 1e-3, 1e4])
def test_invariant_to_the_scale_of_the_features(scale) -> None:
    """Random-weight backbones give features around 1e-11: the score must not depend on that."""
    f = features(40, 100, seed=5)
    labels = np.arange(40) % 4
    assert logme(f * scale, labels).score == pytest.approx(logme(f, labels).score, rel=1e-9)


def test_better_features_score_higher() -> None:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 3, 200)
    informative = np.eye(3)[labels] * 2 + rng.normal(size=(200, 3))
    noise = rng.normal(size=(200, 50))
    assert logme(np.hstack([informative, noise]), labels).score > logme(noise, labels).score


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(EdgeftError, match="finite"):
        logme(np.full((5, 3), np.nan), np.arange(5))
    with pytest.raises(EdgeftError, match="all zeros"):
        logme(np.ones((5, 3)), np.zeros(5), regression=True)
