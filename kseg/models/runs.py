"""Models from run folders: the one way to rebuild a trained model for inference.

    model, config, checkpoint = load_inference_model("logs/shapes20260101T1200")  # newest epoch
    model, config, checkpoint = load_inference_model("logs/.../mask_rcnn_shapes_0010.h5")
    model, config, checkpoint = load_inference_model("logs/unet.../kseg_unet_0005.weights.h5")

A run folder describes itself (`config.json`, see `kseg.utils.runs`): the model kind
(Mask R-CNN, FCN, U-Net), every config value and the class names. Mask R-CNN comes
back as an inference `MaskRCNN` (one image per batch unless `overrides` say otherwise),
FCN / U-Net as their `keras.Model`. The CLI, the samples and the notebooks all call this.

Also the weights a Mask R-CNN training starts from (`initial_weights`: coco, imagenet,
last, a path) and a by-name load that fails clearly when nothing fits
(`load_checked_weights`).
"""

from pathlib import Path

from kseg.utils.runs import (
    find_checkpoint,
    last_checkpoint_in,
    model_kind,
    read_run_config,
    run_config_path,
)

COCO_HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")
INFERENCE_OVERRIDES = {"IMAGES_PER_GPU": 1, "GPU_COUNT": 1}

__all__ = ["COCO_HEAD_LAYERS", "build_semantic_model", "config_class_for", "inference_config",
           "initial_weights", "load_checked_weights", "load_inference_model", "load_run_config",
           "read_overrides", "resolve_checkpoint", "training_config"]


# === Configs ===
def config_class_for(kind):
    """The config class of "maskrcnn", "fcn" or "unet"."""
    from kseg.config import FCNConfig, UNetConfig
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    classes = {"maskrcnn": MaskRCNNConfig, "fcn": FCNConfig, "unet": UNetConfig}
    if kind not in classes:
        raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(classes)}")
    return classes[kind]


def load_run_config(checkpoint_or_run, overrides=None, config_class=None):
    """The config saved in a run folder (or a checkpoint's run), with `overrides` applied;
    None when the run has no `config.json`. `config_class` defaults to the run's model."""
    values = read_run_config(checkpoint_or_run)
    if values is None:
        return None
    config_class = config_class or config_class_for(model_kind(values))
    return config_class.from_dict({**values, **(overrides or {})})


def read_overrides(text):
    """Config overrides from a JSON object's text or a JSON file's path, as a dict
    (empty for None / ""); `ConfigError` names what is wrong."""
    import json

    from kseg.config import ConfigError

    if not text:
        return {}
    source = text
    if not text.lstrip().startswith("{"):
        if not Path(text).is_file():
            raise FileNotFoundError(f"--config {text}: neither a JSON object nor a file")
        text = Path(text).read_text(encoding="utf-8")
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--config {source}: invalid JSON ({e.msg}, column {e.colno})") from e
    if not isinstance(values, dict):
        raise ConfigError(f'--config {source}: expected a JSON object like '
                          f'{{"IMAGES_PER_GPU": 1}}')
    return values


def training_config(preset, dataset, base=None, overrides=None, weights=None):
    """A Mask R-CNN training config: `base` (a run's config.json values, when resuming) or
    the `preset` class, with NUM_CLASSES and CLASS_NAMES of `dataset`, ResNet-50 for
    `weights="imagenet"` (the only ImageNet file), then `overrides`."""
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    values = {"NUM_CLASSES": dataset.num_classes, "CLASS_NAMES": list(dataset.class_names)}
    if weights == "imagenet":
        values["BACKBONE"] = "resnet50"
    values.update(overrides or {})
    if base is not None:
        return MaskRCNNConfig.from_dict({**base, **values})
    return preset(**values)


def inference_config(checkpoint, overrides=None, weights=None, one_image=True, default=None):
    """Mask R-CNN inference config of the run that wrote `checkpoint` (one image per batch
    unless `one_image` is False: then the run's batch size stays).

    `weights="coco"` without a run config gives Matterport's COCO model; `default` (a
    config) stands in for a missing `config.json`; otherwise a run without one needs
    NUM_CLASSES (at least) in `overrides`.
    """
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    overrides = {**(INFERENCE_OVERRIDES if one_image else {}), **(overrides or {})}
    config = load_run_config(checkpoint, overrides, MaskRCNNConfig)
    if config is not None:
        return config
    if default is not None:
        return type(default).from_dict({**default.to_dict(), **overrides})
    if weights == "coco":
        from kseg.models.mask_rcnn.presets import CocoConfig
        from kseg.weights import COCO_CLASS_NAMES

        return CocoConfig(**{"CLASS_NAMES": list(COCO_CLASS_NAMES), **overrides})
    if "NUM_CLASSES" in overrides:
        return MaskRCNNConfig(**overrides)
    raise FileNotFoundError(
        f"{run_config_path(checkpoint)} not found, so the model's settings (classes, backbone, "
        f"sizes) are unknown. Runs trained by kseg write it; for an older run pass the "
        f"training config's values, e.g. --config settings.json written by "
        f"`ShapesConfig(NUM_CLASSES=...).to_json('settings.json')` from the preset it used.")


# === Weights ===
def resolve_checkpoint(weights, logs="logs", name=None, kind=None):
    """A checkpoint path from "last" (newest of run `name`, or of any run with name None),
    a run folder (its highest epoch) or a file path; FileNotFoundError names what is missing."""
    if weights in (None, "last"):
        return find_checkpoint(logs, name, kind)
    path = Path(weights)
    if path.is_dir():
        return last_checkpoint_in(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {weights} (expected 'last', a run "
                                f"folder or a checkpoint path)")
    return str(path)


def initial_weights(choice, config, logs="logs"):
    """(path, exclude) a Mask R-CNN training starts from, for coco | imagenet | last | PATH;
    (None, ()) for none. COCO weights skip the class-specific heads unless NUM_CLASSES is 81."""
    from kseg import weights

    if choice in (None, "none"):
        return None, ()
    if choice == "coco":
        exclude = COCO_HEAD_LAYERS if config.NUM_CLASSES != 81 else ()
        return weights.get("mask_rcnn_coco"), exclude
    if choice == "imagenet":
        return weights.get("resnet50_imagenet"), ()
    if choice == "last":
        return find_checkpoint(logs, config.NAME), ()
    if not Path(choice).is_file():
        raise FileNotFoundError(f"weights file not found: {choice} (expected coco, imagenet, "
                                f"last, none or a .h5 path)")
    return choice, ()


def load_checked_weights(model, path, exclude=(), verbose=True):
    """Load `path` into a `MaskRCNN` by layer name. A file that matches no layer, or whose
    shapes do not fit, raises `WeightsError` saying which settings must match."""
    from kseg.weights import WeightsError

    try:
        report = model.load_weights(path, by_name=True, exclude=list(exclude))
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{path} does not fit this model ({first}); build it with the config "
                           f"the checkpoint was trained with (its run's config.json, or "
                           f"--config with NUM_CLASSES, BACKBONE, BACKBONE_FILTERS, sizes)") from exc
    if report is not None and not report.loaded:
        raise WeightsError(f"{path}: no layer of the model matched this weights file; is the "
                           f"config (--config, BACKBONE, sizes) the one it was trained with?")
    if verbose and report is not None:
        print(report.summary())
    return report


# === Models ===
def build_semantic_model(config):
    """FCN for an FCNConfig, U-Net for a UNetConfig."""
    from kseg.config import FCNConfig

    if isinstance(config, FCNConfig):
        from kseg.models.fcn import build_fcn

        return build_fcn(config)
    from kseg.models.unet import build_unet

    return build_unet(config)


def load_inference_model(path, overrides=None, weights=None, kind=None, one_image=True,
                         default=None, verbose=False):
    """(model, config, checkpoint) rebuilt from a run folder or a checkpoint file.

    Args:
        path: a run folder (its highest-epoch checkpoint is loaded) or a checkpoint
            (`mask_rcnn_*.h5`, `kseg_*.weights.h5`, or any Mask R-CNN `.h5` such as
            mask_rcnn_coco.h5 with `weights="coco"`).
        overrides: config values to change (e.g. DETECTION_MIN_CONFIDENCE, IMAGES_PER_GPU).
        weights: "coco" when `path` is Matterport's COCO file (no run folder).
        kind: "maskrcnn", "fcn" or "unet" to refuse a run of another model. A run without
            `config.json` needs `kind` and the whole config in `overrides`.
        one_image: Mask R-CNN: one image per batch (False keeps the run's IMAGES_PER_GPU).
        default: Mask R-CNN: the config to use when the run has no `config.json` (e.g.
            the preset a checkpoint from elsewhere was trained with).
        verbose: print the Mask R-CNN load report.
    Returns:
        Mask R-CNN: an inference `MaskRCNN`; FCN / U-Net: the built `keras.Model`.
    """
    checkpoint = last_checkpoint_in(path) if Path(path).is_dir() else str(path)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"weights file not found: {checkpoint}")
    values = read_run_config(checkpoint)
    if values is None and kind in ("fcn", "unet") and overrides:
        values = {"MODEL": kind}
    if values is None and checkpoint.endswith(".weights.h5"):
        raise FileNotFoundError(f"{run_config_path(checkpoint)} not found: an FCN / U-Net "
                                f"checkpoint is rebuilt from its run's config.json "
                                f"(written by `kseg train` and `train_semantic`)")
    found = model_kind(values) if values is not None else "maskrcnn"
    if kind is not None and found != kind:
        from kseg.config import ConfigError

        raise ConfigError(f"{run_config_path(checkpoint)}: this run trained a {found} model, "
                         f"not a {kind} model; pick that model's command or another run")
    if found == "maskrcnn":
        from kseg.models.mask_rcnn.model import MaskRCNN

        config = inference_config(checkpoint, overrides, weights, one_image, default)
        model = MaskRCNN("inference", config, model_dir=str(Path(checkpoint).parent))
        load_checked_weights(model, checkpoint, verbose=verbose)
        return model, config, checkpoint
    from kseg.saving.files import load_weights_atomic

    config = config_class_for(found).from_dict({**values, **(overrides or {})})
    model = build_semantic_model(config)
    load_weights_atomic(model, checkpoint)
    return model, config, checkpoint
