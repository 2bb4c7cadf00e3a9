"""Import a sample script (`samples/<name>/<name>.py`) as a module for the tests."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_sample(name):
    """The module of `samples/<name>/<name>.py` (a fresh import each call)."""
    path = ROOT / "samples" / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
