"""Road vs non-road segmentation with FCN-8s (Long et al.), trained from scratch on a CPU.

    python samples/road/road.py train --dataset ../shared/data/road_camvid/CamVid
    python samples/road/road.py evaluate --dataset ../shared/data/road_camvid/CamVid --out road.json
    python samples/road/road.py train --dataset /data/data_road --format kitti
    python samples/road/road.py train            # generated stand-in (RoadScenesDataset)
    python samples/road/road.py prior --dataset ../shared/data/road_camvid/CamVid  # baselines

Data:
  camvid: the SegNet CamVid layout (`train/`, `trainannot/`, `train.txt`, and `val/` ...
      when present: `camvid_splits`); class 3 (Road) is road, everything else
      background. Consecutive frames of a drive are near-duplicates, so the split is by
      drive (the file-name prefix, `kseg.data.group_split`): every frame of the drive
      0006R0 (`VAL_DRIVES`, 101 frames) validates, every frame of the other drives
      (0001TP and 0016E5 from CamVid train and val: 367 frames) trains.
      `--val-groups 0001TP` holds out another drive.
  kitti: the KITTI road layout (`training/image_2/*.png`, `training/gt_image_2/
      *_road_*.png`, road = magenta); 20% validation by `split_ids(n, 0.2, seed=0)`.
  none: 160 generated training and 40 validation scenes (seeds 0 and 1).

The defaults (RoadConfig, `DEFAULT_EPOCHS`) train a reduced-width FCN-8s (VGG16 at 1/4
width, fc6/fc7 of 256) on 256x256 molded images for 25 epochs of 20 steps (Adam 1e-3,
cosine decay, horizontal flips only: `scene_augmentation`'s scale / shift / color / blur
scored 0.04 road IoU lower in a run this short) in ~5 minutes on 2 CPU cores, and
validate on drive 0006R0; see README.md for measured scores against the trivial priors.
"""

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
VAL_DRIVES = ("0006R0",)  # CamVid drive held out for validation (never trained on)


def augmentation(seed=0):
    """Horizontal flips (image and mask together)."""
    import keras

    return keras.layers.RandomFlip("horizontal", seed=seed)


def load_road_datasets(dataset=None, fmt="camvid", val_fraction=0.2, seed=0,
                       val_groups=VAL_DRIVES):
    """(train, val) kseg Datasets for a CamVid / KITTI folder, or generated scenes."""
    from kseg.data.splits import group_split

    if dataset is None:
        from kseg.data.generated.synthetic import RoadScenesDataset

        return RoadScenesDataset(160, 128, 128, seed=seed), RoadScenesDataset(40, 128, 128,
                                                                               seed=seed + 1)
    if fmt == "kitti":
        from kseg.data.formats.kitti import load_kitti_road
        from kseg.data.splits import split_dataset

        return split_dataset(load_kitti_road(dataset), val_fraction, seed)
    from kseg.data.formats.camvid import camvid_splits, load_camvid

    return group_split(load_camvid(dataset, camvid_splits(dataset)), val_fraction, seed,
                       val_groups=val_groups)


def parse_args(argv=None):
    from kseg.semantic.samples import sample_parser

    parser = sample_parser("FCN-8s road segmentation (kseg sample).",
                           "CamVid or KITTI road folder (default: generated scenes)",
                           DEFAULT_EPOCHS)
    parser.add_argument("--format", choices=("camvid", "kitti"), default="camvid")
    return parser.parse_args(argv)


def main(argv=None):
    from kseg.semantic.samples import run_sample

    args = parse_args(argv)
    train, val = None, None
    if args.command != "predict":
        from kseg.data.splits import parse_groups

        train, val = load_road_datasets(args.dataset, args.format,
                                        val_groups=parse_groups(args.val_groups) or VAL_DRIVES)
    return run_sample(args, RoadConfig, train, val, augmentation(RoadConfig.SEED))


if __name__ == "__main__":
    main()
