"""The options of `kseg ... maskrcnn` turned into datasets and configs.

Dataset sources (`--dataset`): "shapes" (generated), a folder of VIA exports
(`<folder>/<subset>/via_region_data.json`, or one JSON in `<folder>` split by
`--val-fraction`), or COCO (`--format coco --annotations FILE --images DIR`).

Configs: a run's `config.json` (written beside its checkpoints) when resuming or
predicting; otherwise a preset from `kseg.models.mask_rcnn.presets` (ShapesConfig
for shapes, FineTuneConfig with coco/imagenet weights, SmallDataConfig from
scratch), then the command-line options, then `--config` JSON overrides.
Checkpoints and run configs are found by `kseg.utils.runs`, inference configs built by
`kseg.models.runs`.
"""

import re
from pathlib import Path

from kseg.cli import CLIError
from kseg.cli.scaling import scaling_overrides
from kseg.data.dataset import DataError
from kseg.data.image_io import IMAGE_EXTENSIONS  # noqa: F401 (kept for old imports)
from kseg.utils import runs

_GENERIC_DIRS = {"dataset", "datasets", "data", "train", "val", "images", "annotations"}


# === Names, checkpoints, overrides ===
def default_name(args):
    """Run name from the data: "shapes", "coco", or the dataset folder's name."""
    if is_coco(args):
        return "coco"
    if args.dataset == "shapes":
        return "shapes"
    folder = Path(args.dataset).resolve()
    while folder.name.lower() in _GENERIC_DIRS and folder.parent != folder:
        folder = folder.parent
    return re.sub(r"[^0-9a-zA-Z]+", "_", folder.name).strip("_").lower() or "maskrcnn"


def find_checkpoint(logs, name=None):
    """The last checkpoint of run `name` in `logs`, or of the newest run when name is None
    (`kseg.utils.runs.find_checkpoint`)."""
    return runs.find_checkpoint(logs, name, kind="maskrcnn")


def run_config(checkpoint):
    """The `config.json` values of the run that wrote `checkpoint`, or None
    (`kseg.utils.runs.read_run_config`)."""
    return runs.read_run_config(checkpoint)


def parse_overrides(text):
    """`--config`: a JSON object, or the path of a JSON file, as a dict
    (`kseg.models.runs.read_overrides`)."""
    from kseg.models.runs import read_overrides

    return read_overrides(text)


# === Configs ===
def _option_overrides(args):
    """Config values given by plain options (--image-size, --steps, --lr, ...)."""
    out = {}
    if getattr(args, "image_size", None):
        out["IMAGE_MIN_DIM"] = out["IMAGE_MAX_DIM"] = args.image_size
    if getattr(args, "steps", None):
        out["STEPS_PER_EPOCH"] = args.steps
    if getattr(args, "val_steps", None) is not None:
        out["VALIDATION_STEPS"] = args.val_steps
    if getattr(args, "lr", None):
        out["LEARNING_RATE"] = args.lr
    if getattr(args, "min_confidence", None) is not None:
        out["DETECTION_MIN_CONFIDENCE"] = args.min_confidence
    out.update(scaling_overrides(args))
    return out


def preset_for(args):
    """The preset config class for the data and --weights."""
    from kseg.models.mask_rcnn import presets

    if args.weights in ("coco", "imagenet"):
        return presets.FineTuneConfig
    if args.dataset == "shapes" and not is_coco(args):
        return presets.ShapesConfig
    return presets.SmallDataConfig


def train_config(args, dataset, name=None, base=None, preset=None, weights=None):
    """Training config: `base` (a run's config.json values) or `preset` (default
    `preset_for(args)`), then NAME (unless None), the classes of `dataset`, ResNet-50 for
    ImageNet weights (`weights`, default `args.weights`), the plain options and --config
    (`kseg.models.runs.training_config`)."""
    from kseg.models.runs import training_config

    overrides = {} if name is None else {"NAME": name}
    overrides.update(_option_overrides(args))
    overrides.update(parse_overrides(args.config))
    return training_config(preset or preset_for(args), dataset, base, overrides,
                           weights or args.weights)


def inference_config(args, checkpoint):
    """Inference config (one image per batch) of the run that wrote `checkpoint`, with the
    plain options and --config applied (`kseg.models.runs.inference_config`)."""
    from kseg.models.runs import inference_config as library_inference_config

    overrides = {**_option_overrides(args), **parse_overrides(args.config)}
    return library_inference_config(checkpoint, overrides, weights=args.weights)


# === Datasets ===
def is_coco(args):
    return getattr(args, "format", None) == "coco" or (
        getattr(args, "format", None) is None and getattr(args, "annotations", None))


def load_data(args, which, class_names=None, size=None):
    """(train, val or None) for which="train"; (evaluation set, None) for which="val".

    `class_names` (without BG) fixes the class order (e.g. a run's CLASS_NAMES[1:]);
    `size` is the side of generated shapes images.
    """
    if which not in ("train", "val"):
        raise ValueError(f"which={which!r}: expected 'train' or 'val'")
    if is_coco(args):
        return _coco_data(args, which)
    if args.dataset == "shapes":
        return _shapes_data(args, which, size)
    return _via_data(args, which, class_names)


def _shapes_data(args, which, size=None):
    from kseg.data import ShapesDataset

    size = size or args.image_size or 128
    val = ShapesDataset(max(8, args.shapes_count // 10), size, size, seed=args.seed + 1)
    if which == "val":
        return val, None
    return ShapesDataset(args.shapes_count, size, size, seed=args.seed), val


def _via_data(args, which, class_names=None):
    from kseg.data import split_dataset

    root = Path(args.dataset)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; expected 'shapes', a folder of VIA "
                        f"annotations (<folder>/train/via_region_data.json) or --format coco "
                        f"--annotations FILE --images DIR")
    subset = args.subset or which
    if (root / subset).is_dir():
        data = _load_via(root, subset, args, class_names)
        if which == "val" or subset == "val" or not (root / "val").is_dir():
            return data, None
        return data, _load_via(root, "val", args, data.class_names[1:])
    if (root / _annotation_file(args, "")).is_file():
        whole = _load_via(root, None, args, class_names)
        train, val = split_dataset(whole, args.val_fraction, args.seed)
        return (train, val) if which == "train" else (val, None)
    raise DataError(f"{root}: no VIA annotations; expected "
                    f"{root / subset / _annotation_file(args, subset)} or "
                    f"{root / _annotation_file(args, '')}")


def _annotation_file(args, subset):
    return args.annotation_file.replace("{subset}", subset or "")


def _load_via(root, subset, args, class_names=None):
    from kseg.data import load_via

    return load_via(root, subset, class_attribute=args.class_attribute,
                    class_names=list(class_names) if class_names else None,
                    annotation_file=_annotation_file(args, subset))


def _coco_data(args, which):
    from kseg.data import load_coco, split_dataset

    if not args.annotations:
        raise CLIError("--format coco needs --annotations FILE (and --images DIR)")
    images = args.images or str(Path(args.annotations).parent)
    if not Path(images).is_dir():
        raise DataError(f"{images}: image folder not found (--images)")
    dataset = load_coco(args.annotations, images)
    if which == "val" or args.val_fraction <= 0 or len(dataset.image_ids) < 2:
        return dataset, None
    return split_dataset(dataset, args.val_fraction, args.seed)


def list_images(items):
    """Image files named by `items` (files or folders): `kseg.data.list_images`."""
    from kseg.data.image_io import list_images as library_list_images

    return library_list_images(items)
