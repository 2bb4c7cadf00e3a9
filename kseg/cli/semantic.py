"""`kseg {train,evaluate,predict} {fcn,unet}`: the semantic half of the command line.

    kseg train fcn --dataset ../shared/data/road_camvid/CamVid --epochs 10
    kseg evaluate fcn --dataset ../shared/data/road_camvid/CamVid --weights last --out r.json
    kseg predict unet --weights logs/unet.../kseg_unet_0010.weights.h5 --images pics/ --out out/

`kseg.cli` calls `add_arguments(command, subparser)` and `run(command, args)`
(`args.model` is "fcn" or "unet"). Training writes `config.json` beside its
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

import time
from pathlib import Path

import numpy as np

from kseg.config import FCNConfig, UNetConfig
from kseg.saving.files import load_weights_atomic

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
    parser.add_argument("--loss", default="ce", help="ce, dice, focal or sums like ce+dice")
    parser.add_argument("--backbone", default=None, help="fcn: vgg16|resnet50; unet: "
                        "none|vgg16|resnet34|resnet50")
    parser.add_argument("--variant", default="fcn8s", choices=("fcn32s", "fcn16s", "fcn8s"))
    parser.add_argument("--width", type=float, default=1.0, help="encoder width multiplier")
    parser.add_argument("--fc-filters", type=int, default=None, help="fcn: fc6/fc7 width")
    parser.add_argument("--base-filters", type=int, default=64, help="unet: first level width")
    parser.add_argument("--depth", type=int, default=4, help="unet: number of poolings")
    parser.add_argument("--foreground-prior", type=float, default=None,
                        help="unet, 2 classes: initial foreground probability (e.g. 0.05)")
    parser.add_argument("--no-augment", action="store_true", help="no flips / zoom / color")


# === Data ===
def detect_format(path):
    """"camvid", "kitti" or "folder" from the files under `path`."""
    path = Path(path)
    if (path / "training" / "image_2").is_dir():
        return "kitti"
    if any((path / f"{split}annot").is_dir() for split in ("val", "train", "test")):
        return "camvid"
    return "folder"


def sequential_split(dataset, val_fraction=0.2):
    """(train, val) with the LAST `val_fraction` of the images (sorted by path) in val.

    Kept for code that used it; frames of one video are near-duplicates even a block
    apart, so prefer `kseg.data.group_split` (by drive) for honest validation.
    """
    from kseg.data.splits import subset_dataset

    order = sorted(dataset.image_ids, key=dataset.image_reference)
    count = max(1, int(round(len(order) * val_fraction)))
    return subset_dataset(dataset, sorted(order[:-count])), subset_dataset(dataset,
                                                                           sorted(order[-count:]))


def grouped_split(dataset, val_fraction=0.2, seed=0):
    """(train, val) by groups of images whose file stems share the prefix before the first
    "_" (tiles of one photo stay together): `kseg.data.group_split`."""
    from kseg.data.splits import group_split

    return group_split(dataset, val_fraction, seed)


def parse_groups(text):
    """"a,b" -> ["a", "b"]; None / "" -> None."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None


def load_semantic_data(args, model="fcn"):
    """(train, val) kseg Datasets from the data options (see the module docstring)."""
    if args.dataset == "synthetic":
        from kseg.data.synthetic import RoadScenesDataset, SmokeScenesDataset

        kind = RoadScenesDataset if model == "fcn" else SmokeScenesDataset
        return kind(160, 128, 128, seed=args.seed), kind(40, 128, 128, seed=args.seed + 1)
    from kseg.data.splits import describe_split, group_split

    fmt = args.format or detect_format(args.dataset)
    if fmt == "kitti":
        from kseg.data.kitti import load_kitti_road
        from kseg.data.splits import split_dataset

        return split_dataset(load_kitti_road(args.dataset), args.val_fraction, args.seed)
    if fmt == "camvid":
        from kseg.data.camvid import camvid_splits, load_camvid

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
    from kseg.data.folder import load_mask_folder

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
    fields.update(overrides)
    return MODELS[args.model](**fields)


def resolve_checkpoint(weights, logs, name):
    """A checkpoint path from "last" or a path (FileNotFoundError if missing)."""
    from kseg.train import find_last

    path = find_last(logs, name) if weights == "last" else Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def load_run_config(config_class, checkpoint):
    """The `config.json` saved beside `checkpoint` as `config_class` (None if absent)."""
    path = Path(checkpoint).parent / "config.json"
    return config_class.from_json(path) if path.exists() else None


def build_model(config):
    """FCN for an FCNConfig, U-Net for a UNetConfig."""
    if isinstance(config, FCNConfig):
        from kseg.models.fcn import build_fcn

        return build_fcn(config)
    from kseg.models.unet import build_unet

    return build_unet(config)


# === Commands ===
def train_command(config, train, val, epochs, logs="logs", weights=None,
                  augmentation="default", verbose=2, flip=False):
    """Train (resuming from `weights` "last" / a path), then evaluate on `val` at original
    size and print the table beside the trivial priors (`report`). `augmentation`:
    "default" (`default_augmentation("semantic")`), None, or anything
    `apply_augmentation` takes; `flip`: test-time flips. Returns (history, results)."""
    from kseg.data.augment import default_augmentation
    from kseg.train import InMemoryDataset, evaluate_semantic, train_semantic

    model = build_model(config)
    if isinstance(augmentation, str) and augmentation == "default":
        augmentation = default_augmentation("semantic", seed=config.SEED)
    start = time.time()
    history = train_semantic(model, config, InMemoryDataset(train, config), val, epochs=epochs,
                             model_dir=logs, augmentation=augmentation, weights=weights,
                             verbose=verbose)
    print(f"trained in {time.time() - start:.0f} s; checkpoints in {history.log_dir}")
    results = evaluate_semantic(model, val, config, flip=flip)
    report(results, config, train, val, flip)
    if val is not None and len(val.image_ids):
        path = write_overview(model, config, val, Path(history.log_dir) / "val_overview.png")
        print(f"wrote {path} (image / ground truth / prediction)")
    return history, results


def write_overview(model, config, dataset, path, count=4, candidates=40):
    """`save_semantic_comparison_png` of the `count` images with the most foreground among
    the first `candidates` of `dataset` (so rare classes show); returns `path`."""
    from kseg.semantic_eval import predict_semantic
    from kseg.visualize import save_semantic_comparison_png

    ids = list(dataset.image_ids)[:candidates]
    masks = {i: dataset.load_semantic_mask(i) for i in ids}
    chosen = sorted(ids, key=lambda i: -float(np.mean(masks[i] > 0)))[:count]
    images = [dataset.load_image(i) for i in chosen]
    predictions, _ = predict_semantic(model, config, images)
    rows = [(image, masks[i], pred) for image, i, pred in zip(images, chosen, predictions)]
    names = config.CLASS_NAMES or [f"class_{k}" for k in range(config.NUM_CLASSES)]
    return save_semantic_comparison_png(path, rows, names)


def report(results, config, train, val, flip=False):
    """Print the model's table and, when `train` is given, the model beside the trivial
    priors on `val` (`trivial_priors`); adds them to `results["priors"]`."""
    from kseg.semantic_eval import comparison_table, results_table, trivial_priors

    print(results_table(results))
    if train is None or val is None or not len(val.image_ids):
        return results
    priors = trivial_priors(train, val, config.IGNORE_INDEX)
    names = {"all_background": "all background", "all_foreground": "all foreground",
             "mean_mask": "mean training mask"}
    rows = {"model" + (" (test-time flip)" if flip else ""): results,
            **{names[key]: value for key, value in priors.items()}}
    print(f"\non the {len(val.image_ids)} validation images:\n{comparison_table(rows)}")
    results["priors"] = {key: {k: value[k] for k in ("iou", "mean_iou", "pixel_accuracy")}
                         for key, value in priors.items()}
    return results


def evaluate_command(config, val, checkpoint, out=None, train=None, flip=False):
    """Evaluate `checkpoint` on `val` at original size (`flip`: test-time flips); print the
    table beside the trivial priors when `train` is given; write JSON `out`."""
    from kseg.evaluate.semantic import write_json
    from kseg.train import evaluate_semantic

    model = build_model(config)
    load_weights_atomic(model, checkpoint)
    results = evaluate_semantic(model, val, config, flip=flip)
    results["weights"] = str(checkpoint)
    report(results, config, train, val, flip)
    if out:
        write_json(results, out)
        print(f"wrote {out}")
    return results


def predict_command(config, checkpoint, image_dir, out_dir):
    """Overlay PNGs (`<stem>_overlay.png`) and mask PNGs (`<stem>_mask.png`: 0/255 for a
    binary model, else class indices) for every image in `image_dir`."""
    from PIL import Image

    from kseg.data.folder import IMAGE_EXTENSIONS
    from kseg.data.image_io import read_image
    from kseg.semantic_eval import predict_semantic
    from kseg.utils.io import atomic_path
    from kseg.visualize import save_overlay_png

    model = build_model(config)
    load_weights_atomic(model, checkpoint)
    names = config.CLASS_NAMES or [f"class_{i}" for i in range(config.NUM_CLASSES)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in Path(image_dir).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    for path in paths:
        image = read_image(path)
        class_map = predict_semantic(model, config, [image], batch_size=1)[0][0]
        save_overlay_png(out_dir / f"{path.stem}_overlay.png", image, class_map, names)
        mask = class_map * 255 if config.NUM_CLASSES == 2 else class_map
        with atomic_path(out_dir / f"{path.stem}_mask.png") as tmp:
            Image.fromarray(mask.astype(np.uint8)).save(tmp)
    print(f"wrote {2 * len(paths)} PNG files to {out_dir}")
    return paths


def run(command, args):
    """Run `command` for `args.model` with parsed `args`; returns 0 (the exit status)."""
    if command == "train":
        _run_train(args)
        return 0
    checkpoint = resolve_checkpoint(args.weights, args.logs, args.name or args.model)
    config = load_run_config(MODELS[args.model], checkpoint)
    if config is None:
        raise FileNotFoundError(f"no config.json beside {checkpoint}; evaluate / predict need "
                                f"the config saved by `kseg train`.")
    if command == "evaluate":
        train, val = load_semantic_data(args, args.model)
        evaluate_command(config, val, checkpoint, args.out, train, args.tta_flip)
    elif command == "predict":
        if not args.out:
            from kseg.cli import CLIError

            raise CLIError("predict needs --out <folder> for the PNG files")
        predict_command(config, checkpoint, args.images, args.out)
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
        config = load_run_config(MODELS[args.model], checkpoint) or config
    config.STEPS_PER_EPOCH = args.steps or max(1, len(train.image_ids) // config.BATCH_SIZE)
    config.VALIDATION_STEPS = max(1, len(val.image_ids) // config.BATCH_SIZE)
    return train_command(config, train, val, args.epochs, args.logs,
                         args.weights if resume else None,
                         augmentation=None if args.no_augment else "default",
                         flip=args.tta_flip)
