"""kseg: FCN, U-Net and Mask R-CNN for Keras 3 (TensorFlow, JAX, PyTorch backends).

    import kseg
    config = kseg.MaskRCNNConfig(NAME="shapes", NUM_CLASSES=4)
    model = kseg.MaskRCNN(mode="training", config=config, model_dir="logs")

Model classes are imported on first use, so `import kseg` stays light.

The package, lowest layer first (a module imports only its own folder and lower layers;
tests/test_layout.py checks it):

    utils/       atomic writes, run folders (config.json, checkpoints), backend runtime
    config.py    `Config`, the semantic configs (config_types.py: attribute types)
    ops/         box ops, NMS, RoIAlign, anchors
    saving/      Matterport HDF5 weights;  weights.py  pretrained files (download, verify)
    data/        `Dataset`, format loaders, generated data, pipelines, splits
    evaluate/    AP, COCO AP, semantic metrics;  errors.py  "fix your input" exceptions
    visualize/   drawing instances, semantic overlays, plots
    models/      FCN, U-Net, Mask R-CNN (`MaskRCNN`), rebuilding runs (`models.runs`)
    semantic/    FCN / U-Net training, prediction, losses, metrics, whole jobs
    export/      SavedModel, ONNX, TFLite
    cli/         the `kseg` command (parses arguments, calls the above)

May import: the light modules eagerly (config, data.dataset), the rest on first use.
"""

import importlib

from kseg import _moved
from kseg.config import Config, ConfigError, FCNConfig, SemanticConfig, UNetConfig
from kseg.data.dataset import DataError, Dataset
from kseg.models.mask_rcnn.config import MaskRCNNConfig

__version__ = "0.1.0"
_moved.install()  # old import paths of moved modules (kseg.train, kseg.losses, ...)


def set_run_eagerly(enabled=True):
    """Run compiled functions eagerly; see `kseg.utils.runtime.set_run_eagerly`."""
    from kseg.utils.runtime import set_run_eagerly as _set

    return _set(enabled)


_LAZY = {
    "MaskRCNN": "kseg.models.mask_rcnn.model",
    "build_fcn": "kseg.models.fcn",
    "FCN": "kseg.models.fcn",
    "build_unet": "kseg.models.unet",
    "UNet": "kseg.models.unet",
    "data": "kseg.data",
    "evaluate": "kseg.evaluate",
    "visualize": "kseg.visualize",
    "export": "kseg.export",
    "weights": "kseg.weights",
    "models": "kseg.models",
    "ops": "kseg.ops",
}

__all__ = ["Config", "ConfigError", "DataError", "Dataset", "FCNConfig", "MaskRCNNConfig",
           "SemanticConfig", "UNetConfig", "__version__", "set_run_eagerly", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith("." + name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kseg' has no attribute {name!r}")
