"""The 1000 ImageNet class names for `export --top`, offline, from the keras-hub wheel.

Keras' own `decode_predictions` downloads its class index on first use; keras-hub (the Keras
team's model library) ships the same names in its source. Only that file is read, as data
(its dictionary literal parsed, never executed): importing keras-hub would pull in
tensorflow-text and take seconds, for a list of names.
"""

from __future__ import annotations

import ast
import importlib.util
from importlib.metadata import version
from pathlib import Path

from .errors import ExportError

NAMES_FILE = "src/utils/imagenet/imagenet_utils.py"  # IMAGENET_NAMES = {0: ("n01440764", "tench"), ...}
INSTALL = "pip install 'edgeft[imagenet]'"


def imagenet_labels() -> tuple[list[str], str]:
    """The class names in class order, and where they came from (for the manifest)."""
    spec = importlib.util.find_spec("keras_hub")
    if spec is None or spec.origin is None:
        raise ExportError(f"--top needs the ImageNet class names, which ship in keras-hub: {INSTALL}")
    path = Path(spec.origin).parent / NAMES_FILE
    names = _names_literal(path) if path.is_file() else None
    if names is None or sorted(names) != list(range(1000)):
        raise ExportError(f"keras-hub {version('keras-hub')} no longer holds the ImageNet class names in {NAMES_FILE}: "
                          f"install the version edgeft names ({INSTALL})")
    return [names[i][1] for i in range(1000)], f"keras-hub {version('keras-hub')} (ImageNet-1k class names)"


def _names_literal(path: Path) -> dict | None:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "IMAGENET_NAMES" for t in node.targets):
            return ast.literal_eval(node.value)
    return None
