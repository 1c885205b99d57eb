"""The layering rules of the package docstring (``dnnreg/__init__.py``), checked on the
source: every import, relative ones and ``from . import X`` included, at any depth."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dnnreg"

# Each wing (a subpackage) or top-level module and its layer: a module may import dnnreg
# modules of its own layer or below, never above.
LAYERS = {
    "_validation": 0,
    "_optional": 0,
    "_files": 0,
    "_version": 0,
    "options": 0,
    "cores": 0,
    "notices": 0,
    "progress": 0,
    "tables": 1,
    "metrics": 1,
    "predictions": 1,
    "conformal": 1,
    "temperature": 1,
    "model_file": 1,
    "network": 2,
    "training": 3,
    "estimators": 4,
    "inference": 5,
    "studies": 6,
    "report": 6,
    "run": 6,
    "streamed_run": 6,
    "serve": 6,
    "cli": 7,
    "__main__": 7,
    "__init__": 7,
}
# Never torch, not even inside a function.
TORCH_FREE = [
    "_validation",
    "_optional",
    "_files",
    "_version",
    "options",
    "cores",
    "notices",
    "progress",
    "tables",
    "metrics",
    "predictions",
    "conformal",
    "temperature",
    "model_file",
    "inference.runtime",
    "inference.onnx",
    "inference.reference",
    "report",
    "training.verdicts",
]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def wing(module: str) -> str:
    return module.split(".")[0]


def imports(
    module: str, top_level_only: bool = False, source: str | None = None, is_package: bool = False
) -> set[str]:
    """Every module ``module`` imports: absolute names as written, dnnreg's own resolved
    to their path below ``dnnreg`` (``from . import plots`` in report.html is report.plots)."""
    if source is None:
        source = MODULES[module].read_text()
        is_package = MODULES[module].name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        package = []
    tree = ast.parse(source)
    found = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = ["dnnreg", *base, *([node.module] if node.module else [])]
            else:
                parts = [node.module]
            root = ".".join(parts)
            found.add(root)
            for alias in node.names:  # "from dnnreg.report import plots" imports a module
                candidate = f"{root}.{alias.name}"
                if candidate.startswith("dnnreg.") and candidate[7:] in MODULES:
                    found.add(candidate)
    return found


def dnnreg_imports(module: str, **kw) -> set[str]:
    out = set()
    for name in imports(module, **kw):
        if name == "dnnreg":
            out.add("__init__")
        elif name.startswith("dnnreg."):
            out.add(name[len("dnnreg.") :])
    return out


def test_the_import_reader_sees_relative_and_from_dot_imports():
    """The reader itself, on source written for it: relative imports at any depth and
    ``from . import X`` resolve to dnnreg's modules, inside functions too."""
    source = (
        "from . import plots\n"
        "def f():\n    from ..training.loop import fit_model\n"
        "    from .. import cli\n"
        "import dnnreg.tables.reading\n"
    )
    assert dnnreg_imports("report.html", source=source) >= {
        "report",
        "report.plots",
        "training.loop",
        "cli",
        "tables.reading",
    }
    assert "cli" not in dnnreg_imports("report.html", source=source, top_level_only=True)


def test_every_module_belongs_to_a_layer():
    assert {wing(m) for m in MODULES} <= set(LAYERS), sorted(
        {wing(m) for m in MODULES} - set(LAYERS)
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_import_only_their_layer_or_below(module):
    for target in dnnreg_imports(module):
        assert LAYERS[wing(target)] <= LAYERS[wing(module)], f"{module} imports {target}"


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if any(m == t or m.startswith(t + ".") for t in TORCH_FREE))
)
def test_torch_free_modules_never_import_torch(module):
    assert not {n for n in imports(module) if n.split(".")[0] == "torch"}, module


def test_nothing_imports_the_cli():
    for module in MODULES:
        if module not in ("cli", "__main__"):
            assert "cli" not in dnnreg_imports(module), module


# The softmax-from-scratch experiment trains the NumPy network on purpose: it is the
# course's "network in plain Python". No engine, runtime or other study may use it.
USES_THE_REFERENCE = {"inference.reference", "studies.experiments.softmax_from_scratch"}


def test_the_reference_is_imported_by_no_production_module():
    for module in MODULES:
        if module not in USES_THE_REFERENCE:
            assert "inference.reference" not in dnnreg_imports(module), module


def test_the_training_loop_never_imports_its_callbacks():
    for module in ("training.loop", "training.optim", "training.devices", "training.pretrain"):
        targets = dnnreg_imports(module)
        assert not targets & {"training.diagnostics", "training.tensorboard"}, module


def test_persistence_imports_torch_only_inside_functions():
    assert "torch" not in {
        n.split(".")[0] for n in imports("estimators.persistence", top_level_only=True)
    }


def test_import_dnnreg_does_not_import_torch():
    code = (
        "import sys, dnnreg, dnnreg.tables.preprocessing, dnnreg.tables.reading, "
        "dnnreg.options; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
