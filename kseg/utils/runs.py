"""Run folders and their checkpoints, shared by every model (Matterport's layout).

    <model_dir>/<name><YYYYmmddTHHMM>/mask_rcnn_<name>_<epoch:04d>.h5        Mask R-CNN
    <model_dir>/<name><YYYYmmddTHHMM>/kseg_<name>_<epoch:04d>.weights.h5     FCN / U-Net
"""

import datetime
import os
import re
from pathlib import Path


def new_log_dir(model_dir, name, now=None):
    """`model_dir/<name><YYYYmmddTHHMM>` (a Path) for a new training run."""
    now = now or datetime.datetime.now()
    return Path(model_dir) / f"{name.lower()}{now:%Y%m%dT%H%M}"


def find_last(model_dir, name):
    """The newest checkpoint (highest epoch) of the newest `model_dir/<name>*` run with one.

    Raises FileNotFoundError naming the folder when there is none.
    """
    prefix = name.lower()
    pattern = re.compile(rf"(?:mask_rcnn|kseg)_{re.escape(prefix)}_(\d{{4,}})\.(?:weights\.)?h5$")
    root = Path(model_dir)
    runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)) \
        if root.is_dir() else []
    for run in reversed(runs):
        found = [(int(m.group(1)), p) for p in run.iterdir() if (m := pattern.match(p.name))]
        if found:
            return max(found)[1]
    raise FileNotFoundError(
        f"no checkpoint of {name!r} in {os.path.abspath(root)}: expected "
        f"{prefix}<timestamp>/mask_rcnn_{prefix}_<epoch>.h5 (Mask R-CNN) or "
        f"kseg_{prefix}_<epoch>.weights.h5 (FCN / U-Net); train first or pass a weights path.")
