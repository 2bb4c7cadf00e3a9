"""Where the real datasets are: `KSEG_DATA_DIR`, else `../shared/data` beside the checkout."""

import os
from pathlib import Path


def data_dir():
    """The shared data folder (may not exist)."""
    env = os.environ.get("KSEG_DATA_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if (parent / "kseg").is_dir() and candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data"


def dataset_path(*parts):
    """Path to a dataset under `data_dir()`, e.g. `dataset_path("smoke_fss", "FSS")`."""
    return data_dir().joinpath(*parts)
