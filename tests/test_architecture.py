"""The arrows between the five folders, read from the imports themselves:
export -> runtime, transfer -> export/runtime/drive's road (public names only), drive -> runtime
(public names only), the CLI -> everything, and nothing back; runtime and drive import no
TensorFlow, and nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"runtime": "edgeft.runtime", "export": "edgeft.export", "transfer": "edgeft.transfer", "drive": "edgeft.drive",
            "edgeft": "edgeft"}
ALLOWED = {  # which edgeft packages each folder may import
    "runtime": {"edgeft.runtime"},
    "export": {"edgeft.runtime", "edgeft.export"},
    "transfer": {"edgeft.runtime", "edgeft.export", "edgeft.transfer", "edgeft.drive"},
    "drive": {"edgeft.runtime", "edgeft.drive"},
}
NEVER = {"runtime": {"tensorflow", "keras", "tf2onnx"}, "export": set(), "transfer": set(),
         "drive": {"tensorflow", "keras", "tf2onnx"}}
PUBLIC_RUNTIME = {"edgeft.runtime", "edgeft.runtime.sinks", "edgeft.runtime.sources"}
PUBLIC = {  # what a folder may import of the others: their public modules, and no private names
    "transfer": PUBLIC_RUNTIME | {"edgeft.export", "edgeft.drive.road"},  # the sample draws the simulator's road
    "drive": PUBLIC_RUNTIME,
}


def imports(path: Path, package: str) -> list[tuple[str, list[str]]]:
    """(absolute module, names imported from it) for every import in the file."""
    parts = path.relative_to(ROOT / path.relative_to(ROOT).parts[0]).with_suffix("").parts
    here = [*package.split("."), *parts[:-1]]  # the package the file belongs to (itself for __init__.py)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_folders_import_only_along_the_arrows(folder: str) -> None:
    package = PACKAGES[folder]
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for target, names in imports(path, package):
            top = target.split(".")[0]
            if top in NEVER[folder]:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
            if top == "edgeft" and not any(target == p or target.startswith(p + ".") for p in ALLOWED[folder]):
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
            outside = target.startswith("edgeft.") and not (target == package or target.startswith(package + "."))
            if folder in PUBLIC and outside:
                if target not in PUBLIC[folder] or any(n.startswith("_") for n in names):
                    wrong.append(f"{path.relative_to(ROOT)} imports {target}: {names} (not a public name)")
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_command_line() -> None:
    for folder in ALLOWED:
        for path in (ROOT / folder).rglob("*.py"):
            assert "edgeft.cli" not in path.read_text(), path


def test_drive_runs_without_tensorflow_or_the_command_line() -> None:
    """Vehicle software imports the loop on its own: no TensorFlow, no typer, no websockets until a
    Udacity link is started."""
    import subprocess
    import sys

    code = ("import sys, edgeft.drive; bad = [m for m in ('tensorflow', 'keras', 'typer', 'edgeft.cli', 'websockets') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_imports_are_resolved_the_way_python_does() -> None:
    """The checker itself: a relative import in runtime/sources resolves inside runtime."""
    found = dict(imports(ROOT / "runtime" / "sources" / "drivelog.py", "edgeft.runtime"))
    assert "edgeft.runtime.sources.base" in found and "edgeft.runtime.sources.images" in found
    found = dict(imports(ROOT / "runtime" / "sources" / "__init__.py", "edgeft.runtime"))
    assert "edgeft.runtime.sources.base" in found
