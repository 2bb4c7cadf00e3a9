"""The package's layout: old import paths of moved modules, module sizes, folder
docstrings, and the import graph (no arrow from a lower layer up to a higher one)."""

import ast
import importlib
from pathlib import Path

import pytest

from kseg._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_import_path_is_the_moved_module(old, new):
    old_module = importlib.import_module(old)
    assert old_module is importlib.import_module(new)
    assert old_module.__spec__.name == new


# Layers, lowest first: a module may import its own package and any lower layer.
RANKS = {"_moved": 0, "utils": 0, "config": 1, "config_types": 1, "ops": 1, "saving": 1, "weights": 1, "data": 2, "distribute": 2,
         "evaluate": 3, "errors": 3, "visualize": 4, "models": 5, "semantic": 6, "export": 6,
         "cli": 7, "__main__": 8}
MAX_LINES = 400  # "about 400" (issue 12)


def _kseg_imports(path, module):
    """Top-level kseg packages that `path` imports (function-local imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
            if node.module == "kseg":
                names = [f"kseg.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("kseg.")}
    return found - {module}


def _modules():
    for path in sorted((ROOT / "kseg").rglob("*.py")):
        parts = path.relative_to(ROOT / "kseg").with_suffix("").parts
        if parts != ("__init__",):
            yield path, parts[0]


def test_no_import_arrow_from_a_lower_layer_up():
    upward = []
    for path, package in _modules():
        for target in _kseg_imports(path, package):
            if target in RANKS and RANKS[target] > RANKS[package]:
                upward.append(f"{path.relative_to(ROOT)} ({package}) imports kseg.{target}")
    assert not upward, "\n".join(upward)
    assert {package for _, package in _modules()} <= set(RANKS)


def test_data_and_ops_never_import_models_or_cli():
    for path, package in _modules():
        if package in ("data", "ops"):
            assert not _kseg_imports(path, package) & {"models", "cli", "semantic", "export"}, path


def test_samples_notebooks_and_bench_use_public_api_not_the_cli():
    offenders = []
    for folder in ("samples", "notebooks", "bench"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".ipynb") and "kseg.cli" in path.read_text(encoding="utf-8"):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_modules_are_about_400_lines_at_most():
    long = [f"{path.relative_to(ROOT)}: {n}" for path, _ in _modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long


def test_every_folder_says_what_it_owns_and_may_import():
    for init in sorted((ROOT / "kseg").rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "May import" in doc, init.relative_to(ROOT)


# Modules that sum convolution outputs: ResNet blocks (only in the one ResNet), FCN's skip
# fusion and the FPN's top-down pathway.
SUMS_CONVOLUTIONS = {"models/backbones/resnet.py", "models/fcn.py", "models/mask_rcnn/fpn.py"}


def _calls(tree):
    return {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id",
                                                                              None)
            for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_one_resnet_builder():
    """Only models/backbones/resnet.py builds residual blocks and names ResNet branches
    (saving/resnet_names.py maps the names; nothing else spells them)."""
    branches, sums = [], []
    for path, _ in _modules():
        relative = path.relative_to(ROOT / "kseg").as_posix()
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        if {"Add", "Conv2D"} <= _calls(tree):
            sums.append(relative)
        if "_branch" in source or "_block1_" in source:
            branches.append(relative)
    assert set(sums) == SUMS_CONVOLUTIONS, (
        f"modules summing convolutions: {sorted(sums)}; ResNet blocks belong in "
        f"kseg/models/backbones/resnet.py (other sums: add the module to SUMS_CONVOLUTIONS)")
    assert "models/backbones/resnet.py" in sums
    assert set(branches) <= {"models/backbones/resnet.py", "saving/resnet_names.py",
                             "models/mask_rcnn/backbones.py"}
    mask_rcnn = (ROOT / "kseg" / "models" / "mask_rcnn" / "backbones.py").read_text()
    assert "Conv2D" not in mask_rcnn and "def resnet" not in mask_rcnn


def test_old_flat_data_paths_import_the_moved_modules():
    """kseg.data's flat modules moved into formats/, generated/ and pipelines/; the old
    import paths answer with the same module objects (kseg._moved)."""
    import importlib

    from kseg._moved import MOVED
    flat = {old: new for old, new in MOVED.items() if old.startswith("kseg.data.")}
    assert len(flat) >= 15
    for old, new in flat.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    assert not list((ROOT / "kseg" / "data").glob("via.py"))
