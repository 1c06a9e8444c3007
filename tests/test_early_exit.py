"""Leaving a pipeline loop early, the embedding pattern of docs/embedding.md, on every source kind: threads
are joined before sources are released, so the process neither crashes nor hangs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import EdgeftError, Engine, Pipeline, PipelineConfig, SourceOptions, open_source
from edgeft.runtime.sources import Frame, Source

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

RUNS = 50
EARLY_EXIT = textwrap.dedent("""
    import sys
    from edgeft.runtime import Engine, Pipeline, SourceOptions, open_source
    engine = Engine.load(sys.argv[1], threads=1)
    options = SourceOptions(rate=float(sys.argv[3]) if sys.argv[3] != "-" else None, loop=sys.argv[4] == "loop")
    with open_source(sys.argv[2], options) as source:
        for result in Pipeline(source, engine):
            break
    print("clean", result.frame)
""")


def write_video(path: Path, frames: int = 60, size=(64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * 4 % 256, np.uint8))
    writer.release()
    return path


def write_images(folder: Path, count: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((24, 32, 3), i * 20, np.uint8))
    return folder


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("exit") / "tiny")


@pytest.fixture
def engine(bundle) -> Engine:
    return Engine.load(bundle, threads=1)


@pytest.mark.parametrize("kind", ["paced video", "looped image folder"])
def test_breaking_out_50_times_never_crashes_or_hangs(bundle, tmp_path, kind) -> None:
    spec, rate, loop = (write_video(tmp_path / "clip.avi"), "30", "-") if kind == "paced video" \
        else (write_images(tmp_path / "images"), "-", "loop")

    def once(_: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", EARLY_EXIT, str(bundle), str(spec), rate, loop],
                              capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(once, range(RUNS)))
    bad = [(r.returncode, r.stderr[-300:]) for r in runs if r.returncode != 0 or "clean" not in r.stdout]
    assert not bad, f"{len(bad)} of {RUNS} runs ended badly: {bad[:3]}"


class Gate(Source):
    """A live source whose reads block until released: a camera in the middle of a frame."""

    live = True

    def __init__(self):
        super().__init__("gate", "gate", SourceOptions())
        self.reading = threading.Event()
        self.release = threading.Event()
        self.closed_while_reading = False
        self.count = 0

    def _open(self) -> None:
        pass

    def read(self):
        self.reading.set()
        self.release.wait(0.05)
        self.count += 1
        return [Frame("gate", self.count, np.zeros((8, 12, 3), np.uint8))]

    def _close(self) -> None:
        self.closed_while_reading |= self.reading.is_set() and not self.release.is_set() and threading.active_count() > 1


def test_capture_threads_are_joined_when_the_loop_is_left(engine) -> None:
    source = Gate().open()
    pipeline = Pipeline(source, engine)
    for _ in pipeline:
        break
    assert not any(c.is_alive() for c in pipeline._captures)  # joined before the loop statement ends
    assert pipeline.stats.ended is not None
    source.close()


@pytest.mark.parametrize("how", ["exception", "close", "max_ticks", "end of stream", "context manager"])
def test_every_way_out_joins_the_threads(engine, tmp_path, how) -> None:
    images = write_images(tmp_path / "images")
    source = open_source(str(images), SourceOptions(loop=how != "end of stream"))
    pipeline = Pipeline(source, engine, PipelineConfig(max_ticks=3 if how == "max_ticks" else None))
    if how == "exception":
        with pytest.raises(RuntimeError):
            for _ in pipeline:
                raise RuntimeError("the caller failed")
    elif how == "close":
        results = iter(pipeline)
        next(results)
        pipeline.close()
    elif how == "context manager":
        with pipeline as results:
            next(iter(results))
    else:
        assert len(list(pipeline)) == (3 if how == "max_ticks" else 8)
    assert pipeline._captures and not any(c.is_alive() for c in pipeline._captures)
    source.close()


def test_closing_a_source_waits_for_a_read_in_progress(engine) -> None:
    """Even when a caller releases the source while the pipeline's thread is still reading
    (the pipeline was never closed), the release waits for the read instead of pulling the
    capture out from under it."""
    source = Gate().open()
    results = iter(Pipeline(source, engine))
    next(results)
    source.reading.clear()
    assert source.reading.wait(5)
    closer = threading.Thread(target=source.close)
    closer.start()
    time.sleep(0.02)
    source.release.set()
    closer.join(5)
    assert not closer.is_alive() and not source.closed_while_reading
    del results


class Exploding(Source):
    live = False

    def __init__(self):
        super().__init__("boom", "boom", SourceOptions())

    def _open(self) -> None:
        pass

    def read(self):
        raise ValueError("a decoder bug")


def test_a_capture_thread_that_dies_ends_the_run_instead_of_hanging(engine) -> None:
    pipeline = Pipeline(Exploding(), engine)
    assert list(pipeline) == []
    assert "boom: capture failed (ValueError: a decoder bug)" in pipeline.stats.errors[-1]


def test_a_pipeline_runs_once(engine, tmp_path) -> None:
    pipeline = Pipeline(open_source(str(write_images(tmp_path / "images"))), engine)
    list(pipeline)
    with pytest.raises(EdgeftError, match="runs once"):
        list(pipeline)


@pytest.mark.parametrize("kind", ["video", "paced video", "images", "driving log"])
def test_max_frames_zero_is_a_clean_empty_run(bundle, tmp_path, kind) -> None:
    if kind == "driving log":
        edgeft("sample", tmp_path / "drive", "--frames", 3)
        spec, extra = tmp_path / "drive" / "driving_log.csv", []
    elif kind == "images":
        spec, extra = write_images(tmp_path / "images"), ["--loop"]
    else:
        spec, extra = write_video(tmp_path / "clip.avi"), ["--rate", "30"] if kind == "paced video" else []
    for _ in range(3):
        proc = edgeft("run", "--model", bundle, "--source", spec, *extra, "--max-frames", 0, "--quiet")
        assert proc.returncode == 0, proc.stderr
        assert "frames" in proc.stdout and "Traceback" not in proc.stderr
