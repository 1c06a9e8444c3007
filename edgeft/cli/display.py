"""What the commands show: a progress bar or live status line while running, and tables at the end.
Values that come from users (paths, names, labels) are escaped: rich markup must not eat them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edgeft.runtime import Manifest, Result, Stats, decode

if TYPE_CHECKING:
    from edgeft.drive import DriveStats, SimMetrics


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
        lat = self.stats.latency_percentiles(recent=True)
        latency = f"p50 {lat['p50']:.0f} ms  p99 {lat['p99']:.0f} ms" if lat else "-"
        return f"[bold]{self.stats.frames}[/] frames  {self.stats.fps:.1f} fps  latency {latency}  drops {self.stats.drops}"

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for widget in (self._progress, self._line):
            if widget is not None:
                widget.__exit__(kind, exc, tb)


class LiveLine:
    """A transient status line redrawn from `status()` at most four times a second."""

    def __init__(self, console: Console, status: Callable[[], str], enabled: bool = True):
        self.console, self.status, self.enabled = console, status, enabled
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> LiveLine:
        if self.enabled:
            self._live = Live(self.status(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def update(self) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._last >= 0.25:
            self._last = now
            self._live.update(self.status())

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)


class ProgressBar:
    """A transient bar for batch jobs: `update(done, total)` as work completes."""

    def __init__(self, console: Console, label: str, total: int | None):
        self._progress = Progress(f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                  console=console, transient=True)
        self._task = self._progress.add_task(label, total=total)

    def __enter__(self) -> ProgressBar:
        self._progress.__enter__()
        return self

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)


def key_value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(show_header=False, title=escape(title), title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", escape(value))
    return table


def summary_table(stats: Stats, manifest: Manifest, interrupted: bool) -> Table:
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
    rows += profile_rows(stats)
    steering = stats.steering()
    if steering:
        rows.append(("steering", f"MAE {steering['mae']:.4f}, RMSE {steering['rmse']:.4f} on {steering['n']} frames with ground truth"))
    rows += [("note", note) for note in stats.notes] + [("error", error) for error in stats.errors]
    return key_value_table(f"edgeft run: {manifest.name}" + (" (interrupted)" if interrupted else ""), rows)


def profile_rows(stats: Stats) -> list[tuple[str, str]]:
    """Each thread's stages as 'p50/p99 ms per tick, share of the thread's time', and the bottleneck."""
    from edgeft.runtime.profile import CAPTURE_STAGES, MAIN_STAGES

    stages = stats.profile.summary()
    rows = []
    for label, names in (("capture thread", CAPTURE_STAGES), ("main thread", MAIN_STAGES)):
        shown = [f"{name} {stages[name].p50_ms:.2f}/{stages[name].p99_ms:.2f} ms {stages[name].share:.0%}"
                 for name in names if name in stages]
        if shown:
            rows.append((label, ", ".join(shown)))
    bottleneck = stats.profile.bottleneck()
    return rows + ([("bottleneck", bottleneck)] if bottleneck else [])


def drive_table(stats: DriveStats, bundle: str, signal: int | None) -> Table:
    d = stats.as_dict()
    trip, dec, inf = d["round_trip_ms"], d["decode_ms"], d["inference_ms"]
    stops = ", ".join(f"{n} {reason}" for reason, n in d["safe_stops"].items())
    rows = [
        ("simulator", f"{stats.simulator}: {stats.sessions} connection(s)"),
        ("commands", f"{stats.ticks} in {stats.elapsed_s:.1f} s ({stats.rate:.1f}/s)"),
        ("telemetry", f"{stats.telemetry} frames" + (f", {stats.manual} manual" if stats.manual else "")
                      + (f", {stats.drops} replaced by a newer one before they ran" if stats.drops else "")),
        ("round trip", _percentiles(trip) + " (telemetry in to command out)" if trip else "-"),
        ("decode", _percentiles(dec) if dec else "-"),
        ("inference", _percentiles(inf) + f" ({stats.provider})" if inf else "-"),
        ("safe stops", f"{stats.stopped}" + (f": {stops}" if stops else "")),
    ]
    score = d["score"]
    if score:
        rows.append(("simulator's score", f"mean |cte| {score['mean_abs_cte']:.3f}, max {score['max_abs_cte']:.3f}, "
                                          f"{score['hits']} frames with a collision"))
    if stats.outputs_dropped:
        rows.append(("outputs", f"{stats.outputs_dropped} ticks not written: the outputs could not keep up"))
    rows += [("note", note) for note in stats.notes] + [("error", error) for error in stats.errors]
    ended = f" (stopped by signal {signal})" if signal else ""
    return key_value_table(f"edgeft drive: {bundle}{ended}", rows)


def sim_table(metrics: SimMetrics, signal: int | None) -> Table:
    m = metrics
    rows = [
        ("ended", m.ended + ("" if m.completed else " (not completed)")),
        ("distance", f"{m.distance_m:.1f} m ({m.laps:.2f} laps) in {m.sim_time_s:.1f} s simulated, {m.ticks} commands"),
        ("cross-track error", f"mean {m.mean_abs_cte_m:.3f} m, max {m.max_abs_cte_m:.3f} m"),
        ("off the road", f"{m.off_road_s:.2f} s ({m.off_road_events} times)"),
        ("speed", f"{m.mean_speed_mph:.1f} mph on average"),
    ]
    if m.manual:
        rows.append(("manual", f"{m.manual} replies"))
    return key_value_table("edgeft sim: closed loop on the built-in road" + (f" (stopped by signal {signal})" if signal else ""), rows)


def _percentiles(values: dict[str, float]) -> str:
    return f"p50 {values['p50']:.2f} ms, p90 {values['p90']:.2f} ms, p99 {values['p99']:.2f} ms"


def describe(manifest: Manifest, outputs: dict, top: int = 3) -> str:
    """One result in a few words: the top labels and scores, steering, or a feature summary."""
    decoded = decode(manifest, outputs)
    if decoded.label is not None:
        scores = sorted(enumerate(decoded.values), key=lambda kv: -kv[1])[:max(top, 1)]
        return ", ".join(f"{manifest.labels[i] if manifest.labels else i} {score:.1%}" for i, score in scores)
    if decoded.values:
        return "prediction " + ", ".join(f"{v:.4f}" for v in decoded.values)
    feats = outputs["features"]
    top = feats.reshape(-1).argsort()[::-1][:3]
    return f"features {tuple(feats.shape)}, L2 {float((feats ** 2).sum() ** 0.5):.2f}, strongest channels {list(map(int, top))}"


def manifest_table(path: Path, m: Manifest, loads: str, verified: list[str] = ()) -> Table:
    b, w, i = m.backbone, m.weights, m.input
    rows = [
        ("task", m.task + (f" ({len(m.labels)} labels)" if m.labels else "")),
        ("backbone", f"{b.name} ({b.source}), cut {b.cut or ('classifier kept' if m.extra.get('classifier') else 'classifier dropped')}, "
                     f"pooling {b.pooling}"),
        ("input", f"{i.name}: {i.dtype} {i.layout} {i.color_order} {i.height}x{i.width}, batch {i.batch or 'dynamic'}"),
        ("preprocess", f"{b.preprocess} (folded into the graph)"),
        ("outputs", ", ".join(f"{o.name} {_shape(o.shape)}" for o in m.outputs)),
        ("weights", f"{w.source}: {w.loaded_by}" + (f", file sha256 {w.file_sha256[:16]}…" if w.file_sha256 else "")),
        ("head", f"{m.head.source} (sha256 {m.head.sha256[:16]}…)" if m.head else _classifier(m.extra.get("classifier"))),
        ("parity", "; ".join(f"{p.output} rel {p.max_rel:.1e} abs {p.max_abs:.1e} on {p.probes} probes" for p in m.parity)
                   + f" (tolerance {m.parity_tolerance:g})"),
        ("model", f"opset {m.opset}, sha256 {m.model_sha256[:16]}…" + (f", {m.quantization.method}" if m.quantization else f", {m.precision}")),
        *([("int8", f"{m.quantization.method} for {m.quantization.target or 'an unrecorded CPU'}, calibrated on "
                    f"{m.quantization.calibration_frames} frames of {m.quantization.calibration_source}; vs FP32 on "
                    f"{m.quantization.holdout_frames} held out: " + _agreement(m.quantization.agreement))] if m.quantization else []),
        *([("fp16", f"vs FP32 on {m.fp16.probe_frames} probes, FP16 graph on {m.fp16.checked_on}: " + _agreement(m.fp16.agreement)
                    + "; FP16 storage emulated on CPU: " + _agreement(m.fp16.storage_emulation))] if m.fp16 else []),
        ("proof", f"{m.proof.probes} probes ({m.proof.holdout} held out from INT8 calibration) and FP32 outputs in "
                  f"{m.proof.file}, sha256 {m.proof.sha256[:16]}…" if m.proof else "none carried (exported before the proof travelled)"),
        ("loads", loads),
        *(("verified here", line) for line in verified),
        ("versions", ", ".join(f"{k} {v}" for k, v in m.versions.items())),
        ("created", m.created),
    ]
    return key_value_table(f"bundle {path}", rows)


def bench_all_table(bundle: Path, results: list, cpu: str) -> Table:
    """One row per backend and precision, throughput relative to the first (onnxruntime on the CPU)."""
    ok = [r for r in results if not isinstance(r, str)]
    sizes = list(ok[0].throughput_fps) if ok else []
    base = ok[0].throughput_fps if ok else {}
    table = Table("backend", "precision", "b1 p50 ms", *(f"b{b} frames/s" for b in sizes), "vs first", "agreement",
                  "start-up s", title=f"edgeft bench: {bundle}\nCPU: {cpu}", title_justify="left")
    for r in results:
        if isinstance(r, str):
            table.add_row(r, *[""] * (len(sizes) + 5))
            continue
        agree = ", ".join(f"{k.replace('feature_', '')} {v:.5g}" for k, v in r.agreement.items() if k != "prediction_max_abs_error")
        table.add_row(r.provider, r.precision, f"{r.latency_ms['p50']:.2f}", *(f"{r.throughput_fps[b]:.1f}" for b in sizes),
                      f"{r.throughput_fps[sizes[-1]] / base[sizes[-1]]:.2f}x", agree or "-",
                      f"{r.cold_start_s.get('to_first_result_s', float('nan')):.2f}")
    return table


def bench_table(bundle: Path, result) -> Table:
    table = Table(show_header=False, title=f"edgeft bench: {bundle} ({result.input}, {result.provider} {result.precision}"
                  f"{', IO binding' if result.io_binding else ''})", title_justify="left")
    lat, cold = result.latency_ms, result.cold_start_s
    table.add_row("latency b1", f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms")
    for size, fps in result.throughput_fps.items():
        gflops = f", {result.gflops_per_s[size]:.1f} GFLOP/s" if result.gflops_per_frame else ""
        table.add_row(f"throughput b{size}", f"{fps:.1f} frames/s{gflops}")
    table.add_row("model FLOPs", f"{result.gflops_per_frame:.2f} GFLOP/frame" if result.gflops_per_frame else "n/a (needs the onnx package)")
    table.add_row("peak memory", f"{result.peak_rss_mb:.0f} MB RSS")
    table.add_row("cold start", f"{cold['to_first_result_s']:.2f} s to the first result (import {cold['import_s']:.2f} + "
                                f"session {cold['session_s']:.2f} + first frame {cold['first_frame_s']:.2f})")
    if result.agreement:
        table.add_row("verified", ", ".join(f"{k} {v:.6g}" for k, v in result.agreement.items()))
    return table


def _classifier(kept: dict | None) -> str:
    if not kept:
        return "none"
    return f"the classifier kept ({kept['kept']}), reading the features after {kept['split_after']}" + \
        (f"; labels from {kept['labels']}" if kept.get("labels") else "")


def _shape(shape: tuple) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _agreement(agreement: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.6f}" for k, v in agreement.items())
