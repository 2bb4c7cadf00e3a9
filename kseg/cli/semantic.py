"""`kseg {train,evaluate,predict} {fcn,unet}`: the semantic half of the command line.

    kseg train fcn --dataset ../shared/data/road_camvid/CamVid --epochs 10
    kseg evaluate fcn --dataset ../shared/data/road_camvid/CamVid --weights last --out r.json
    kseg predict unet --weights logs/unet.../kseg_unet_0010.weights.h5 --images pics/ --out out/

`kseg.cli` calls `add_arguments(command, subparser)` and `run(command, args)`
(`args.model` is "fcn" or "unet"); the work is `kseg.semantic.jobs`'. Training writes `config.json` beside its
checkpoints; evaluate / predict rebuild the model from it.

Datasets (`--format`, detected when omitted): "camvid" (SegNet layout, its train and
val splits together; road vs rest), "kitti" (KITTI road `training/`, 20% at random),
"folder" (`<path>/images` + `<path>/labels`, `masks` or `annotations`, or `--masks DIR`;
paired by file stem), or `--dataset synthetic` (generated road scenes for fcn, smoke
scenes for unet). CamVid and folder data are split by group (`kseg.data.group_split`):
the file-name prefix before the first "_" (a CamVid drive, a photo's tiles), never a
group on both sides; `--val-groups` names the validation groups, else `--val-fraction`
of the groups are drawn with `--seed`. The split is printed. `evaluate` (and the end of
`train`) prints the trivial priors on the same validation images beside the model.
"""

from pathlib import Path

from kseg.cli.scaling import add_scaling_arguments, scaling_overrides
from kseg.config import FCNConfig, UNetConfig
from kseg.data.splits import grouped_split, parse_groups, sequential_split  # noqa: F401
from kseg.models import runs
from kseg.semantic import jobs

MODELS = {"fcn": FCNConfig, "unet": UNetConfig}
FORMATS = ("folder", "camvid", "kitti")


# === Arguments ===
def add_arguments(command, parser):
    """Add the options of `command` ("train", "evaluate", "predict") to `parser`."""
    parser.add_argument("--logs", default="logs", help="folder of the run folders (default logs)")
    parser.add_argument("--name", default=None, help="run name (default: the model name)")
    if command in ("train", "evaluate"):
        _data_arguments(parser)
    if command == "train":
        _train_arguments(parser)
    else:
        parser.add_argument("--weights", default="last",
                            help="checkpoint path or 'last' (default)")
        parser.add_argument("--out", default=None,
                            help="evaluate: JSON file; predict: output folder (required)")
    if command == "predict":
        parser.add_argument("--images", required=True, help="folder of images (any size)")
    return parser


def _data_arguments(parser):
    parser.add_argument("--dataset", default="synthetic", help="dataset folder or 'synthetic'")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="dataset layout (default: detected)")
    parser.add_argument("--classes", default=None,
                        help="folder format: comma-separated class names without BG")
    parser.add_argument("--mask-mode", choices=("binary", "index"), default="binary",
                        help="folder format: masks are 0/255 (binary) or class indices")
    parser.add_argument("--masks", default=None,
                        help="folder format: mask folder (default: <dataset>/labels, masks "
                             "or annotations)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction of the groups (drives / photos) for validation")
    parser.add_argument("--val-groups", default=None,
                        help="comma-separated validation groups (e.g. a CamVid drive 0006R0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tta-flip", action="store_true",
                        help="evaluate with test-time horizontal flips (2x inference)")


def _train_arguments(parser):
    parser.add_argument("--epochs", type=int, default=10, help="epoch to train up to")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per epoch (default: one pass over the training set)")
    parser.add_argument("--weights", default="none", help="none, imagenet, last or a path")
    parser.add_argument("--image-size", type=int, default=256, help="square side, multiple of 64")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--loss", default="ce", help="ce, dice, focal, lovasz_hinge or sums like ce+dice")
    parser.add_argument("--backbone", default=None, help="fcn: vgg16|resnet18|resnet34|resnet50|resnet101; unet: "
                        "none|vgg16|resnet18|resnet34|resnet50|resnet101")
    parser.add_argument("--variant", default="fcn8s", choices=("fcn32s", "fcn16s", "fcn8s"))
    parser.add_argument("--width", type=float, default=1.0, help="encoder width multiplier")
    parser.add_argument("--fc-filters", type=int, default=None, help="fcn: fc6/fc7 width")
    parser.add_argument("--base-filters", type=int, default=64, help="unet: first level width")
    parser.add_argument("--depth", type=int, default=4, help="unet: number of poolings")
    parser.add_argument("--foreground-prior", type=float, default=None,
                        help="unet, 2 classes: initial foreground probability (e.g. 0.05)")
    parser.add_argument("--no-augment", action="store_true", help="no flips / zoom / color")
    add_scaling_arguments(parser)


# === Data ===
def detect_format(path):
    """"camvid", "kitti" or "folder" from the files under `path`."""
    path = Path(path)
    if (path / "training" / "image_2").is_dir():
        return "kitti"
    if any((path / f"{split}annot").is_dir() for split in ("val", "train", "test")):
        return "camvid"
    return "folder"


def load_semantic_data(args, model="fcn"):
    """(train, val) kseg Datasets from the data options (see the module docstring)."""
    if args.dataset == "synthetic":
        from kseg.data.generated.synthetic import RoadScenesDataset, SmokeScenesDataset

        kind = RoadScenesDataset if model == "fcn" else SmokeScenesDataset
        return kind(160, 128, 128, seed=args.seed), kind(40, 128, 128, seed=args.seed + 1)
    from kseg.data.splits import describe_split, group_split

    fmt = args.format or detect_format(args.dataset)
    if fmt == "kitti":
        from kseg.data.formats.kitti import load_kitti_road
        from kseg.data.splits import split_dataset

        return split_dataset(load_kitti_road(args.dataset), args.val_fraction, args.seed)
    if fmt == "camvid":
        from kseg.data.formats.camvid import camvid_splits, load_camvid

        dataset = load_camvid(args.dataset, camvid_splits(args.dataset))
    else:
        dataset = _load_folder(args)
    train, val = group_split(dataset, args.val_fraction, args.seed,
                             val_groups=parse_groups(getattr(args, "val_groups", None)))
    print(describe_split(train, val))
    return train, val


MASK_FOLDERS = ("labels", "masks", "annotations")


def find_mask_folder(root, masks=None):
    """The mask folder: `masks` when given, else the first of `MASK_FOLDERS` under `root`.

    Raises `DataError` naming the folders tried when none exists.
    """
    from kseg.data.dataset import DataError

    root = Path(root)
    tried = [Path(masks)] if masks else [root / name for name in MASK_FOLDERS]
    found = next((path for path in tried if path.is_dir()), None)
    if found is None:
        raise DataError(f"no mask folder found; tried {', '.join(str(p) for p in tried)}. "
                        f"Expected <dataset>/images with masks in one of "
                        f"{', '.join(MASK_FOLDERS)}, or pass --masks DIR.")
    return found


def _load_folder(args):
    from kseg.data.formats.folder import load_mask_folder

    root = Path(args.dataset)
    masks = find_mask_folder(root, getattr(args, "masks", None))
    names = args.classes.split(",") if args.classes else None
    return load_mask_folder(root / "images", masks, class_names=names, mode=args.mask_mode)


# === Configs and weights ===
def make_config(args, class_names, **overrides):
    """An FCNConfig / UNetConfig from the train options and the dataset's class names."""
    fields = dict(NAME=args.name or args.model, NUM_CLASSES=len(class_names),
                  CLASS_NAMES=list(class_names), IMAGE_MIN_DIM=args.image_size,
                  IMAGE_MAX_DIM=args.image_size, IMAGES_PER_GPU=args.batch_size,
                  LEARNING_RATE=args.lr, LOSS=args.loss, ENCODER_WIDTH=args.width,
                  SEED=args.seed)
    if args.model == "fcn":
        fields.update(FCN_VARIANT=args.variant, BACKBONE=args.backbone or "vgg16",
                      FCN_FC_FILTERS=args.fc_filters)
    else:
        backbone = None if args.backbone in (None, "none") else args.backbone
        fields.update(BACKBONE=backbone, UNET_BASE_FILTERS=args.base_filters,
                      UNET_DEPTH=args.depth, UNET_FOREGROUND_PRIOR=args.foreground_prior)
    if args.weights == "imagenet":
        fields["ENCODER_WEIGHTS"] = "imagenet"
    fields.update(scaling_overrides(args))
    fields.update(overrides)
    return MODELS[args.model](**fields)


def resolve_checkpoint(weights, logs, name):
    """A checkpoint path from "last", a run folder or a path (FileNotFoundError if missing)."""
    return Path(runs.resolve_checkpoint(weights, logs, name))


def load_run_config(config_class, checkpoint):
    """The `config.json` saved beside `checkpoint` as `config_class` (None if absent), for
    evaluating or predicting on one device (the run's DISTRIBUTION is dropped)."""
    config = runs.load_run_config(checkpoint, config_class=config_class)
    if config is None:
        return None
    return type(config).from_dict({**config.to_dict(), "DISTRIBUTION": None, "GPU_COUNT": 1})


build_model = runs.build_semantic_model  # the CLI's old names of the library's operations
train_command = jobs.train_and_evaluate


def evaluate_command(config, val, checkpoint, out=None, train=None, flip=False):
    """`kseg.semantic.jobs.evaluate_checkpoint` with the given config (`train`: print the
    trivial priors beside the model; `flip`: test-time flips)."""
    return jobs.evaluate_checkpoint(checkpoint, val, out, config=config, train=train, flip=flip)


def predict_command(config, checkpoint, image_dir, out_dir):
    """`kseg.semantic.jobs.predict_folder` with the given config."""
    return jobs.predict_folder(checkpoint, image_dir, out_dir, config=config)


def run(command, args):
    """Run `command` for `args.model` with parsed `args`; returns 0 (the exit status)."""
    if command == "train":
        _run_train(args)
        return 0
    checkpoint = resolve_checkpoint(args.weights, args.logs, args.name or args.model)
    if command == "evaluate":
        train, val = load_semantic_data(args, args.model)
        jobs.evaluate_checkpoint(checkpoint, val, args.out, kind=args.model, train=train,
                                 flip=args.tta_flip)
    elif command == "predict":
        if not args.out:
            from kseg.cli import CLIError

            raise CLIError("predict needs --out <folder> for the PNG files")
        jobs.predict_folder(checkpoint, args.images, args.out, kind=args.model)
    else:
        raise ValueError(f"unknown command {command!r}; expected train, evaluate or predict")
    return 0


def _run_train(args):
    """`kseg train fcn|unet`: data, config (from the checkpoint's run when resuming), fit."""
    train, val = load_semantic_data(args, args.model)
    config = make_config(args, train.class_names)
    resume = args.weights not in ("none", "imagenet", None)
    if resume:
        checkpoint = resolve_checkpoint(args.weights, args.logs, args.name or args.model)
        saved = load_run_config(MODELS[args.model], checkpoint)
        if saved is not None:  # the run's settings on this invocation's devices
            config = type(saved).from_dict({**saved.to_dict(), **scaling_overrides(args)})
    config.STEPS_PER_EPOCH = args.steps or max(1, len(train.image_ids) // config.BATCH_SIZE)
    config.VALIDATION_STEPS = max(1, len(val.image_ids) // config.BATCH_SIZE)
    return train_command(config, train, val, args.epochs, args.logs,
                         args.weights if resume else None,
                         augmentation=None if args.no_augment else "default",
                         flip=args.tta_flip)
