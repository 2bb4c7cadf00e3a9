"""Mask R-CNN for car damage: the Matterport custom-dataset tutorial (balloon -> car damage).

    # fine-tune COCO weights (GPU): heads, then all layers
    python samples/car_damage/car_damage.py train --weights coco
    # from scratch on a CPU: small 256x256 model (SmallDataConfig)
    python samples/car_damage/car_damage.py train --weights none --epochs-all 20
    python samples/car_damage/car_damage.py evaluate --weights last
    python samples/car_damage/car_damage.py splash --weights last            # test/ folder
    python samples/car_damage/car_damage.py splash --weights last --image car.jpg
    # car parts instead of damage: train_multiclass.json / val_multiclass.json
    python samples/car_damage/car_damage.py train --multiclass --weights coco

Data: `<dataset>/train/via_region_data.json`, `<dataset>/val/...` (VIA 2.x polygons),
default `kseg.data.paths.dataset_path("car_damage", "dataset")`.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kseg.models.mask_rcnn.config import MaskRCNNConfig  # noqa: E402
from kseg.models.mask_rcnn.presets import SmallDataConfig  # noqa: E402


class CarDamageConfig(MaskRCNNConfig):
    """The tutorial's settings: ResNet-101 fine-tuned from COCO, 1024x1024 images."""

    NAME = "damage"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 1  # background + damage
    STEPS_PER_EPOCH = 100
    DETECTION_MIN_CONFIDENCE = 0.9


class CarDamageSmallConfig(SmallDataConfig):
    """From scratch on a CPU: tiny ResNet, 256x256 images, Adam."""

    NAME = "damage"
    NUM_CLASSES = 1 + 1
    STEPS_PER_EPOCH = 15  # 62 images / 4 per batch


def default_dataset():
    from kseg.data.paths import dataset_path

    return str(dataset_path("car_damage", "dataset"))


def load_subset(dataset_dir, subset, multiclass=False, class_names=None):
    """The `train` or `val` split as a prepared `ViaDataset`."""
    from kseg.data import load_via

    if multiclass:
        return load_via(dataset_dir, subset, class_attribute="name", class_names=class_names,
                        annotation_file=f"{subset}_multiclass.json")
    return load_via(dataset_dir, subset)


def make_config(args, dataset, base=None):
    """CarDamageConfig with pretrained weights, CarDamageSmallConfig from scratch."""
    from kseg.models.runs import read_overrides, training_config

    preset = CarDamageSmallConfig if args.weights == "none" else CarDamageConfig
    overrides = {}
    if args.image_size:
        overrides["IMAGE_MIN_DIM"] = overrides["IMAGE_MAX_DIM"] = args.image_size
    if args.steps:
        overrides["STEPS_PER_EPOCH"] = args.steps
    if args.min_confidence is not None:
        overrides["DETECTION_MIN_CONFIDENCE"] = args.min_confidence
    overrides.update(read_overrides(args.config))
    return training_config(preset, dataset, base, overrides, args.weights)


def train(args):
    """Heads for --epochs-heads epochs, then all layers; returns the Keras histories."""
    from kseg import MaskRCNN
    from kseg.data import default_augmentation
    from kseg.models.runs import initial_weights, load_checked_weights
    from kseg.utils.runs import find_checkpoint, read_run_config

    base = None
    if args.weights not in ("none", "coco", "imagenet"):
        base = read_run_config(find_checkpoint(args.logs, "damage") if args.weights == "last"
                               else args.weights)
    train_set = load_subset(args.dataset, "train", args.multiclass)
    val_set = load_subset(args.dataset, "val", args.multiclass, train_set.class_names[1:])
    config = make_config(args, train_set, base)
    path, exclude = initial_weights(args.weights, config, args.logs)  # fail fast when offline
    model = MaskRCNN("training", config, args.logs)
    if path is not None:
        load_checked_weights(model, path, exclude)
    augmentation = None if args.no_augment else default_augmentation("instance", seed=0)
    pretrained = args.weights in ("coco", "imagenet")  # heads first, then all at lr / 10
    heads = args.epochs_heads if args.epochs_heads is not None else (10 if pretrained else 0)
    histories = []
    if heads:
        print("Training network heads")
        histories.append(model.train(train_set, val_set, config.LEARNING_RATE, heads, "heads",
                                     augmentation=augmentation, verbose=args.verbose))
    if args.epochs_all:
        print("Training all layers")
        lr = config.LEARNING_RATE / 10 if pretrained else config.LEARNING_RATE
        histories.append(model.train(train_set, val_set, lr, heads + args.epochs_all, "all",
                                     augmentation=augmentation, verbose=args.verbose))
    print(f"Last checkpoint: {model.find_last()}")
    return histories


def _inference(args):
    """(inference model, checkpoint) rebuilt from the run's config.json."""
    from kseg.models.runs import load_inference_model, read_overrides, resolve_checkpoint

    checkpoint = resolve_checkpoint(args.weights, args.logs, "damage")
    overrides = {}
    if args.image_size:
        overrides["IMAGE_MIN_DIM"] = overrides["IMAGE_MAX_DIM"] = args.image_size
    if args.min_confidence is not None:
        overrides["DETECTION_MIN_CONFIDENCE"] = args.min_confidence
    overrides.update(read_overrides(args.config))
    model, _, checkpoint = load_inference_model(checkpoint, overrides, kind="maskrcnn",
                                                verbose=True)
    return model, checkpoint


def evaluate(args):
    """mask / box mAP@0.5 and COCO AP on the val split; returns the metrics dict."""
    from kseg.evaluate import evaluate_instances, format_instance_report, write_json

    model, checkpoint = _inference(args)
    names = getattr(model.config, "CLASS_NAMES", None)
    val_set = load_subset(args.dataset, "val", args.multiclass, names[1:] if names else None)
    result = evaluate_instances(model, val_set, val_set.image_ids, iou=0.5)
    result["checkpoint"] = str(checkpoint)
    print(format_instance_report(result))
    if args.out:
        write_json(result, args.out)
        print(f"Wrote {args.out}")
    return result


def splash(args):
    """Color-splash PNGs (gray image, damage in color) for --image or the test/ folder."""
    from PIL import Image

    from kseg.data import list_images, read_image
    from kseg.utils.io import atomic_path
    from kseg.visualize import splash as color_splash

    model, _ = _inference(args)
    files = list_images([args.image] if args.image else [os.path.join(args.dataset, "test")])
    os.makedirs(args.out, exist_ok=True)
    written = []
    for path in files:
        image = read_image(path)
        det = model.detect([image])[0]
        target = os.path.join(args.out, f"splash_{Path(path).stem}.png")
        with atomic_path(target) as tmp:
            Image.fromarray(color_splash(image, det["masks"])).save(tmp)
        print(f"{path}: {len(det['class_ids'])} regions -> {target}")
        written.append(target)
    return written


def build_parser():
    parser = argparse.ArgumentParser(description="Mask R-CNN car damage sample.")
    parser.add_argument("command", choices=("train", "evaluate", "splash"))
    parser.add_argument("--dataset", default=default_dataset(), help="folder with train/, val/")
    parser.add_argument("--weights", default=None,
                        help="coco, imagenet, last, none or a path (train default coco, "
                             "else last)")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--multiclass", action="store_true",
                        help="car parts (train_multiclass.json) instead of damage")
    parser.add_argument("--epochs-heads", type=int, default=None,
                        help="epochs of heads-only training (default: 10 with coco/imagenet "
                             "weights, else 0)")
    parser.add_argument("--epochs-all", type=int, default=10, help="then epochs of all layers")
    parser.add_argument("--steps", type=int, default=None, help="STEPS_PER_EPOCH")
    parser.add_argument("--image-size", type=int, default=None, help="square side, multiple of 64")
    parser.add_argument("--config", default=None, help="JSON config overrides or a .json file")
    parser.add_argument("--no-augment", action="store_true", help="no flips / zoom / color")
    parser.add_argument("--min-confidence", type=float, default=None)
    parser.add_argument("--image", default=None, help="splash: one image (default: test/)")
    parser.add_argument("--out", default=None,
                        help="evaluate: JSON file; splash: folder (default splash/)")
    parser.add_argument("--verbose", type=int, default=1)
    return parser


def main(argv=None):
    from kseg.errors import user_errors

    args = build_parser().parse_args(argv)
    if args.weights is None:
        args.weights = "coco" if args.command == "train" else "last"
    if args.command == "splash" and args.out is None:
        args.out = "splash"
    try:
        return {"train": train, "evaluate": evaluate, "splash": splash}[args.command](args)
    except user_errors() as exc:
        print(f"car_damage.py: error: {' '.join(str(exc).split())}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
