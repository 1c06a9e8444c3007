"""The per-stage profile: each thread's stages add up to its measured time, the slow stage is
the one named, and `run` shows it (table and --json). Slowness is synthetic (sleeps far longer
than the tiny model's inference); only shares and sums are asserted, never speeds."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine, Pipeline, SourceOptions, run
from edgeft.runtime.cpu import cpu_info
from edgeft.runtime.profile import CAPTURE_STAGES, MAIN_STAGES
from edgeft.runtime.sources import Frame, Source
from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

TICKS, SLOW_S = 16, 0.03


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine.load(write_tiny_bundle(tmp_path_factory.mktemp("profile") / "tiny"), threads=1)


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    rng = np.random.default_rng(0)
    return [cv2.imencode(".jpg", rng.integers(0, 255, (48, 64, 3), np.uint8))[1].tobytes() for _ in range(TICKS)]


class Recorded(Source):
    """A finite source of JPEG payloads, decoded through the source's pool, `decode_s` each."""

    def __init__(self, payloads: list[bytes], decode_s: float = 0.0):
        super().__init__("cam", "recorded", SourceOptions())
        self.payloads, self.decode_s = payloads, decode_s

    def _open(self) -> None:
        self.position = 0

    def read(self):
        if self.position >= len(self.payloads):
            return None
        self.position += 1
        image = self.decoder.map(self._decode, [self.payloads[self.position - 1]])[0]
        return [Frame(self.name, self.position - 1, image)]

    def _decode(self, data: bytes) -> np.ndarray:
        time.sleep(self.decode_s)
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


class SlowSink:
    def __init__(self, seconds: float):
        self.seconds, self.written = seconds, 0

    def write(self, result) -> None:
        time.sleep(self.seconds)
        self.written += 1

    def close(self) -> None: ...

    def discard(self) -> None: ...


def profiled(engine: Engine, source: Source, sinks=()) -> tuple[dict, float, Pipeline]:
    pipeline = Pipeline(source, engine)
    start = time.perf_counter()
    outcome = run(pipeline, sinks, handle_signals=False)
    wall = time.perf_counter() - start
    assert outcome.error is None and outcome.stats.frames == TICKS
    return pipeline.stats.profile.summary(), wall, pipeline


def thread_time(stages: dict, names: tuple[str, ...]) -> float:
    return sum(stages[s].total_s for s in names if s in stages)


def test_a_slow_sink_is_named_and_the_main_thread_adds_up(engine, jpegs) -> None:
    sink = SlowSink(SLOW_S)
    stages, wall, pipeline = profiled(engine, Recorded(jpegs), [sink])
    assert sink.written == TICKS
    assert thread_time(stages, MAIN_STAGES) == pytest.approx(wall, rel=0.1)  # the main thread's stages are its time
    assert stages["sinks"].share > 0.8 and stages["sinks"].samples == TICKS
    assert stages["hand-off"].share > 0.5  # the capture thread spent its time waiting for room in the queue
    assert thread_time(stages, CAPTURE_STAGES) <= wall
    assert pipeline.stats.profile.bottleneck().startswith("sinks-bound: sinks is ")


def test_a_slow_decoder_is_named_and_both_threads_add_up(engine, jpegs) -> None:
    stages, wall, pipeline = profiled(engine, Recorded(jpegs, decode_s=SLOW_S))
    assert thread_time(stages, MAIN_STAGES) == pytest.approx(wall, rel=0.1)
    assert thread_time(stages, CAPTURE_STAGES) == pytest.approx(wall, rel=0.15)  # the capture thread ran all along
    assert stages["decode"].share > 0.8 and stages["decode"].samples == TICKS
    assert stages["decode"].p50_ms >= SLOW_S * 1000 * 0.95
    assert stages["wait"].share > 0.8
    line = pipeline.stats.profile.bottleneck()
    assert line.startswith("decode-bound: decode is ") and "inference waited for frames" in line
    assert "pace" not in stages  # no --rate: nothing paced, nothing shown


def test_the_profile_is_bounded_in_memory(engine, jpegs) -> None:
    _, _, pipeline = profiled(engine, Recorded(jpegs))
    before = sum(h._counts.nbytes for h in pipeline.stats.profile._histograms.values())
    for _ in range(10_000):
        pipeline.stats.profile.add(read=1.0, decode=2.0, wait=3.0)
    assert sum(h._counts.nbytes for h in pipeline.stats.profile._histograms.values()) == before


def test_run_names_the_bottleneck_and_prints_json(tmp_path, photos_bgr) -> None:
    bundle = write_tiny_bundle(tmp_path / "tiny")
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, photo in enumerate(photos_bgr[:4]):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.resize(photo, (1280, 720)))
    table = edgeft("run", "--model", bundle, "--source", folder, "--quiet")
    assert table.returncode == 0, table.stderr
    assert "bottleneck" in table.stdout and "capture thread" in table.stdout and "-bound:" in table.stdout
    proc = edgeft("run", "--model", bundle, "--source", folder, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 4 and summary["decode"] == "reduced" and summary["model"] == "tiny"
    stages = summary["profile"]["stages"]
    assert {"read", "decode", "resize", "hand-off", "wait", "inference", "results", "sinks"} <= set(stages)
    assert all(stage["samples"] >= 4 and stage["p99_ms"] >= stage["p50_ms"] for stage in stages.values())
    assert "-bound: " in summary["profile"]["bottleneck"]
    assert summary["decode_workers"] == [max(1, cpu_info().cores - summary["inference_threads"])]  # the cores left
    pooled = edgeft("run", "--model", bundle, "--source", folder, "--json", "--threads", "1", "--decode-workers", "3")
    assert json.loads(pooled.stdout)["inference_threads"] == 1 and json.loads(pooled.stdout)["decode_workers"] == [3]
    video = edgeft("run", "--model", bundle, "--source", folder, "--json", "--save-video", tmp_path / "out.mp4")
    assert video.returncode == 0 and json.loads(video.stdout)["decode"] == "full"  # drawn frames stay full size
    forced = edgeft("run", "--model", bundle, "--source", folder, "--json", "--decode", "reduced", "--save-video", tmp_path / "o2.mp4")
    assert json.loads(forced.stdout)["decode"] == "reduced"
    assert cv2.VideoCapture(str(tmp_path / "o2.mp4")).read()[1].shape[:2] == (180, 320)  # 720p at 1/4 for an 8x12 model


@pytest.mark.parametrize("args, message", [(("--decode", "half"), "--decode must be auto, reduced or full"),
                                           (("--decode-workers", "0"), "--decode-workers must be at least 1")])
def test_bad_decode_options_are_one_line(tmp_path, args, message) -> None:
    bundle = write_tiny_bundle(tmp_path / "tiny")
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    proc = edgeft("run", "--model", bundle, "--source", tmp_path / "a.jpg", *args)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

