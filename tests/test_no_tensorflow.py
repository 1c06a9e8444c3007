"""The runtime must never pull in TensorFlow: vehicles ship onnxruntime, not TF."""

import subprocess
import sys

import pytest

CHECK = "import sys; {imports}; bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')); print(bad); sys.exit(1 if bad else 0)"


@pytest.mark.parametrize(
    "imports",
    [
        "import edgeft.runtime",
        "from edgeft.runtime import Engine, load_bundle, find_bundles",
        "import edgeft.cli",  # the CLI imports TensorFlow only inside export/layers
        "import edgeft.export, edgeft.export.backbones, edgeft.export.exporter",
        "import edgeft.transfer",  # planning, extraction and the sample drive run without TensorFlow
        "import edgeft.runtime.sources.bag, edgeft.runtime.sinks.foxglove, rosbags.highlevel, foxglove",
        "import edgeft.runtime.backends.openvino, openvino",
    ],
)
def test_import_does_not_load_tensorflow(imports: str) -> None:
    proc = subprocess.run([sys.executable, "-c", CHECK.format(imports=imports)], capture_output=True, text=True)
    assert proc.returncode == 0, f"{imports!r} imported {proc.stdout.strip()} {proc.stderr[-500:]}"
