"""Run folders and their checkpoints, shared by every model (Matterport's layout).

    <model_dir>/<name><YYYYmmddTHHMM>/mask_rcnn_<name>_<epoch:04d>.h5        Mask R-CNN
    <model_dir>/<name><YYYYmmddTHHMM>/kseg_<name>_<epoch:04d>.weights.h5     FCN / U-Net
    <model_dir>/<name><YYYYmmddTHHMM>/config.json      the run's config (`write_run_config`)

Every run folder describes itself: whoever trains (`MaskRCNN.train`, `train_semantic`,
the CLI, the samples) writes `config.json` with the config's values, MODEL, PRESET and
CLASS_NAMES; `kseg.models.runs.load_inference_model` rebuilds the model from it.
"""

import datetime
import json
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


# Checkpoint file names of every model: Mask R-CNN's Matterport `.h5`, FCN / U-Net's Keras 3.
CHECKPOINT_GLOBS = {"maskrcnn": "mask_rcnn_*_[0-9][0-9][0-9][0-9].h5",
                    "semantic": "kseg_*_[0-9][0-9][0-9][0-9].weights.h5"}


def find_checkpoint(logs, name=None, kind=None):
    """The last checkpoint of run `name` in `logs` (`find_last`), or with name None the
    newest checkpoint of any run there (`kind` "maskrcnn" or "semantic" limits the files)."""
    if name:
        return str(find_last(logs, name))
    globs = [CHECKPOINT_GLOBS[kind]] if kind else list(CHECKPOINT_GLOBS.values())
    found = sorted((p for g in globs for p in Path(logs).glob(f"*/{g}")),
                   key=lambda p: (p.stat().st_mtime, p.name))
    if not found:
        what = {"maskrcnn": "Mask R-CNN ", "semantic": "FCN / U-Net "}.get(kind, "")
        raise FileNotFoundError(f"no {what}checkpoint in {Path(logs).resolve()}: train first "
                                f"(kseg train ...) or pass --weights PATH")
    return str(found[-1])


def last_checkpoint_in(run_dir):
    """The highest-epoch checkpoint file in the run folder `run_dir`."""
    run_dir = Path(run_dir)
    pattern = re.compile(r"(?:mask_rcnn|kseg)_.+_(\d{4,})\.(?:weights\.)?h5$")
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := pattern.match(p.name))] \
        if run_dir.is_dir() else []
    if not found:
        raise FileNotFoundError(f"{run_dir}: no checkpoint (mask_rcnn_<name>_<epoch>.h5 or "
                                f"kseg_<name>_<epoch>.weights.h5) in this run folder")
    return str(max(found)[1])


def run_config_path(checkpoint_or_run):
    """`config.json` of a run folder, or of the run folder holding a checkpoint."""
    path = Path(checkpoint_or_run)
    return (path if path.is_dir() else path.parent) / "config.json"


def read_run_config(checkpoint_or_run):
    """The `config.json` values (a dict) of a run folder or checkpoint's run, or None."""
    path = run_config_path(checkpoint_or_run)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e


def model_kind(config):
    """"maskrcnn", "fcn" or "unet" for a config object or its `to_dict()` values."""
    values = config if isinstance(config, dict) else config.to_dict()
    if values.get("MODEL"):
        return values["MODEL"]
    if "BACKBONE_STRIDES" in values:
        return "maskrcnn"
    if "FCN_VARIANT" in values:
        return "fcn"
    if "UNET_DEPTH" in values:
        return "unet"
    raise ValueError("cannot tell the model (Mask R-CNN, FCN or U-Net) from this config")


def write_run_config(config, log_dir, class_names=None):
    """Write `log_dir/config.json`: the config's values, MODEL ("maskrcnn", "fcn", "unet"),
    PRESET (the config's class, e.g. "kseg.models.mask_rcnn.presets.ShapesConfig") and
    CLASS_NAMES (the config's, else `class_names`). Atomic; returns the path."""
    from kseg.utils.io import atomic_write_text

    values = config.to_dict()
    values["MODEL"] = model_kind(config)
    values["PRESET"] = f"{type(config).__module__}.{type(config).__qualname__}"
    if not values.get("CLASS_NAMES") and class_names is not None:
        values["CLASS_NAMES"] = [str(n) for n in class_names]
    path = Path(log_dir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(values, indent=2, sort_keys=True))
