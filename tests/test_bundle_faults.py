"""A bundle's manifest and the machine's verification records, tampered with or damaged: every
field is validated into one error line, every path stays inside the bundle, bars cannot be
lowered until anything passes, and a bad cache record is ignored, never a crash."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeft.runtime import BundleError, Engine, load_bundle
from edgeft.runtime.bundle import sha256_bytes
from edgeft.runtime.proof import VerificationError
from edgeft.runtime.verified import recorded

from helpers import edgeft

pytest.importorskip("onnx", reason="building the tiny test model needs the onnx package (export extra)")
from tiny_bundle import write_tiny_bundle  # noqa: E402

HAS_OPENVINO = __import__("importlib").util.find_spec("openvino") is not None


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EDGEFT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_tiny_bundle(tmp_path / "tiny", proof=True)


def edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("value", ["0.99", None, [0.99], True])
def test_threshold_values_of_the_wrong_type_are_one_line_errors(bundle, value) -> None:
    edit_manifest(bundle, lambda m: m["proof"]["thresholds"].update(int8_min_cosine=value))
    for proc in (edgeft("verify", bundle, "--device", "cpu"), edgeft("run", "--model", bundle, "--source", bundle / "x.png")):
        one_line_error(proc, "proof.thresholds.int8_min_cosine")


def test_thresholds_cannot_be_lowered_until_anything_passes(bundle) -> None:
    edit_manifest(bundle, lambda m: m["proof"]["thresholds"].update(bf16_min_cosine=0.5))
    with pytest.raises(BundleError, match="bf16_min_cosine 0.5 is refused: it must be a number from 0.99 to 1"):
        load_bundle(bundle)
    edit_manifest(bundle, lambda m: m["proof"]["thresholds"].update(bf16_min_cosine=0.999, fp32_max_rel=0.5))
    one_line_error(edgeft("verify", bundle, "--device", "cpu"), "fp32_max_rel 0.5 is refused")
    edit_manifest(bundle, lambda m: m["proof"]["thresholds"].update(fp32_max_rel=1e-4, sneaky=1))
    one_line_error(edgeft("inspect", bundle), "unknown threshold 'sneaky'")
    one_line_error(edgeft("verify", write_tiny_bundle(bundle.parent / "fresh", proof=True), "--device", "cpu", "--max-rel", 1),
                   "fp32_max_rel 1.0 is refused")


def test_verify_prints_the_bar_it_held_the_backend_to(bundle) -> None:
    proc = edgeft("verify", bundle, "--device", "cpu")
    assert proc.returncode == 0 and "bar max_rel <= 0.0001 -> passed" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("where", ["/etc/hostname", "../outside.npz", "sub/proof.npz", ""])
def test_the_proof_file_must_be_a_file_of_the_bundle(bundle, where) -> None:
    edit_manifest(bundle, lambda m: m["proof"].update(file=where))
    with pytest.raises(BundleError, match="proof.file .* must be the name of a file inside the bundle"):
        load_bundle(bundle)


def test_a_link_out_of_the_bundle_is_refused(bundle, tmp_path) -> None:
    outside = tmp_path / "elsewhere.npz"
    (bundle / "proof.npz").rename(outside)
    (bundle / "proof.npz").symlink_to(outside)  # the same bytes, so the hash alone would pass
    with pytest.raises(BundleError, match="leads out of the bundle"):
        load_bundle(bundle)


def test_a_proof_without_its_arrays_is_one_error(bundle) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, probes=np.zeros((6, 8, 12, 3), np.uint8))  # no holdout, no references
    data = buffer.getvalue()
    (bundle / "proof.npz").write_bytes(data)
    edit_manifest(bundle, lambda m: m["proof"].update(sha256=sha256_bytes(data)))
    with pytest.raises(BundleError, match="holds no held-out mask"):
        Engine.load(bundle, device="cpu", verify=True)
    one_line_error(edgeft("verify", bundle, "--device", "cpu"), "holds no held-out mask")


@pytest.mark.parametrize("record", [[], {"CPUExecutionProvider fp32": {"passed": True}}, {"x": []}, "not a dict"])
def test_a_malformed_verification_record_is_ignored_and_rewritten(bundle, private_cache, record) -> None:
    sha = load_bundle(bundle).manifest.model_sha256
    path = private_cache / "verified" / f"{sha[:32]}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    assert recorded(sha) == {}
    proc = edgeft("inspect", bundle, env={"EDGEFT_CACHE": str(private_cache), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    engine = Engine.load(bundle, device="cpu", verify=True)
    assert recorded(sha)[engine.provider]["passed"] and set(json.loads(path.read_text())) == {engine.provider}


@pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed")
def test_a_backend_asked_for_by_name_is_proved_and_a_passing_proof_is_reused(bundle, monkeypatch) -> None:
    from edgeft.runtime.backends.openvino import OpenVinoBackend

    first = Engine.load(bundle, device="openvino", precision="fp32")
    assert first.verification.passed and not first.verification.reused
    again = Engine.load(bundle, device="openvino", precision="fp32")
    assert again.verification.reused and again.verification.checked_at == first.verification.checked_at
    assert not Engine.load(bundle, device="openvino", precision="fp32", verify=True).verification.reused  # verify: afresh
    honest = OpenVinoBackend.run
    monkeypatch.setattr(OpenVinoBackend, "run", lambda self, batch: [o * 1.5 for o in honest(self, batch)])
    monkeypatch.setenv("EDGEFT_CACHE", str(bundle.parent / "other-cache"))  # no record: a broken backend is caught
    with pytest.raises(VerificationError, match="OpenVINO CPU fp32 disagrees"):
        Engine.load(bundle, device="openvino", precision="fp32")
