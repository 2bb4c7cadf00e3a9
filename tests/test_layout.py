"""The package's layout: old import paths of moved modules, module sizes, folder
docstrings, and the import graph (no arrow from a lower layer up to a higher one)."""

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
