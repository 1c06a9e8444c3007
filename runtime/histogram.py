"""A fixed-size histogram for percentiles of a stream of values (latencies, skews, stage times)."""

from __future__ import annotations

import math

import numpy as np


class Histogram:
    """Counts in log-spaced bins from `low` to `high`; values outside land in the end bins."""

    def __init__(self, low: float = 1e-3, high: float = 1e6, bins: int = 2000):
        self._log_low, self._step = math.log(low), (math.log(high) - math.log(low)) / bins
        self._counts = np.zeros(bins, np.int64)
        self.count = 0

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            return
        position = (math.log(value) - self._log_low) / self._step if value > 0 else 0
        self._counts[min(max(int(position), 0), len(self._counts) - 1)] += 1
        self.count += 1

    def percentiles(self, qs: tuple[float, ...]) -> list[float]:
        """The geometric centre of the bin holding each percentile."""
        cumulative = np.cumsum(self._counts)
        out = []
        for q in qs:
            index = int(np.searchsorted(cumulative, max(1, math.ceil(q / 100 * self.count))))
            out.append(math.exp(self._log_low + (index + 0.5) * self._step))
        return out
