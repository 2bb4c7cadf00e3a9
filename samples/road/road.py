"""Road vs non-road segmentation with FCN-8s (Long et al.), trained from scratch on a CPU.

    python samples/road/road.py train --dataset ../shared/data/road_camvid/CamVid
    python samples/road/road.py evaluate --dataset ../shared/data/road_camvid/CamVid --out road.json
    python samples/road/road.py train --dataset /data/data_road --format kitti
    python samples/road/road.py train            # generated stand-in (RoadScenesDataset)
    python samples/road/road.py prior --dataset ../shared/data/road_camvid/CamVid  # baselines

Data:
  camvid: the SegNet CamVid layout (`val/`, `valannot/`, `val.txt`); class 3 (Road) is
      road, everything else background. The 101 frames are one drive, so the split is
      by time: the first 81 frames (sorted by name) train, the last 20 validate
      (`kseg.cli.semantic.sequential_split`; a random split would put near-duplicate
      neighbouring frames on both sides).
  kitti: the KITTI road layout (`training/image_2/*.png`, `training/gt_image_2/
      *_road_*.png`, road = magenta); 20% validation by `split_ids(n, 0.2, seed=0)`.
  none: 160 generated training and 40 validation scenes (seeds 0 and 1).

The defaults (RoadConfig, `DEFAULT_EPOCHS`) train a reduced-width FCN-8s (VGG16 at 1/4
width, fc6/fc7 of 256) on 256x256 molded images for 25 epochs of 20 steps (Adam 1e-3,
cosine decay, horizontal flips only: rotation / zoom / color jitter cost accuracy in a
run this short) in ~5 minutes on 2 CPU cores; see README.md for measured scores against
the trivial priors.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kseg.config import FCNConfig  # noqa: E402


class RoadConfig(FCNConfig):
    """Binary road segmentation with a CPU-sized FCN-8s."""

    NAME = "road"
    NUM_CLASSES = 1 + 1  # background + road
    CLASS_NAMES = ["BG", "road"]
    FCN_VARIANT = "fcn8s"
    BACKBONE = "vgg16"
    ENCODER_WIDTH = 0.25
    FCN_FC_FILTERS = 256
    IMAGE_MIN_DIM = 256
    IMAGE_MAX_DIM = 256
    IMAGES_PER_GPU = 4
    STEPS_PER_EPOCH = 20  # ~ one pass over the 81 CamVid training frames
    VALIDATION_STEPS = 5
    OPTIMIZER = "adam"
    LEARNING_RATE = 1e-3
    LR_SCHEDULE = "cosine"
    LOSS = "ce"
    SEED = 0


DEFAULT_EPOCHS = 25


def augmentation(seed=0):
    """Horizontal flips (image and mask together)."""
    import keras

    return keras.layers.RandomFlip("horizontal", seed=seed)


def load_road_datasets(dataset=None, fmt="camvid", val_fraction=0.2, seed=0):
    """(train, val) kseg Datasets for a CamVid / KITTI folder, or generated scenes."""
    from kseg.cli.semantic import sequential_split

    if dataset is None:
        from kseg.data.synthetic import RoadScenesDataset

        return RoadScenesDataset(160, 128, 128, seed=seed), RoadScenesDataset(40, 128, 128,
                                                                               seed=seed + 1)
    if fmt == "kitti":
        from kseg.data.kitti import load_kitti_road
        from kseg.data.splits import split_dataset

        return split_dataset(load_kitti_road(dataset), val_fraction, seed)
    from kseg.data.camvid import load_camvid

    return sequential_split(load_camvid(dataset), val_fraction)


def print_priors(train, val):
    """Print the trivial predictors' scores on `val` (see `kseg.train.mean_mask_prior`)."""
    from kseg.semantic_eval import results_table
    from kseg.train import mean_mask_prior

    priors = mean_mask_prior(train, val)
    for key, results in priors.items():
        print(f"\n{key}:\n{results_table(results)}")
    return priors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="FCN-8s road segmentation (kseg sample).")
    parser.add_argument("command", choices=("train", "evaluate", "prior"))
    parser.add_argument("--dataset", default=None,
                        help="CamVid or KITTI road folder (default: generated scenes)")
    parser.add_argument("--format", choices=("camvid", "kitti"), default="camvid")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch")
    parser.add_argument("--image-size", type=int, default=None, help="square side (x64)")
    parser.add_argument("--weights", default=None,
                        help="train: none|last|PATH (resume); evaluate: last (default)|PATH")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--out", default=None, help="evaluate: JSON results file")
    return parser.parse_args(argv)


def make_config(args):
    """RoadConfig with the command-line overrides."""
    overrides = {}
    if args.steps:
        overrides["STEPS_PER_EPOCH"] = args.steps
    if args.image_size:
        overrides.update(IMAGE_MIN_DIM=args.image_size, IMAGE_MAX_DIM=args.image_size)
    return RoadConfig(**overrides)


def main(argv=None):
    from kseg.cli import semantic as cli

    args = parse_args(argv)
    train, val = load_road_datasets(args.dataset, args.format)
    print(f"{len(train.image_ids)} training and {len(val.image_ids)} validation images")
    if args.command == "prior":
        return print_priors(train, val)
    if args.command == "train":
        config = make_config(args)
        weights = None if args.weights in (None, "none") else args.weights
        return cli.train_command(config, train, val, args.epochs, args.logs, weights,
                                 augmentation=augmentation(config.SEED))
    checkpoint = cli.resolve_checkpoint(args.weights or "last", args.logs, RoadConfig.NAME)
    config = cli.load_run_config(RoadConfig, checkpoint) or make_config(args)
    return cli.evaluate_command(config, val, checkpoint, args.out)


if __name__ == "__main__":
    main()
