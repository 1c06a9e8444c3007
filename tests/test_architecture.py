"""The arrows between the four folders, read from the imports themselves:
export -> runtime, transfer -> export/runtime (public names only), the CLI -> everything,
and nothing back; runtime imports no TensorFlow, export and transfer no CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"runtime": "edgeft.runtime", "export": "edgeft.export", "transfer": "edgeft.transfer", "edgeft": "edgeft"}
ALLOWED = {  # which edgeft packages each folder may import
    "runtime": {"edgeft.runtime"},
    "export": {"edgeft.runtime", "edgeft.export"},
    "transfer": {"edgeft.runtime", "edgeft.export", "edgeft.transfer"},
}
NEVER = {"runtime": {"tensorflow", "keras", "tf2onnx"}, "export": set(), "transfer": set()}
PUBLIC_FOR_TRANSFER = {"edgeft.runtime", "edgeft.runtime.sinks", "edgeft.runtime.sources", "edgeft.export"}


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
            if folder == "transfer" and target.startswith(("edgeft.runtime", "edgeft.export")):
                if target not in PUBLIC_FOR_TRANSFER or any(n.startswith("_") for n in names):
                    wrong.append(f"{path.relative_to(ROOT)} imports {target}: {names} (not a public name)")
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_command_line() -> None:
    for folder in ALLOWED:
        for path in (ROOT / folder).rglob("*.py"):
            assert "edgeft.cli" not in path.read_text(), path


def test_imports_are_resolved_the_way_python_does() -> None:
    """The checker itself: a relative import in runtime/sources resolves inside runtime."""
    found = dict(imports(ROOT / "runtime" / "sources" / "drivelog.py", "edgeft.runtime"))
    assert "edgeft.runtime.sources.base" in found and "edgeft.runtime.sources.images" in found
    found = dict(imports(ROOT / "runtime" / "sources" / "__init__.py", "edgeft.runtime"))
    assert "edgeft.runtime.sources.base" in found
