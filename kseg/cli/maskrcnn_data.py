"""Datasets, configs and checkpoints behind `kseg ... maskrcnn` (also used by the samples).

Dataset sources (`--dataset`): "shapes" (generated), a folder of VIA exports
(`<folder>/<subset>/via_region_data.json`, or one JSON in `<folder>` split by
`--val-fraction`), or COCO (`--format coco --annotations FILE --images DIR`).

Configs: a run's `config.json` (written beside its checkpoints) when resuming or
predicting; otherwise a preset from `kseg.models.mask_rcnn.presets` (ShapesConfig
for shapes, FineTuneConfig with coco/imagenet weights, SmallDataConfig from
scratch), then the command-line options, then `--config` JSON overrides.
"""

import json
import re
from pathlib import Path

from kseg.cli import CLIError
from kseg.cli.scaling import scaling_overrides
from kseg.data.dataset import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
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
    """The last checkpoint of run `name` in `logs`, or of the newest run when name is None."""
    from kseg.models.mask_rcnn import checkpoints

    if name:
        return checkpoints.find_last(logs, name)
    found = sorted(Path(logs).glob("*/mask_rcnn_*_[0-9][0-9][0-9][0-9].h5"),
                   key=lambda p: (p.stat().st_mtime, p.name))
    if not found:
        raise FileNotFoundError(f"no Mask R-CNN checkpoint in {Path(logs).resolve()}: train "
                                f"first (kseg train maskrcnn) or pass --weights PATH")
    return str(found[-1])


def run_config(checkpoint):
    """The `config.json` values of the run that wrote `checkpoint`, or None."""
    path = Path(checkpoint).parent / "config.json"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def parse_overrides(text):
    """`--config`: a JSON object, or the path of a JSON file, as a dict."""
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
        raise CLIError(f"--config {source}: invalid JSON ({e.msg}, column {e.colno})") from e
    if not isinstance(values, dict):
        raise CLIError(f'--config {source}: expected a JSON object like {{"IMAGES_PER_GPU": 1}}')
    return values


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
    ImageNet weights (`weights`, default `args.weights`), the plain options and --config."""
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    overrides = {"NUM_CLASSES": dataset.num_classes, "CLASS_NAMES": list(dataset.class_names)}
    if name is not None:
        overrides["NAME"] = name
    if (weights or args.weights) == "imagenet":
        overrides["BACKBONE"] = "resnet50"
    overrides.update(_option_overrides(args))
    overrides.update(parse_overrides(args.config))
    if base is not None:
        return MaskRCNNConfig.from_dict({**base, **overrides})
    return (preset or preset_for(args))(**overrides)


def inference_config(args, checkpoint):
    """Inference config (one image per batch) of the run that wrote `checkpoint`."""
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    overrides = {"IMAGES_PER_GPU": 1, "GPU_COUNT": 1, **_option_overrides(args)}
    overrides.update(parse_overrides(args.config))
    base = run_config(checkpoint)
    if base is not None:
        return MaskRCNNConfig.from_dict({**base, **overrides})
    if args.weights == "coco":
        from kseg.models.mask_rcnn.presets import CocoConfig
        from kseg.weights import COCO_CLASS_NAMES

        return CocoConfig(**{"CLASS_NAMES": list(COCO_CLASS_NAMES), **overrides})
    if "NUM_CLASSES" in overrides:
        return MaskRCNNConfig(**overrides)
    raise CLIError(f"{Path(checkpoint).parent / 'config.json'} not found, so the model's "
                   f"settings are unknown; pass them with --config '{{\"NUM_CLASSES\": 2, ...}}'")


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
    """Image files named by `items` (files or folders, folders sorted by name)."""
    files = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{item}: no such image file or folder")
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {', '.join(items)}")
    return files
