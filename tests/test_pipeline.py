"""Pipeline policies and sinks on the hand-built bundle: exact, fast, no TensorFlow."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine, Pipeline, PipelineConfig
from edgeft.runtime.errors import EdgeftError
from edgeft.runtime.sinks import FeatureSink, PredictionWriter, SinkOptions, VideoSink
from edgeft.runtime.sources import Frame, Source, SourceOptions, open_source

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402


@pytest.fixture
def engine(tmp_path) -> Engine:
    return Engine.load(write_tiny_bundle(tmp_path / "tiny"), threads=1)


class FakeCamera(Source):
    """A live source delivering a new frame every `period` seconds, pixel value = frame number."""

    live = True

    def __init__(self, name: str = "cam", period: float = 0.002, shape=(8, 12, 3)):
        super().__init__(name, name, SourceOptions())
        self.period, self.shape, self.produced = period, shape, 0

    def _open(self) -> None:
        pass

    def read(self):
        time.sleep(self.period)
        self.produced += 1
        return [Frame(self.name, self.produced - 1, np.full(self.shape, self.produced % 256, np.uint8))]


def slow(engine: Engine, seconds: float, calls: list | None = None) -> Engine:
    """Make inference take `seconds` per call (the 'slow model'), recording batch sizes."""
    run = engine.run

    def slowed(batch):
        if calls is not None:
            calls.append(len(batch))
        time.sleep(seconds)
        return run(batch)

    engine.run = slowed
    return engine


def test_live_source_keeps_the_newest_frame_and_counts_drops(engine) -> None:
    camera = FakeCamera(period=0.002)
    pipeline = Pipeline(camera, slow(engine, 0.03), PipelineConfig(max_ticks=15))
    results = list(pipeline)
    ids = [r.frame for r in results]
    assert len(results) == 15 and ids == sorted(set(ids))
    assert pipeline.stats.drops > 0 and np.mean(np.diff(ids)) > 2  # it skipped ahead to fresh frames
    # every frame the camera produced was either run, dropped, or still in flight at the stop
    assert len(results) + pipeline.stats.drops <= camera.produced <= len(results) + pipeline.stats.drops + 3
    for r in results:  # and the output belongs to that very frame
        assert r.outputs["features"][0] == pytest.approx((r.frame + 1) % 256)


def test_finite_source_never_drops_even_with_a_slow_model(engine, tmp_path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (48, 32))
    for i in range(20):
        writer.write(np.full((32, 48, 3), i * 12, np.uint8))
    writer.release()
    pipeline = Pipeline(open_source(str(video)), slow(engine, 0.01))
    results = list(pipeline)
    assert [r.frame for r in results] == list(range(20))
    assert pipeline.stats.drops == 0
    np.testing.assert_allclose([r.outputs["features"][0] for r in results], [i * 12 for i in range(20)], atol=3)


def test_rig_tick_is_one_inference_call(engine) -> None:
    calls: list[int] = []
    rig = [FakeCamera("left"), FakeCamera("right")]
    results = list(Pipeline(rig, slow(engine, 0.0, calls), PipelineConfig(max_ticks=6)))
    assert calls == [2] * 6
    assert [r.source for r in results] == ["left", "right"] * 6


def test_micro_batching_of_file_sources(engine, tmp_path) -> None:
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((8, 12, 3), i, np.uint8))
    calls: list[int] = []
    results = list(Pipeline(open_source(str(tmp_path)), slow(engine, 0.0, calls), PipelineConfig(batch=4)))
    assert calls == [4, 4, 2]
    assert [r.frame for r in results] == list(range(10))


class OddFrames(Source):
    live = False

    def __init__(self):
        super().__init__("odd", "odd", SourceOptions())
        self.frames = [np.zeros((8, 12, 3), np.uint8), np.zeros((8, 12, 2), np.uint8), np.full((3, 3), 9, np.uint8)]

    def _open(self) -> None:
        pass

    def read(self):
        return [Frame("odd", len(self.frames), self.frames.pop(0))] if self.frames else None


def test_unusable_frames_become_invalid_results_not_made_up_inputs(engine) -> None:
    pipeline = Pipeline(OddFrames(), engine)
    results = list(pipeline)
    assert [r.valid for r in results] == [True, False, True]
    assert "cannot use a frame of shape (8, 12, 2)" in results[1].reason and results[1].outputs == {}
    assert results[2].outputs["features"] == pytest.approx([9, 9, 9])
    assert pipeline.stats.invalid == 1


def test_stop_from_another_thread_ends_a_live_run(engine) -> None:
    pipeline = Pipeline(FakeCamera(), engine)
    threading.Timer(0.3, pipeline.stop).start()
    assert len(list(pipeline)) > 0 and pipeline.stats.ended is not None


def run_into(engine, source, sinks) -> list:
    results = []
    for r in Pipeline(source, engine):
        for sink in sinks:
            sink.write(r)
        results.append(r)
    for sink in sinks:
        sink.close()
    return results


def test_prediction_files_jsonl_and_csv(engine, tmp_path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 12, 3), (200, 0, 0) if i % 2 else (0, 0, 200), np.uint8))
    sinks = [PredictionWriter(tmp_path / "p.jsonl", engine.manifest), PredictionWriter(tmp_path / "p.csv", engine.manifest)]
    run_into(engine, open_source(str(tmp_path)), sinks)
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["red", "blue", "red"] and all(r["valid"] for r in rows)
    assert {"frame", "source", "t_capture", "latency_ms", "prediction", "score"} <= set(rows[0])
    table = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["label"] for r in table] == ["red", "blue", "red"] and len(table[0]["prediction"].split()) == 2
    with pytest.raises(EdgeftError, match="must end in .jsonl or .csv"):
        PredictionWriter(tmp_path / "p.txt", engine.manifest)


def load_features(folder: Path) -> dict[tuple[str, int], np.ndarray]:
    shards: dict[str, np.ndarray] = {}
    found = {}
    for row in csv.DictReader(open(folder / "index.csv")):
        shard = shards.setdefault(row["shard"], np.load(folder / row["shard"]))
        found[(row["source"], int(row["frame"]))] = shard[int(row["row"])]
    return found


def test_feature_shards_reload_equal_to_direct_predict(engine, tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    frames = [rng.integers(0, 256, (24, 30, 3), dtype=np.uint8) for _ in range(7)]
    for i, f in enumerate(frames):
        cv2.imwrite(str(images / f"{i}.png"), f)
    run_into(engine, open_source(str(images)), [FeatureSink(tmp_path / "feat", engine.manifest, SinkOptions(rows_per_shard=3))])
    assert sorted(p.name for p in (tmp_path / "feat").glob("shard-*.npy")) == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    meta = json.loads((tmp_path / "feat" / "features.json").read_text())
    assert meta["model_sha256"] == engine.manifest.model_sha256
    stored = load_features(tmp_path / "feat")
    for i, f in enumerate(frames):
        np.testing.assert_allclose(stored[("images", i)], engine.predict(f)["features"], rtol=1e-6)
    with pytest.raises(EdgeftError, match="already holds features: pass --resume to continue it, --force to replace it"):
        FeatureSink(tmp_path / "feat", engine.manifest)


def test_annotated_video_sink(engine, tmp_path) -> None:
    rig = [FakeCamera("center", shape=(60, 80, 3)), FakeCamera("left", shape=(60, 80, 3))]
    sink = VideoSink(tmp_path / "out.mp4", engine.manifest, SinkOptions(fps=10))
    for r in Pipeline(rig, engine, PipelineConfig(max_ticks=5)):
        sink.write(r)
    sink.close()
    video = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5  # the first camera only
    ok, frame = video.read()
    assert ok and frame.shape == (60, 80, 3)
    assert frame.std() > 5  # the label text is drawn on the flat frame
