"""The wheel maps export/ and runtime/ into edgeft.*: every subpackage must be listed, or the
installed wheel breaks while the editable checkout still works."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    listed = set(config["packages"])
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]) if relative.parts else name)
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
    for package in listed:
        parent = max((k for k in mapping if package == k or package.startswith(k + ".")), key=len)
        folder = ROOT / mapping[parent] / Path(*package[len(parent) + 1 :].split(".") if package != parent else ())
        assert (folder / "__init__.py").is_file(), f"{package} maps to {folder}, which is not a package"
