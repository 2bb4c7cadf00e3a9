"""Mask R-CNN on a COCO-format dataset (Matterport's samples/coco/coco.py, without --year).

    # fine-tune the published COCO model on your COCO-format data
    python samples/coco/coco.py train --annotations train.json --images train/ --model coco
    # Matterport's schedule on COCO itself (GPU): heads 40, 4+ up to 120, all up to 160 (lr/10)
    python samples/coco/coco.py train --annotations instances_train2017.json \
        --images train2017/ --model imagenet --stages heads:40,4+:120,all:160
    python samples/coco/coco.py evaluate --annotations instances_val2017.json \
        --images val2017/ --model coco --limit 500

`--model`: coco, imagenet, last, none or a checkpoint path. Polygon, RLE and crowd
annotations are read by `kseg.data.load_coco`; crowd regions count as ground
truth to ignore in the COCO metrics.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kseg.config import ConfigError  # noqa: E402
from kseg.data.dataset import DataError  # noqa: E402
from kseg.models.mask_rcnn.presets import CocoConfig, SmallDataConfig  # noqa: E402

PRESETS = {"coco": CocoConfig, "small": SmallDataConfig}


def parse_stages(text):
    """"heads:40,4+:120,all:160" -> [("heads", 40), ("4+", 120), ("all", 160)]."""
    stages = []
    for part in text.split(","):
        layers, _, epochs = part.strip().partition(":")
        if layers not in ("heads", "3+", "4+", "5+", "all") or not epochs.isdigit():
            raise ConfigError(f"--stages {text!r}: expected LAYERS:EPOCH pairs such as "
                              f"heads:40,4+:120,all:160")
        stages.append((layers, int(epochs)))
    return stages


def make_config(args, dataset, base=None):
    """The preset (or the resumed run's config) with NUM_CLASSES from the data."""
    from kseg.models.runs import read_overrides, training_config

    overrides = {"NAME": args.name}
    if args.image_size:
        overrides["IMAGE_MIN_DIM"] = overrides["IMAGE_MAX_DIM"] = args.image_size
    if args.steps:
        overrides["STEPS_PER_EPOCH"] = args.steps
    overrides.update(read_overrides(args.config))
    return training_config(PRESETS[args.preset], dataset, base, overrides, args.model)


def load_data(args):
    """(train, val or None): --val-annotations, else a --val-fraction split."""
    from kseg.data import load_coco, split_dataset

    dataset = load_coco(args.annotations, args.images)
    if args.val_annotations:
        names = dataset.class_names
        val = load_coco(args.val_annotations, args.val_images or args.images)
        if val.class_names != names:
            raise DataError(f"{args.val_annotations}: categories {val.class_names[1:]} differ "
                             f"from the training categories {names[1:]}")
        return dataset, val
    if args.val_fraction > 0 and len(dataset.image_ids) >= 2:
        return split_dataset(dataset, args.val_fraction, seed=0)
    return dataset, None


def train(args):
    """Train the --stages; returns the Keras histories."""
    from kseg import MaskRCNN
    from kseg.models.runs import initial_weights, load_checked_weights
    from kseg.utils.runs import find_checkpoint, read_run_config

    stages = parse_stages(args.stages)
    base = None
    if args.model not in ("none", "coco", "imagenet"):
        base = read_run_config(find_checkpoint(args.logs, args.name) if args.model == "last"
                               else args.model)
    train_set, val_set = load_data(args)
    config = make_config(args, train_set, base)
    path, exclude = initial_weights(args.model, config, args.logs)  # fail fast when offline
    model = MaskRCNN("training", config, args.logs)
    if path is not None:
        load_checked_weights(model, path, exclude)
    histories = []
    for i, (layers, epochs) in enumerate(stages):
        # Matterport drops the learning rate 10x for the final all-layers stage.
        lr = config.LEARNING_RATE / 10 if layers == "all" and i > 0 else config.LEARNING_RATE
        print(f"Stage {i + 1}: {layers} up to epoch {epochs}, lr {lr:g}")
        histories.append(model.train(train_set, val_set, lr, epochs, layers,
                                     verbose=args.verbose))
    print(f"Last checkpoint: {model.find_last()}")
    return histories


def evaluate(args):
    """COCO AP (bbox, segm) and mAP@0.5 on the first --limit images; returns the metrics."""
    from kseg.data import load_coco
    from kseg.evaluate import evaluate_instances, format_instance_report, write_json
    from kseg.models.runs import load_inference_model, read_overrides
    from kseg.utils.runs import find_checkpoint

    checkpoint = args.model
    if args.model == "last":
        checkpoint = find_checkpoint(args.logs, args.name)
    elif args.model == "coco":
        from kseg import weights

        checkpoint = weights.get("mask_rcnn_coco")
    overrides = {"IMAGE_MIN_DIM": args.image_size, "IMAGE_MAX_DIM": args.image_size} \
        if args.image_size else {}
    overrides.update(read_overrides(args.config))
    model, _, checkpoint = load_inference_model(checkpoint, overrides, weights=args.model,
                                                kind="maskrcnn", verbose=True)
    dataset = load_coco(args.annotations, args.images)
    image_ids = list(dataset.image_ids)[:args.limit] if args.limit else dataset.image_ids
    result = evaluate_instances(model, dataset, image_ids, iou=0.5)
    result["checkpoint"] = str(checkpoint)
    print(format_instance_report(result))
    if args.out:
        write_json(result, args.out)
    return result


def build_parser():
    parser = argparse.ArgumentParser(description="Mask R-CNN on a COCO-format dataset.")
    parser.add_argument("command", choices=("train", "evaluate"))
    parser.add_argument("--annotations", required=True, help="COCO instances JSON")
    parser.add_argument("--images", required=True, help="folder of the images")
    parser.add_argument("--val-annotations", default=None, help="train: validation JSON")
    parser.add_argument("--val-images", default=None, help="train: validation image folder")
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="train: hold out this share when no --val-annotations")
    parser.add_argument("--model", default="coco", help="coco, imagenet, last, none or a path")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--name", default="coco", help="run name (NAME)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="coco",
                        help="coco: ResNet-101 (Matterport); small: tiny ResNet for CPUs")
    parser.add_argument("--stages", default="heads:40,4+:120,all:160",
                        help="LAYERS:EPOCH stages (Matterport's schedule by default)")
    parser.add_argument("--steps", type=int, default=None, help="STEPS_PER_EPOCH")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--config", default=None, help="JSON config overrides or a .json file")
    parser.add_argument("--limit", type=int, default=500, help="evaluate: images (0: all)")
    parser.add_argument("--out", default=None, help="evaluate: write the metrics JSON here")
    parser.add_argument("--verbose", type=int, default=1)
    return parser


def main(argv=None):
    from kseg.errors import user_errors

    args = build_parser().parse_args(argv)
    try:
        return {"train": train, "evaluate": evaluate}[args.command](args)
    except user_errors() as exc:
        print(f"coco.py: error: {' '.join(str(exc).split())}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
