"""Run statistics stay the same size however long the run, and stay accurate."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edgeft.runtime import Result, Stats
from edgeft.runtime.stats import Histogram


def result(latency: float, valid: bool = True) -> Result:
    return Result("cam", 0, 0.0, latency, {}, valid=valid)


def test_a_million_results_keep_stats_bounded() -> None:
    stats = Stats()
    rng = np.random.default_rng(0)
    latencies = rng.lognormal(3, 0.5, 1_000_000)
    results = [result(float(v)) for v in latencies[:1000]]  # reused objects: only Stats may grow
    tracemalloc.start()
    for i in range(10_000):
        stats.observe(results[i % 1000])
        stats.steering_error.add(float(latencies[i]) - 20)
    after_ten_thousand = tracemalloc.get_traced_memory()[0]
    for i in range(10_000, 1_000_000):
        stats.observe(results[i % 1000])
        stats.steering_error.add(float(latencies[i]) - 20)
        if i % 250_000 == 0:
            stats.errors.append(f"error {i}")
            stats.notes.append(f"note {i}")
    grown = tracemalloc.get_traced_memory()[0] - after_ten_thousand
    tracemalloc.stop()
    assert stats.frames == 1_000_000
    assert grown < 64 * 1024, f"Stats grew by {grown} bytes over 990,000 results"


def test_percentiles_and_errors_stay_accurate() -> None:
    stats = Stats()
    latencies = np.random.default_rng(1).lognormal(3, 0.7, 50_000)
    for value in latencies:
        stats.observe(result(float(value)))
    errors = np.random.default_rng(2).normal(0, 0.1, 50_000)
    for e in errors:
        stats.steering_error.add(float(e))
    p = stats.latency_percentiles()
    for q in (50, 90, 99):
        assert p[f"p{q}"] == pytest.approx(np.percentile(latencies, q), rel=0.012)
    steering = stats.steering()
    assert steering["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-9)
    assert steering["rmse"] == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-9)
    recent = stats.latency_percentiles(recent=True)
    assert recent["p50"] == pytest.approx(np.percentile(latencies[-256:], 50))


def test_histogram_takes_extremes_and_skips_non_finite() -> None:
    histogram = Histogram()
    for value in (0.0, 1e-9, 5.0, 1e12, float("nan"), float("inf")):
        histogram.add(value)
    assert histogram.count == 4
    low, high = histogram.percentiles((1, 100))
    assert low < 1e-2 and high > 1e5
