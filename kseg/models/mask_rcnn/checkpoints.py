"""Checkpoint files and log directories, Matterport style.

    logs/<name><YYYYmmddTHHMM>/mask_rcnn_<name>_<epoch:04d>.h5

Weights are written by layer name in the Keras 2 HDF5 layout of `mask_rcnn_coco.h5`
(through `kseg.saving`), atomically: a crash never leaves a half-written checkpoint.
"""

import os
import re

from kseg.saving.legacy_h5 import legacy_weights
from kseg.saving.matterport_h5 import legacy_weight_names, write_matterport_fixture
from kseg.utils import runs

_CHECKPOINT = re.compile(r".*[/\\][\w-]+(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})[/\\]"
                         r"(?:mask_rcnn|kseg)_[\w-]+_(\d{4})\.(?:weights\.)?h5$")


def save_weights_by_name(model, path):
    """Write every top-level layer's weights (nested models as one group) to `path`."""
    layers = []
    for layer in model.layers:
        names = legacy_weight_names(layer)
        arrays = [v.numpy() if hasattr(v, "numpy") else v.value
                  for v in legacy_weights(layer)]
        layers.append((layer.name, list(zip(names, [_to_numpy(a) for a in arrays]))))
    return write_matterport_fixture(path, layers, keras_version="3", backend="kseg")


def _to_numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


def log_dir_for(model_dir, name, model_path=None, epoch=0):
    """(log_dir, epoch): continue a kseg checkpoint's run, else a new timestamped dir."""
    if model_path:
        match = _CHECKPOINT.match(os.path.abspath(os.fspath(model_path)))
        if match:
            return os.path.dirname(os.path.abspath(model_path)), int(match.group(6))
    return os.fspath(runs.new_log_dir(model_dir, name)), epoch


def find_last(model_dir, name):
    """The newest checkpoint of the newest run of `name` in `model_dir` (a str path)."""
    return str(runs.find_last(model_dir, name))
