"""The notebooks in notebooks/: stored clean, and each one runs end to end in quick mode.

Each notebook is executed with nbclient in a fresh `python3` kernel of this interpreter
(`sys.executable`), with `KSEG_NOTEBOOK_QUICK=1` (tiny settings) and a temporary working
directory; a cell that raises fails the test, and the notebook must draw at least one picture.
"""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 600


def _read(name):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def _kernel_on_this_interpreter(monkeypatch, folder):
    """A `python3` kernelspec running `sys.executable`, found first (JUPYTER_PATH wins)."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (kseg tests)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    paths = [str(folder)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(paths))


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_clean(name):
    """Stored without outputs, first code cell is the parameters cell reading QUICK."""
    nb = _read(name)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cell"
    for cell in code:
        assert not cell.outputs and cell.execution_count is None, \
            f"{name}: stored with outputs; clear them before committing"
    assert "KSEG_NOTEBOOK_QUICK" in code[0].source, \
        f"{name}: the first code cell must be the parameters cell (QUICK from KSEG_NOTEBOOK_QUICK)"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path, monkeypatch):
    pytest.importorskip("ipykernel")
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    nb = _read(name)
    monkeypatch.setenv("KSEG_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    pythonpath = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))  # the kseg under test
    _kernel_on_this_interpreter(monkeypatch, tmp_path / "jupyter")
    workdir = tmp_path / "work"
    workdir.mkdir()

    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                                     startup_timeout=120, resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / name)  # the executed notebook, for a look on failure

    pictures = sum("image/png" in output.get("data", {})
                   for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)
    assert pictures >= 1, f"{name} drew no picture (no image/png output)"
