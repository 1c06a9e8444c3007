"""Rank candidates by probe score with honest uncertainty: ties within noise, and the speed trade-off.

Every candidate is scored on the same test items, so one set of bootstrap resamples serves
them all: a candidate ties with the best when the 95% interval of its paired difference from
the best includes zero. The Pareto front is the set no other candidate beats on both probe
score and batch-1 latency. The recommendation is the fastest candidate tied with the best.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .logme import LogME
from .probes import Probe, bootstrap_indices, interval, resampled_scores


@dataclass
class Row:
    """One candidate's measurements, as compare fills them in."""

    label: str
    spec: dict  # backbone, weights, input, precision as asked
    bundle: str
    features: str
    dims: int
    params: int
    gflops: float | None
    bundle_mb: float
    probe: Probe
    knn: Probe
    logme: LogME
    bench: dict  # latency_ms p50/p90, throughput_fps, peak_rss_mb, provider, precision
    interval: tuple[float, float] = (float("nan"), float("nan"))
    tied: bool = False  # within the bootstrap interval of the best
    pareto: bool = False
    seconds: dict = field(default_factory=dict)

    @property
    def latency(self) -> float:
        return float(self.bench["latency_ms"]["p50"])


def rank(rows: list[Row], resamples: int = 1000, seed: int = 0) -> list[Row]:
    """Rows sorted by probe score (best first), with intervals, ties and the Pareto front marked."""
    if not rows:
        return rows
    count = len(rows[0].probe.truth)
    indices = bootstrap_indices(count, resamples, seed)
    scores = [resampled_scores(row.probe, indices) for row in rows]
    best = int(np.argmax([row.probe.score for row in rows]))
    for row, resampled in zip(rows, scores):
        row.interval = interval(resampled)
        row.tied = interval(scores[best] - resampled)[0] <= 0  # the best's lead is not clear of zero
    for row in rows:
        row.pareto = not any(_dominates(other, row) for other in rows if other is not row)
    return sorted(rows, key=lambda r: (-r.probe.score, r.latency))


def _dominates(a: Row, b: Row) -> bool:
    return a.probe.score >= b.probe.score and a.latency <= b.latency and (a.probe.score > b.probe.score or a.latency < b.latency)


def recommend(rows: list[Row]) -> str:
    """One line: the fastest candidate within the interval of the best, and what it gives up."""
    if not rows:
        return "no candidates"
    best = rows[0]
    pick = min((r for r in rows if r.tied), key=lambda r: r.latency)
    metric = best.probe.metric
    if pick is best:
        faster = [r for r in rows if r.latency < best.latency]
        names = ", ".join(r.label for r in faster)
        tail = f"; {names} {'is' if len(faster) == 1 else 'are'} faster but clearly lower" if faster else ", and the fastest"
        return f"{best.label}: the best probe {metric} ({_score(best)}){tail}"
    return (f"{pick.label}: within the CI of the best ({best.label}, {metric} {_score(best)}; it scores {_score(pick)}) "
            f"at {best.latency / pick.latency:.1f}x its speed")


def _score(row: Row) -> str:
    low, high = row.interval
    return f"{row.probe.score:.3f} [{low:.3f}, {high:.3f}]"
