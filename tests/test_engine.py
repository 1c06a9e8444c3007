"""The runtime Engine on a hand-built bundle: outputs, batching, threads, providers, the CLI."""

from __future__ import annotations

import re

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeft.runtime import Engine, ProviderError, default_bundle
from edgeft.runtime.errors import BundleError, FrameError
from edgeft.runtime.providers import provider_loads, resolve_providers

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny_bundle(tmp_path / "tiny")


def solid(bgr: tuple[int, int, int], shape=(30, 40)) -> np.ndarray:
    frame = np.zeros((*shape, 3), np.uint8)
    frame[:] = bgr
    return frame


def test_single_frame_gives_unbatched_outputs(tiny) -> None:
    engine = Engine.load(tiny, device="cpu")
    result = engine.predict(solid((255, 0, 0)))  # pure blue in BGR
    np.testing.assert_allclose(result["features"], [0, 0, 255])  # RGB order inside the model
    expected = np.exp([0 - 255 / 64, 255 / 64]) / np.exp([0 - 255 / 64, 255 / 64]).sum()
    np.testing.assert_allclose(result["prediction"], expected, rtol=1e-5)
    assert result.batch == 1 and result.latency_ms > 0


def test_batch_of_mixed_sizes_and_layouts(tiny) -> None:
    frames = [solid((0, 0, 255), (5, 5)), np.full((17, 3), 100, np.uint8), np.dstack([solid((10, 20, 30))] + [np.zeros((30, 40), np.uint8)])]
    out = Engine.load(tiny).predict(frames)
    np.testing.assert_allclose(out["features"], [[255, 0, 0], [100, 100, 100], [30, 20, 10]], atol=1e-4)
    assert out["prediction"].shape == (3, 2)


def test_static_batch_graph_takes_any_number_of_frames(tmp_path) -> None:
    engine = Engine.load(write_tiny_bundle(tmp_path / "static", batch=4))
    frames = [solid((i * 20, 0, 0)) for i in range(6)]  # 4 + 2 (padded)
    np.testing.assert_allclose(engine.predict(frames)["features"][:, 2], [i * 20 for i in range(6)])


def test_concurrent_predict_from_threads_matches_serial(tiny) -> None:
    engine = Engine.load(tiny, threads=1)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (24, 36, 3), dtype=np.uint8) for _ in range(32)]
    serial = [engine.predict(f)["features"] for f in frames]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda f: engine.predict(f)["features"], frames))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_run_refuses_a_batch_that_does_not_fit(tiny) -> None:
    with pytest.raises(FrameError, match="batch must be uint8 N x 8 x 12 x 3"):
        Engine.load(tiny).run(np.zeros((1, 9, 12, 3), np.uint8))


def test_auto_device_falls_back_to_cpu_quietly(tiny, capfd) -> None:
    engine = Engine.load(tiny, device="auto")
    if not provider_loads("cuda"):
        assert engine.provider == "CPUExecutionProvider fp32"
        assert capfd.readouterr().err == ""  # no screen of CUDA loader errors


@pytest.mark.skipif(provider_loads("cuda"), reason="this machine has a working CUDA provider")
def test_asking_for_cuda_without_it_is_a_clear_error(tiny) -> None:
    with pytest.raises(ProviderError, match="device 'cuda' is not usable here"):
        Engine.load(tiny, device="cuda")
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ProviderError, match="unknown device 'npu'"):
        resolve_providers("npu")


def test_default_bundle_picks_the_only_one_or_asks(tmp_path) -> None:
    with pytest.raises(BundleError, match="no bundle under"):
        default_bundle(tmp_path)
    write_tiny_bundle(tmp_path / "a")
    assert default_bundle(tmp_path) == tmp_path / "a"
    write_tiny_bundle(tmp_path / "b")
    with pytest.raises(BundleError, match=r"several bundles .*\(a, b\).*--model"):
        default_bundle(tmp_path)


def test_predict_command_on_image_files(tiny, tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "red.png"), solid((0, 0, 255)))
    cv2.imwrite(str(tmp_path / "grey.jpg"), np.full((20, 20), 128, np.uint8))
    proc = edgeft("predict", "--model", tiny, tmp_path / "red.png", tmp_path / "grey.jpg")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"red \d+\.\d%, blue \d+\.\d%", proc.stdout) and "CPUExecutionProvider" in proc.stderr  # best first, as percentages
    one = edgeft("predict", "--model", tiny, tmp_path / "red.png", "--top", 1)
    assert one.returncode == 0 and "red " in one.stdout and "blue" not in one.stdout


@pytest.mark.parametrize(("name", "content", "message"), [("missing.png", None, "does not exist"), ("notes.png", b"hello", "is not an image")])
def test_predict_command_bad_images(tiny, tmp_path, name, content, message) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    proc = edgeft("predict", "--model", tiny, tmp_path / name)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_session_cache_reuses_and_refuses_a_modified_entry(tiny, tmp_path) -> None:
    from edgeft.runtime.session_cache import cache_key

    cache = tmp_path / "cache"
    frame = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    expected = Engine.load(tiny).predict(frame)["prediction"]
    first = Engine.load(tiny, cache_dir=cache)
    key = cache_key(first.manifest.model_sha256, "CPUExecutionProvider")
    assert (cache / f"{key}.onnx").is_file() and (cache / f"{key}.sha256").is_file()
    np.testing.assert_allclose(Engine.load(tiny, cache_dir=cache).predict(frame)["prediction"], expected, rtol=1e-6)
    (cache / f"{key}.onnx").write_bytes(b"tampered")  # a modified entry is discarded and rebuilt, never run
    np.testing.assert_allclose(Engine.load(tiny, cache_dir=cache).predict(frame)["prediction"], expected, rtol=1e-6)
    assert (cache / f"{key}.onnx").read_bytes() != b"tampered"


def test_tensorrt_options_enable_fp16_and_an_engine_cache_keyed_by_model_and_runtime(tmp_path) -> None:
    import onnxruntime as ort

    from edgeft.runtime.providers import provider_options

    options = provider_options("TensorrtExecutionProvider", "ab" * 32, tmp_path)
    assert options["trt_fp16_enable"] == "True" and options["trt_engine_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == str(tmp_path / f"trt-{'ab' * 12}-ort{ort.__version__}")
    assert provider_options("CPUExecutionProvider", "ab" * 32, tmp_path) == {}
    assert "trt_engine_cache_path" not in provider_options("TensorrtExecutionProvider", "ab" * 32, None)


def test_io_binding_gives_the_same_outputs_as_plain_runs(tmp_path) -> None:
    """Bound runs (device buffers reused per batch shape and thread) must match session.run, hand
    back arrays a later call does not overwrite, and stay correct from several threads."""
    rng = np.random.default_rng(1)
    for batch in (None, 4):  # dynamic, and static with padding of the last chunk
        bundle = write_tiny_bundle(tmp_path / f"b{batch}", batch=batch)
        plain, bound = Engine.load(bundle), Engine.load(bundle, io_binding=True)
        assert (plain.io_binding, bound.io_binding) == (False, True)
        batches = [rng.integers(0, 256, (n, 8, 12, 3), dtype=np.uint8) for n in (1, 3, 3, 6, 1)]
        first = bound.run(batches[0])["features"]
        kept = first.copy()
        for frames in batches:
            ours, theirs = bound.run(frames), plain.run(frames)
            for name in theirs:
                np.testing.assert_array_equal(ours[name], theirs[name])
        np.testing.assert_array_equal(first, kept)
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda f: bound.run(f)["features"], batches * 4))
        for frames, got in zip(batches * 4, threaded):
            np.testing.assert_array_equal(got, plain.run(frames)["features"])


def test_io_binding_is_on_exactly_for_gpu_providers_unless_asked() -> None:
    from edgeft.runtime.binding import wants_binding

    assert wants_binding("CUDAExecutionProvider", None) and wants_binding("TensorrtExecutionProvider", None)
    assert not wants_binding("CPUExecutionProvider", None)
    assert wants_binding("CPUExecutionProvider", True) and not wants_binding("CUDAExecutionProvider", False)
