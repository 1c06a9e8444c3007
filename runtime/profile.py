"""Where a run's time goes, stage by stage, in fixed-size histograms: the bottleneck, named.

Two kinds of thread share the work. Each source's capture thread reads a tick (`read`: file or
bag I/O, or waiting for a camera), decodes it (`decode`), resizes and colour-converts it for the
model (`resize`), waits for its pacing when `--rate` replays a file (`pace`) and hands it over
(`hand-off`: waiting while the queue is full, which is inference being slower). The main thread
waits for the next tick (`wait`: the captures being slower), runs the model (`inference`), turns
outputs into results (`results`) and gives them to whoever consumes them (`sinks`: the outputs
and the display under `edgeft run`, your loop when embedding). The stages of each thread cover
its whole time, so their sum is the thread's wall time and their shares say which one binds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .histogram import Histogram

CAPTURE_STAGES = ("read", "decode", "resize", "pace", "hand-off")
MAIN_STAGES = ("wait", "inference", "results", "sinks")
STAGES = CAPTURE_STAGES + MAIN_STAGES
_WORK = ("read", "decode", "resize", "pace")  # capture stages that can be what the main thread waits for


@dataclass(frozen=True)
class StageSummary:
    p50_ms: float
    p99_ms: float
    total_s: float
    share: float  # of its thread's time (capture threads summed together)
    samples: int


class Profile:
    """Stage times in milliseconds, one sample per capture tick or per inference call. Capture
    threads add to it concurrently, so adding takes a lock; memory is fixed whatever the length."""

    def __init__(self) -> None:
        self._histograms = {stage: Histogram(low=1e-3, high=1e6, bins=1200) for stage in STAGES}
        self._totals = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()

    def add(self, **stage_ms: float) -> None:
        """`add(read=0.2, decode=3.1, ...)`: one tick's (or one call's) time in each stage, in ms."""
        with self._lock:
            for stage, ms in stage_ms.items():
                key = stage.replace("_", "-")
                self._histograms[key].add(ms)
                self._totals[key] += ms / 1000.0

    def thread_seconds(self, stages: tuple[str, ...]) -> float:
        return sum(self._totals[s] for s in stages)

    def summary(self) -> dict[str, StageSummary]:
        """Each stage that was seen: p50/p99 per sample, total seconds, share of its thread's time."""
        out = {}
        with self._lock:
            for stages in (CAPTURE_STAGES, MAIN_STAGES):
                whole = self.thread_seconds(stages)
                for stage in stages:
                    histogram = self._histograms[stage]
                    if histogram.count:
                        p50, p99 = histogram.percentiles((50, 99))
                        out[stage] = StageSummary(p50, p99, self._totals[stage], self._totals[stage] / whole if whole else 0.0,
                                                  histogram.count)
        return out

    def bottleneck(self) -> str | None:
        """One line naming the binding stage: the main thread either waits for frames (the
        capture's biggest stage binds) or is busy (its own biggest stage binds)."""
        stages = self.summary()
        share = {stage: s.share for stage, s in stages.items()}
        if not any(stage in share for stage in MAIN_STAGES):
            return None
        busiest = max(("inference", "results", "sinks"), key=lambda s: share.get(s, 0.0))
        if share.get("wait", 0.0) > share.get(busiest, 0.0):
            stage = max(_WORK, key=lambda s: share.get(s, 0.0))
            return (f"{stage}-bound: {stage} is {share.get(stage, 0.0):.0%} of the capture thread's time; inference waited "
                    f"for frames {share['wait']:.0%} of the main thread's")
        line = f"{busiest}-bound: {busiest} is {share[busiest]:.0%} of the main thread's time"
        capture = self.thread_seconds(CAPTURE_STAGES)
        busy = self.thread_seconds(("read", "decode", "resize")) / capture if capture else 0.0
        if busiest == "inference" and busy >= 0.3:  # the capture thread works on the same cores inference does
            line += f"; the capture thread was busy {busy:.0%} of its time beside it, on the same cores"
        return line

    def as_dict(self) -> dict[str, object]:
        stages = {stage: {"p50_ms": round(s.p50_ms, 3), "p99_ms": round(s.p99_ms, 3), "total_s": round(s.total_s, 4),
                          "share": round(s.share, 4), "samples": s.samples} for stage, s in self.summary().items()}
        return {"stages": stages, "bottleneck": self.bottleneck()}
