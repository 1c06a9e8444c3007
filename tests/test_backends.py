"""Backends and the proof that travels with a bundle: probes hashed in the manifest, every backend
and precision re-proved on the device, a backend that falls short refused, and auto's rule."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from edgeft.runtime import BundleError, Engine, EngineConfig, ProviderError, load_bundle
from edgeft.runtime.backends import Target, auto_targets
from edgeft.runtime.cpu import CpuInfo, cpu_info
from edgeft.runtime.proof import VerificationError, verify
from edgeft.runtime.verified import recorded

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

HAS_OPENVINO = __import__("importlib").util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
needs_bf16 = pytest.mark.skipif(not cpu_info().native_bf16, reason=f"this CPU ({cpu_info().model}) has no native BF16")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEFT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_tiny_bundle(tmp_path / "tiny", proof=True)


def test_probes_are_hashed_and_a_tampered_proof_is_refused(bundle) -> None:
    assert load_bundle(bundle).manifest.proof.probes == 6
    data = bytearray((bundle / "proof.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "proof.npz").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="proof.npz is missing or does not match its manifest"):
        load_bundle(bundle)
    (bundle / "proof.npz").unlink()
    with pytest.raises(BundleError, match="is missing"):
        load_bundle(bundle)


@pytest.mark.parametrize("target", [Target("cpu"), pytest.param(Target("openvino", "fp32"), marks=needs_openvino)])
def test_fp32_backends_pass_verification(bundle, target) -> None:
    engine = Engine(load_bundle(bundle), EngineConfig(device=target.device, precision=target.precision, verify=True))
    assert engine.precision == "fp32" and engine.verification.passed
    assert engine.verification.agreement["max_rel"] < 1e-5
    assert recorded(engine.manifest.model_sha256)[engine.provider]["passed"]  # what inspect shows


@needs_openvino
@needs_bf16
def test_bf16_is_verified_where_the_cpu_has_it(bundle) -> None:
    engine = Engine.load(bundle, device="openvino", precision="bf16", verify=True)
    assert engine.provider == "OpenVINO CPU bf16" and engine.verification.measure == "feature cosine"
    assert engine.verification.agreement["feature_cosine_min"] > 0.999


@needs_openvino
def test_bf16_is_refused_on_a_cpu_without_it(bundle, monkeypatch) -> None:
    import edgeft.runtime.backends.openvino as ov_backend

    monkeypatch.setattr(ov_backend, "cpu_info", lambda: CpuInfo("an AVX2 CPU", 2, frozenset({"avx2", "fma"})))
    with pytest.raises(ProviderError, match="has no native BF16"):
        Engine.load(bundle, device="openvino", precision="bf16")


def test_a_backend_that_disagrees_is_refused_with_the_numbers(bundle) -> None:
    engine = Engine.load(bundle, device="cpu")
    honest = engine._infer
    engine._infer = lambda batch: [out + np.float32(0.5) for out in honest(batch)]  # a subtly broken backend
    with pytest.raises(VerificationError, match=r"max relative error .* > 0.0001; refused"):
        verify(engine)
    engine.precision = "int8"  # held to cosine on the held-out probes instead
    engine._infer = lambda batch: [np.random.default_rng(0).normal(size=out.shape).astype(np.float32) for out in honest(batch)]
    with pytest.raises(VerificationError, match="feature cosine"):
        verify(engine)
    assert not recorded(engine.manifest.model_sha256)["CPUExecutionProvider fp32"]["passed"]


def test_auto_rule() -> None:
    from tiny_bundle import tiny_manifest
    from edgeft.runtime.manifest import Proof, Quantization

    proof = Proof("proof.npz", "0" * 64, 6, 0, {})
    fp32 = dataclasses.replace(tiny_manifest(), proof=proof)
    int8 = dataclasses.replace(fp32, quantization=Quantization("int8", "x", 8, 8, {}))
    amx = CpuInfo("Xeon", 2, frozenset({"avx2", "avx512f", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"}))
    zen3 = CpuInfo("EPYC", 2, frozenset({"avx2", "fma"}))
    cpu = [Target("cpu")]
    if HAS_OPENVINO:
        assert auto_targets(fp32, amx)[-2:] == [Target("openvino", "bf16"), Target("cpu")]
        assert auto_targets(int8, amx)[-2:] == [Target("openvino"), Target("cpu")]
    assert auto_targets(fp32, zen3)[-1:] == cpu and Target("openvino", "bf16") not in auto_targets(fp32, zen3)
    assert Target("openvino") not in auto_targets(int8, zen3)  # no INT8 dot product: onnxruntime keeps it
    assert Target("openvino", "bf16") not in auto_targets(dataclasses.replace(fp32, proof=None), amx)  # unprovable


def test_an_int8_bundle_made_for_vnni_is_reproved_on_a_cpu_without_it() -> None:
    from tiny_bundle import tiny_manifest
    from edgeft.runtime.backends import needs_proof
    from edgeft.runtime.manifest import Proof, Quantization

    proof = Proof("proof.npz", "0" * 64, 6, 0, {})
    vnni = dataclasses.replace(tiny_manifest(), proof=proof, quantization=Quantization("int8", "x", 8, 8, {}, "vnni (8-bit weights)"))
    avx2 = dataclasses.replace(vnni, quantization=dataclasses.replace(vnni.quantization, target="avx2 (7-bit weights)"))
    zen3 = CpuInfo("EPYC", 2, frozenset({"avx2", "fma"}))
    sapphire = CpuInfo("Xeon", 2, frozenset({"avx2", "avx512_vnni", "amx_int8"}))
    assert needs_proof(Target("cpu"), vnni, zen3) and not needs_proof(Target("cpu"), vnni, sapphire)
    assert not needs_proof(Target("cpu"), avx2, zen3)


def test_auto_takes_the_fastest_that_passes_and_says_so(bundle, caplog) -> None:
    engine = Engine.load(bundle)
    expected = auto_targets(engine.manifest)[0]
    assert (engine.provider.startswith("OpenVINO") and engine.verification.passed) == (expected.device == "openvino")
    assert engine.provider.endswith(engine.precision)


@needs_openvino
def test_auto_falls_back_when_the_fast_backend_fails_verification(bundle, monkeypatch) -> None:
    import edgeft.runtime.engine as engine_module
    from edgeft.runtime.backends.openvino import OpenVinoBackend

    monkeypatch.setattr(engine_module, "auto_targets", lambda manifest, cpu=None: [Target("openvino"), Target("cpu")])
    honest = OpenVinoBackend.run
    monkeypatch.setattr(OpenVinoBackend, "run", lambda self, batch: [o * 1.5 for o in honest(self, batch)])
    engine = Engine.load(bundle)  # the OpenVINO candidate is re-proved (another backend) and fails: 50% off
    assert engine.provider == "CPUExecutionProvider fp32"
    assert not recorded(engine.manifest.model_sha256)["OpenVINO CPU fp32"]["passed"]


def test_a_bundle_without_probes_cannot_be_verified_but_runs(tmp_path) -> None:
    plain = write_tiny_bundle(tmp_path / "plain")
    assert Engine.load(plain).provider == "CPUExecutionProvider fp32"
    with pytest.raises(VerificationError, match="carries no probes"):
        Engine.load(plain, verify=True)


def test_verify_and_bench_commands(bundle) -> None:
    proc = edgeft("verify", bundle, "--device", "cpu")
    assert proc.returncode == 0 and "CPUExecutionProvider fp32 on 6 probes: max_rel" in proc.stdout
    proc = edgeft("verify", bundle, "--device", "cpu", "--max-rel", "-1")
    assert proc.returncode == 1 and "refused" in proc.stderr and "Traceback" not in proc.stderr
    piped = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # as in a log file or `| tee`: no terminal
    proc = edgeft("bench", bundle, "--device", "all", "--runs", 3, "--batches", "1,4", env=piped)
    assert proc.returncode == 0 and "CPU:" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "CPUExecutionProvider" in line)
    assert "1.00x" in row and "max_rel" in row  # one line per backend, not wrapped at 80 columns
    if HAS_OPENVINO:
        assert "OpenVINO CPU fp32" in proc.stdout
    proc = edgeft("run", "--model", bundle, "--source", bundle / "missing", "--device", "cpu", "--precision", "bf16")
    assert proc.returncode == 1 and "openvino runs bf16" in proc.stderr
