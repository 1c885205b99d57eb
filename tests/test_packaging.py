"""The package declares what it uses: every third-party module imported anywhere in
``src/dnnreg`` belongs to a distribution named in ``pyproject.toml`` (a dependency or an
extra), the version has one source, and the license and type marker ship."""

import ast
import sys
from importlib import metadata
from pathlib import Path

import pytest

import dnnreg

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dnnreg"
tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else None


def _pyproject() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """``"scikit-learn>=1.6"`` -> ``"scikit-learn"``, normalised as PEP 503 does."""
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower().replace("_", "-")


def _imported_top_level_modules() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"dnnreg", "__future__"}


def test_every_imported_third_party_module_is_declared():
    project = _pyproject()["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    owners = metadata.packages_distributions()
    undeclared = {}
    for module in sorted(_imported_top_level_modules()):
        dists = {_name(d) for d in owners.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_version_has_one_source():
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    text = (SRC / "_version.py").read_text()
    assert f'__version__ = "{dnnreg.__version__}"' in text
    assert metadata.version("dnnreg") == dnnreg.__version__


def test_license_and_type_marker_ship():
    project = _pyproject()["project"]
    assert project["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert (SRC / "py.typed").exists()
    package_data = _pyproject()["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["dnnreg"]


def test_the_all_extra_holds_every_user_facing_extra():
    extras = _pyproject()["project"]["optional-dependencies"]
    user_facing = ("baselines", "onnx", "tensorboard", "tune")
    wanted = {_name(r) for e in user_facing for r in extras[e]}
    assert wanted <= {_name(r) for r in extras["all"]}
