"""Reduced JPEG decode (DCT scaling to the model's input) and multi-camera decode side by side:
the factor chosen for each model and frame size, agreement with full decode on real frames,
and the same frames in the same order whether a tick decodes serially or on the pool."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine, Pipeline, PipelineConfig, SourceOptions, open_source
from edgeft.runtime.sources import DecodePool, FrameReader, decode_reduced, jpeg_size, reduction
from edgeft.runtime.sources.images import decode_bytes
from edgeft.runtime.sources.rosimage import compressed_to_bgr
from helpers import cosine, free_port, open_when_up

# What docs/run.md and RESULTS document for MobileNetV2 features with real weights, reduced vs full decode + resize.
MEAN_COSINE, MIN_COSINE = 0.99, 0.98


def jpeg(image: np.ndarray, **params: int) -> bytes:
    flags = [v for kv in ((getattr(cv2, k), v) for k, v in params.items()) for v in kv]
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90, *flags])[1].tobytes()


@pytest.fixture(scope="module")
def frames_720p(carphone, photos_bgr) -> list[bytes]:
    """Real footage and photos brought to 1280x720 and encoded as a camera would (JPEG q90)."""
    capture, frames = cv2.VideoCapture(str(carphone)), []
    for number in range(120):
        ok, frame = capture.read()
        if ok and number % 12 == 0:
            frames.append(frame)
    frames += photos_bgr
    return [jpeg(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC)) for f in frames]


@pytest.mark.parametrize("frame, fit, factor", [
    ((720, 1280), (224, 224), 2), ((720, 1280), (160, 320), 4), ((720, 1280), (299, 299), 2), ((720, 1280), (96, 192), 4),
    ((720, 1280), (90, 160), 4), ((720, 1280), (45, 80), 4), ((160, 320), (160, 320), 1), ((320, 160), (160, 320), 1),
    ((1080, 1920), (224, 224), 4), ((480, 640), (224, 224), 2), ((100, 100), (224, 224), 1), ((720, 1280), None, 1)])
def test_the_largest_reduction_that_keeps_both_axes_at_the_input(frame, fit, factor) -> None:
    assert reduction(frame, fit) == factor


def test_one_eighth_only_when_asked() -> None:
    assert reduction((720, 1280), (90, 160), largest=8) == 8 and reduction((720, 1280), (91, 160), largest=8) == 4
    assert reduction((720, 1280), (90, 160), largest=2) == 2


@pytest.mark.parametrize("fit, shape", [((224, 224), (360, 640)), ((160, 320), (180, 320)), ((90, 160), (180, 320)),
                                        ((720, 1280), (720, 1280))])
def test_a_720p_jpeg_decodes_at_its_reduction(photos_bgr, fit, shape) -> None:
    data = np.frombuffer(jpeg(cv2.resize(photos_bgr[0], (1280, 720))), np.uint8)
    assert jpeg_size(data) == (720, 1280)
    image = decode_reduced(data, fit)
    assert (image is None) == (shape == (720, 1280))  # nothing to reduce: the caller decodes in full
    if image is not None:
        assert image.shape == (*shape, 3) and image.dtype == np.uint8
    decoded, cut = decode_bytes(data.tobytes(), fit)
    assert cut is None and decoded.shape[:2] == shape
    assert compressed_to_bgr(data, fit).shape[:2] == shape  # ROS CompressedImage: the same rule


def test_header_sizes_of_every_kind_of_jpeg(photos_bgr) -> None:
    odd = photos_bgr[2][:401, :509]  # a size no reduction divides: libjpeg rounds up, so does the rule
    for data in (jpeg(odd), jpeg(odd, IMWRITE_JPEG_PROGRESSIVE=1), jpeg(cv2.cvtColor(odd, cv2.COLOR_BGR2GRAY)),
                 jpeg(odd, IMWRITE_JPEG_OPTIMIZE=1, IMWRITE_JPEG_RST_INTERVAL=4)):
        assert jpeg_size(data) == (401, 509)
        assert decode_reduced(np.frombuffer(data, np.uint8), (100, 120)).shape == (101, 128, 3)  # ceil(401/4), ceil(509/4)
    png = cv2.imencode(".png", odd)[1]
    assert jpeg_size(png) is None and decode_reduced(png, (100, 120)) is None  # not JPEG: decoded in full, as before
    assert jpeg_size(b"\xff\xd8\xff\xe0\x00") is None and jpeg_size(b"") is None  # cut short, empty


def test_reduced_decode_agrees_with_full_decode_on_real_frames(steering_bundle, frames_720p, tmp_path) -> None:
    """Real MobileNetV2 features (96x192: 720p decodes at 1/4) through the pipeline, both ways."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, data in enumerate(frames_720p):
        (folder / f"{i:03d}.jpg").write_bytes(data)
    engine = Engine.load(steering_bundle, device="cpu")
    features, sizes = {}, {}
    for mode in ("full", "reduced"):
        with open_source(str(folder)) as source:
            results = list(Pipeline(source, engine, PipelineConfig(decode=mode)))
        features[mode] = [r.outputs["features"] for r in results]
        sizes[mode] = {r.image.shape[:2] for r in results}
    assert sizes == {"full": {(720, 1280)}, "reduced": {(180, 320)}}
    cosines = [cosine(a, b) for a, b in zip(features["reduced"], features["full"])]
    assert len(cosines) == len(frames_720p)
    assert np.mean(cosines) >= MEAN_COSINE and min(cosines) >= MIN_COSINE, cosines


def test_frame_reader_decodes_for_its_fit(tmp_path, photos_bgr) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg(cv2.resize(photos_bgr[0], (1280, 720))))
    assert FrameReader().read([str(path)])[0].shape == (720, 1280, 3)
    assert FrameReader((224, 224)).read([str(path)])[0].shape == (360, 640, 3)


def test_the_pool_keeps_order_runs_side_by_side_and_raises() -> None:
    busy, most, lock = [0], [0], threading.Lock()

    def decode(item: tuple[int, float]) -> int:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(item[1])
        with lock:
            busy[0] -= 1
        return item[0]

    pool = DecodePool(workers=3)
    try:
        assert pool.map(decode, [(i, 0.05 * (3 - i)) for i in range(3)]) == [0, 1, 2]  # the slowest first, order kept
        assert most[0] == 3
        with pytest.raises(ZeroDivisionError):
            pool.map(lambda x: 1 // x, [1, 0, 2])
        assert pool.seconds > 0.1
    finally:
        pool.close()
    serial = DecodePool(workers=1)
    assert serial.map(lambda x: threading.current_thread().name, [1, 2]) == [threading.current_thread().name] * 2


def _ticks(spec: str, workers: int, fit) -> list[list[tuple[str, int, bytes]]]:
    names: set[str] = set()
    with open_source(spec, SourceOptions(decode_workers=workers)) as source:
        source.decode_for(fit)
        original = source.decoder.map

        def watched(decode, payloads):
            return original(lambda p: (names.add(threading.current_thread().name), decode(p))[1], payloads)

        source.decoder.map = watched
        ticks = []
        while (tick := source.read()) is not None:
            ticks.append([(f.source, f.index, f.image.tobytes()) for f in tick])
    assert any(n.startswith("edgeft-decode") for n in names) == (workers > 1)
    return ticks


@pytest.mark.parametrize("fit", [None, (96, 96)])
def test_a_bag_decodes_its_cameras_side_by_side_as_serially(tmp_path, carphone, fit) -> None:
    pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")
    from bagfiles import footage, write_rig_bag

    bag = write_rig_bag(tmp_path / "rig.bag", footage(carphone, 12, size=(640, 360)), dropped={"left": {4}})
    serial, parallel = _ticks(str(bag.path), 1, fit), _ticks(str(bag.path), 3, fit)
    assert serial == parallel and len(serial) == 12 and sum(map(len, serial)) == 35
    assert [camera for camera, _, _ in serial[0]] == ["left", "center", "right"]


def _driving_log(tmp_path: Path, photos_bgr: list[np.ndarray]) -> Path:
    """Six ticks of three real photos, one of them not an image (right_3)."""
    rows = []
    for i in range(6):
        names = []
        for camera, photo in zip(("center", "left", "right"), photos_bgr[i % 3:] + photos_bgr):
            name = f"IMG/{camera}_{i}.jpg"
            (tmp_path / "IMG").mkdir(exist_ok=True)
            (tmp_path / name).write_bytes(jpeg(np.roll(photo, i * 7, axis=1)))
            names.append(name)
        rows.append(",".join(names) + f",{i / 10},0,0,0")
    (tmp_path / "IMG" / "right_3.jpg").write_bytes(b"not an image at all")  # an unreadable frame, skipped alike
    (tmp_path / "driving_log.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_a_driving_log_decodes_its_cameras_side_by_side_as_serially(tmp_path, photos_bgr) -> None:
    log = str(_driving_log(tmp_path, photos_bgr))
    serial, parallel = _ticks(log, 1, (64, 64)), _ticks(log, 3, (64, 64))
    assert serial == parallel and [len(t) for t in serial] == [3, 3, 3, 2, 3, 3]


def test_a_default_pool_takes_the_cores_inference_leaves(tmp_path, photos_bgr, steering_bundle, monkeypatch) -> None:
    from edgeft.runtime.cpu import CpuInfo, cpu_info
    from edgeft.runtime.sources import decoding

    cores = cpu_info().cores  # what the engine's backend sees: its threads run here
    monkeypatch.setattr(decoding, "cpu_info", lambda: CpuInfo("a 16-core machine", 16, frozenset()))
    log, seen = str(_driving_log(tmp_path, photos_bgr)), {}
    for threads, asked in ((None, None), (1, None), (None, 3)):
        engine = Engine.load(steering_bundle, device="cpu", threads=threads)
        assert engine.backend.cpu_threads == (threads or cores)
        with open_source(log, SourceOptions(decode_workers=asked)) as source:
            count = len(list(Pipeline(source, engine, PipelineConfig(max_ticks=4))))
            seen[threads, asked] = (source.decoder.workers, count)
    # four ticks are 11 results (right_3 is not an image); a pool asked for is kept as asked
    assert seen == {(None, None): (16 - cores, 11), (1, None): (15, 11), (None, 3): (3, 11)}
    pool = DecodePool()
    assert pool.workers == 16
    pool.beside(16)
    assert pool.workers == 1


def mjpeg_video(path: Path, frames: list[bytes]) -> Path:
    """An MJPEG .avi of `frames` (JPEG bytes, re-encoded by OpenCV's writer): what a USB camera's MJPG mode delivers."""
    first = cv2.imdecode(np.frombuffer(frames[0], np.uint8), cv2.IMREAD_COLOR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (first.shape[1], first.shape[0]))
    for data in frames:
        writer.write(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    writer.release()
    return path


def test_an_mjpeg_capture_decodes_its_jpegs_at_the_models_size(steering_bundle, frames_720p, carphone, tmp_path) -> None:
    """The capture hands over each frame's JPEG and it is decoded at 1/4 for 96x192, within the
    documented agreement of the capture's own full decode; other codecs keep their pixels."""
    video = mjpeg_video(tmp_path / "rig.avi", frames_720p)
    engine = Engine.load(steering_bundle, device="cpu")
    runs = {}
    for mode in ("full", "reduced"):
        with open_source(str(video)) as source:
            runs[mode] = list(Pipeline(source, engine, PipelineConfig(decode=mode)))
        assert source.decoder.seconds > 0  # the profile's decode stage, whichever decodes
    assert [r.image.shape[:2] for r in runs["full"]] == [(720, 1280)] * len(frames_720p)
    assert [r.image.shape[:2] for r in runs["reduced"]] == [(180, 320)] * len(frames_720p)
    sent = runs["reduced"][3].jpeg  # the JPEG as the camera sent it, for --record / --foxglove
    assert sent is not None and cv2.imdecode(np.frombuffer(sent, np.uint8), cv2.IMREAD_COLOR).shape == (720, 1280, 3)
    cosines = [cosine(a.outputs["features"], b.outputs["features"]) for a, b in zip(runs["reduced"], runs["full"])]
    assert np.mean(cosines) >= MEAN_COSINE and min(cosines) >= MIN_COSINE, cosines
    with open_source(str(carphone)) as source:  # H.264: FFmpeg decodes it, as before
        result = next(iter(Pipeline(source, engine, PipelineConfig(decode="reduced", max_ticks=1))))
    assert result.image.shape[:2] == (144, 176) and result.jpeg is None


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (Debian package; CI installs it) serves the camera stream")
def test_an_ip_cameras_mjpeg_stream_is_decoded_at_the_models_size(steering_bundle, frames_720p, tmp_path) -> None:
    """An IP camera's multipart MJPEG over HTTP (ffmpeg on loopback): live, reduced, its JPEGs kept."""
    video = mjpeg_video(tmp_path / "cam.avi", frames_720p)
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    server = subprocess.Popen([shutil.which("ffmpeg"), "-loglevel", "quiet", "-re", "-stream_loop", "-1", "-i", str(video),
                               "-c:v", "copy", "-f", "mpjpeg", "-listen", "1", url])
    try:
        source = open_when_up(url)
        engine = Engine.load(steering_bundle, device="cpu")
        with source:
            results = list(Pipeline(source, engine, PipelineConfig(max_ticks=10)))
        assert source.live and len(results) == 10
        assert {r.image.shape[:2] for r in results} == {(180, 320)} and all(r.jpeg for r in results)
        assert all(r.valid and np.isfinite(r.outputs["features"]).all() for r in results)
    finally:
        server.kill()
        server.wait()
