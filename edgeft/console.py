"""What `edgeft run` shows: a progress bar for finite sources, a live status line for live ones,
and a summary table at the end."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edgeft.runtime.manifest import Manifest
from edgeft.runtime.pipeline import Result
from edgeft.runtime.stats import Stats


class RunDisplay:
    """Context manager fed one result at a time; redraws at most four times a second."""

    def __init__(self, console: Console, stats: Stats, total: int | None, live: bool, enabled: bool = True):
        self.console, self.stats, self.total, self.live, self.enabled = console, stats, total, live, enabled
        self._last = 0.0
        self._progress: Progress | None = None
        self._line: Live | None = None

    def __enter__(self) -> RunDisplay:
        if not self.enabled:
            return self
        if self.live or self.total is None:
            self._line = Live(self._status(), console=self.console, refresh_per_second=4, transient=True)
            self._line.__enter__()
        else:
            self._progress = Progress(TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("run", total=self.total, rate="")
        return self

    def update(self, result: Result, ticks: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.25:
            return
        self._last = now
        if self._progress is not None:
            self._progress.update(self._task, completed=ticks, rate=f"{self.stats.fps:.1f} fps")
        elif self._line is not None:
            self._line.update(self._status())

    def _status(self) -> str:
        lat = self.stats.latency_percentiles(recent=200)
        latency = f"p50 {lat['p50']:.0f} ms  p99 {lat['p99']:.0f} ms" if lat else "-"
        return f"[bold]{self.stats.frames}[/] frames  {self.stats.fps:.1f} fps  latency {latency}  drops {self.stats.drops}"

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for widget in (self._progress, self._line):
            if widget is not None:
                widget.__exit__(kind, exc, tb)


def summary_table(stats: Stats, manifest: Manifest, interrupted: bool) -> Table:
    title = f"edgeft run: {manifest.name}" + (" (interrupted)" if interrupted else "")
    table = Table(show_header=False, title=title, title_justify="left")
    lat = stats.latency_percentiles()
    rows = [
        ("frames", f"{stats.frames}" + (f" ({stats.invalid} invalid)" if stats.invalid else "")),
        ("time", f"{stats.elapsed_s:.2f} s"),
        ("throughput", f"{stats.fps:.1f} frames/s"),
        ("latency", f"p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 {lat['p99']:.1f} ms (capture to result)" if lat else "-"),
        ("drops", str(stats.drops)),
        ("skipped", f"{stats.skipped} unreadable"),
        ("reconnects", str(stats.reconnects)),
        ("provider", stats.provider),
    ]
    steering = stats.steering()
    if steering:
        rows.append(("steering", f"MAE {steering['mae']:.4f}, RMSE {steering['rmse']:.4f} on {steering['n']} frames with ground truth"))
    for error in stats.errors:
        rows.append(("error", error))
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    return table
