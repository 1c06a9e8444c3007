"""What `compare` writes: compare.json (everything), compare.csv (one row per candidate) and
compare.png (probe score vs batch-1 latency, with the bootstrap intervals and the Pareto front)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from edgeft.runtime import EdgeftError

from .compare import Comparison
from .ranking import Row

OUTPUTS = ("compare.json", "compare.csv", "compare.png")
COLUMNS = ["rank", "candidate", "backbone", "weights", "input", "precision", "metric", "probe", "probe_low", "probe_high",
           "tied_with_best", "pareto", "probe_setting", "knn", "knn_setting", "logme", "dims", "params", "gflops", "bundle_mb",
           "latency_p50_ms", "latency_p90_ms", "throughput_b1_fps", "throughput_b8_fps", "peak_rss_mb", "provider", "bundle"]


def check_outputs(out: Path, force: bool) -> None:
    """An earlier comparison's results are replaced only with --force (its caches are always reused)."""
    if out.exists() and not out.is_dir():
        raise EdgeftError(f"--out '{out}' is a file: give a folder")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not force:
        raise EdgeftError(f"'{out}' already holds {', '.join(existing)}: pass --force to replace them (the bundles and "
                          "features it cached are reused either way), or pick another --out")


def row_record(position: int, row: Row) -> dict:
    bench = row.bench
    fps = {str(k): v for k, v in bench["throughput_fps"].items()}
    return {
        "rank": position, "candidate": row.label, **row.spec, "metric": row.probe.metric, "probe": row.probe.score,
        "probe_low": row.interval[0], "probe_high": row.interval[1], "tied_with_best": row.tied, "pareto": row.pareto,
        "probe_setting": row.probe.chosen, "knn": row.knn.score, "knn_setting": row.knn.chosen, "logme": row.logme.score,
        "dims": row.dims, "params": row.params, "gflops": row.gflops, "bundle_mb": round(row.bundle_mb, 3),
        "latency_p50_ms": bench["latency_ms"]["p50"], "latency_p90_ms": bench["latency_ms"]["p90"],
        "throughput_b1_fps": fps.get("1"), "throughput_b8_fps": fps.get("8"), "peak_rss_mb": bench["peak_rss_mb"],
        "provider": bench["provider"], "bundle": row.bundle,
    }


def to_json(result: Comparison) -> dict:
    return {
        "dataset": result.dataset, "task": result.task, "metric": result.metric, "split": result.split,
        "device": result.device, "cpu": result.cpu, "recommendation": result.recommendation,
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "candidates": [{**row_record(i, row), "features": row.features, "logme_converged": row.logme.converged,
                        "probe_val": row.probe.val_score, "knn_val": row.knn.val_score,
                        "seconds": {k: round(v, 2) for k, v in row.seconds.items()}} for i, row in enumerate(result.rows, 1)],
    }


def write_outputs(result: Comparison, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    records = [row_record(i, row) for i, row in enumerate(result.rows, 1)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    _atomic(out / "compare.json", json.dumps(_finite(to_json(result)), indent=2, allow_nan=False) + "\n")
    _atomic(out / "compare.csv", buffer.getvalue())
    plot(result, out / "compare.png")
    return [out / name for name in OUTPUTS]


def _finite(value: object) -> object:
    """JSON has no NaN or infinity (an R2 of a constant test target): such values are written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def plot(result: Comparison, path: Path) -> None:
    """Probe score (with its 95% bootstrap interval) against batch-1 latency; the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in result.rows if math.isfinite(r.probe.score)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rank, row in enumerate(rows, 1):
        low, high = row.interval
        colour = "tab:blue" if row.pareto else "tab:gray"
        ax.errorbar(row.latency, row.probe.score, yerr=[[row.probe.score - low], [high - row.probe.score]], fmt="o",
                    color=colour, capsize=4, markerfacecolor=colour if row.tied else "white", label=f"{rank}. {row.label}")
        ax.annotate(str(rank), (row.latency, row.probe.score), textcoords="offset points", xytext=(6, 4), fontsize=9)
    front = sorted((r for r in rows if r.pareto), key=lambda r: r.latency)
    ax.step([r.latency for r in front], [r.probe.score for r in front], where="post", color="tab:blue", alpha=0.5,
            label="Pareto front (quality x latency)")
    latencies = [r.latency for r in rows]
    if latencies and max(latencies) > 8 * min(latencies):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(f"batch-1 latency p50, ms ({result.device}: {', '.join(sorted({r.bench['provider'] for r in result.rows}))})")
    ax.set_ylabel(f"linear probe {result.metric} (test, 95% bootstrap CI)")
    ax.set_title(f"{Path(result.dataset).name}: filled = within the CI of the best, blue = on the front", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=8, ncol=1, frameon=False)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
