"""The pipeline at the model's speed: end to end against pure inference, before and after reduced
decode and the decode pool's sizing, with the stage profile, side by side in one run.

    .venv/bin/python benchmarks/pipeline_speed.py [--ticks 150] [--rounds 3] [--device auto] [--threads N]
        [--models mobilenetv2:160x320:real mobilenetv2:224:real inceptionv3:299] [--video-model mobilenetv2:224:real]

Bag: three 1280x720 JPEG cameras (q92, real footage upscaled; `bags.write_bag`). Video: 720p
H.264 of native 720p footage (`video_threads.make_clip`). *Pure*: the same frames already decoded
and resized, one rig tick (3 frames; 1 for video) per `Engine.run`, as the pipeline calls it.
*Before*: `--decode full --decode-workers 1` (what edgeft did). *Pool*: reduced JPEG decode on
a pool of one thread per core (`--decode-workers` = the cores: the default until the pool took
only the cores inference leaves). *After*: the defaults (reduced decode, the cameras of a tick on
the cores inference leaves free: serial where it runs on every core). Each round measures pure
and the arms in turn; the table gives the median round, and the ratios are to that round's pure.
*CPU ms/frame* is the process's CPU time per frame (all threads): pure over end to end is what
end to end / pure would be on two cores nobody else uses, if nothing but CPU time limited it
(a ceiling for a loaded machine, not a measurement of a quiet one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bags import first_frames, write_bag  # noqa: E402
from common import cpu_line  # noqa: E402
from decode_agreement import bundle_for  # noqa: E402
from video_threads import make_clip  # noqa: E402

from edgeft.runtime import Engine, Pipeline, PipelineConfig, SourceOptions, open_source  # noqa: E402
from edgeft.runtime.cpu import cpu_info  # noqa: E402
from edgeft.runtime.preprocess import prepare_batch  # noqa: E402

ARMS = {"before": ("full", 1), "pool": ("reduced", cpu_info().cores), "after": ("reduced", None)}  # (--decode, --decode-workers)


def pure_fps(engine: Engine, frames: list, per_call: int) -> tuple[float, float]:
    """(frames/s, process CPU ms per frame) of Engine.run on prepared batches."""
    batches = [prepare_batch(frames[i : i + per_call], engine.manifest.input) for i in range(0, len(frames) - per_call + 1, per_call)]
    for batch in batches[:5]:
        engine.run(batch)
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        engine.run(batch)
    count = len(batches) * per_call
    return count / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / count


def stream(engine: Engine, spec: str, ticks: int, arm: str) -> tuple[float, float, str, str]:
    """(frames/s, process CPU ms per frame, the stages' shares, the bottleneck line) of one run."""
    decode, workers = ARMS[arm]
    cpu = time.process_time()
    with open_source(spec, SourceOptions(decode_workers=workers)) as source:
        pipeline = Pipeline(source, engine, PipelineConfig(decode=decode, max_ticks=ticks))
        for _ in pipeline:
            pass
    stages = pipeline.stats.profile.summary()
    shares = ", ".join(f"{name} {s.p50_ms:.2f} ms {s.share:.0%}" for name, s in stages.items() if s.share >= 0.03)
    cpu_ms = 1000 * (time.process_time() - cpu) / max(1, pipeline.stats.frames)
    return pipeline.stats.fps, cpu_ms, shares, pipeline.stats.profile.bottleneck() or ""


def measure(label: str, bundle: Path, spec: str, frames: list, per_call: int, ticks: int, rounds: int, device: str,
            threads: int | None) -> None:
    engine = Engine.load(bundle, device=device, threads=threads)
    stream(engine, spec, min(ticks, 20), "after")  # warm the page cache, the session and the decode pool
    runs = []
    for _ in range(rounds):
        pure = pure_fps(engine, frames, per_call)
        runs.append((pure, {arm: stream(engine, spec, ticks, arm) for arm in ARMS}))
    (pure, pure_cpu), arms = sorted(runs, key=lambda r: r[1]["after"][0] / r[0][0])[len(runs) // 2]
    spread = {arm: [r[1][arm][0] / r[0][0] for r in runs] for arm in ARMS}
    for arm, (fps, cpu, shares, bottleneck) in arms.items():
        span = f"{min(spread[arm]):.0%}–{max(spread[arm]):.0%}"
        print(f"| {label} | {engine.provider} | {arm} | {pure:.1f} | {fps:.1f} | **{fps / pure:.0%}** ({span}) | {pure_cpu:.2f} / {cpu:.2f} "
              f"= {pure_cpu / cpu:.0%} | {shares} | {bottleneck} | {os.getloadavg()[0]:.1f} |", flush=True)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="inference threads, pure and end to end (default: the backend's, one per core)")
    parser.add_argument("--models", nargs="+", default=["mobilenetv2:160x320:real", "mobilenetv2:224:real", "inceptionv3:299"])
    parser.add_argument("--video-model", default="mobilenetv2:224:real")
    parser.add_argument("--gigabytes", type=float, default=0.15)
    args = parser.parse_args()
    bag = write_bag(args.gigabytes)
    frames = first_frames(bag, args.ticks)
    video = make_clip("h264", 720, 3 * args.ticks)
    print(f"CPU: {cpu_line()}; load average before: {os.getloadavg()[0]:.2f}")
    print(f"bag: {bag.name}, 3 x 1280x720 JPEG; video: {video.name}; {args.ticks} ticks per run, median of {args.rounds} rounds; "
          f"inference threads: {args.threads or 'one per core'}\n")
    print("| input | backend | arm | pure frames/s | end to end frames/s | end to end / pure (all rounds) | CPU ms/frame, pure / end to end | stages (p50 per tick, share "
          "of its thread; >= 3%) | bottleneck | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for item in args.models:
        _, bundle = bundle_for(item)
        measure(f"bag, {item}", bundle, str(bag), frames, 3, args.ticks, args.rounds, args.device, args.threads)
    _, bundle = bundle_for(args.video_model)
    measure(f"720p H.264 video, {args.video_model}", bundle, str(video), _video_frames(video, 3 * args.ticks), 1, 3 * args.ticks,
            args.rounds, args.device, args.threads)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def _video_frames(video: Path, count: int) -> list:
    import cv2

    capture, frames = cv2.VideoCapture(str(video)), []
    while len(frames) < count and (ok := capture.read())[0]:
        frames.append(ok[1])
    return frames


if __name__ == "__main__":
    main()
