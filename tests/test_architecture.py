"""The layering rules of ARCHITECTURE.md, checked on the source itself."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dnnreg"
TORCH_FREE = ["_validation", "_optional", "datasets", "data", "preprocessing", "metrics", "onnx_export", "evaluation", "numpy_runtime",
              "baselines", "numpy_ref"]


def _imports(module: str, top_level_only: bool = False) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." if node.level else "") + (node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("module", TORCH_FREE)
def test_lower_layers_never_import_torch(module):
    assert "torch" not in _imports(module)


def test_persistence_imports_torch_only_inside_functions():
    assert "torch" not in _imports("persistence", top_level_only=True)


def test_nothing_imports_the_cli():
    for path in SRC.glob("*.py"):
        if path.stem not in ("cli", "__main__"):
            assert ".cli" not in _imports(path.stem), path.name


def test_import_dnnreg_does_not_import_torch():
    code = "import sys, dnnreg, dnnreg.preprocessing, dnnreg.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# ARCHITECTURE.md's layers; a module may import dnnreg modules of its own layer or below.
LAYERS = {"_validation": 0, "_optional": 0, "_files": 0, "parameters": 0,
          "datasets": 1, "data": 1, "preprocessing": 1, "metrics": 1, "numpy_ref": 1,
          "baselines": 1, "evaluation": 1, "numpy_runtime": 1, "devices": 2, "embeddings": 2, "models": 2, "losses": 2, "optim": 3, "train": 3,
          "diagnostics": 3, "tensorboard_log": 3, "progress": 0, "report": 6,
          "estimator": 4, "regressor": 4, "classifier": 4, "pretrain": 3, "pretrain_study": 4, "tune": 4, "persistence": 5, "onnx_export": 5, "comparison": 4, "plots": 6,
          "cli": 7, "__main__": 7, "__init__": 7}


def test_every_module_has_a_layer():
    assert {p.stem for p in SRC.glob("*.py")} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_modules_import_only_their_layer_or_below(module):
    for name in _imports(module):
        if name.startswith(".") and name != ".":
            target = name[1:]
            assert LAYERS[target] <= LAYERS[module], f"{module} imports {target}"


def test_train_never_imports_diagnostics():
    assert ".diagnostics" not in _imports("train")
