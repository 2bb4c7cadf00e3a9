"""`kseg {train,evaluate,predict} maskrcnn`: Mask R-CNN from the command line.

    kseg train maskrcnn --dataset shapes --epochs 5                   # generated shapes
    kseg train maskrcnn --dataset ../shared/data/car_damage/dataset   # VIA: train/, val/
    kseg train maskrcnn --format coco --annotations train.json --images imgs/ --weights coco
    kseg evaluate maskrcnn --dataset shapes --weights last --out eval.json
    kseg predict maskrcnn --weights coco --images photos/ --out predictions/ --splash

Training writes `config.json` (with CLASS_NAMES) beside its checkpoints in
`--logs/<name><timestamp>/`; evaluate and predict rebuild the model from it
(`kseg.models.runs`). Options become datasets and configs in `kseg.cli.maskrcnn_data`;
the work is the library's (`MaskRCNN.train`, `kseg.evaluate.evaluate_instances`).
"""

from pathlib import Path

from kseg.cli import CLIError
from kseg.cli.maskrcnn_data import (
    _option_overrides,
    default_name,
    find_checkpoint,
    list_images,
    load_data,
    parse_overrides,
    run_config,
    train_config,
)
from kseg.cli.scaling import add_scaling_arguments
from kseg.evaluate.instances import evaluate_instances, format_instance_report
from kseg.models.runs import initial_weights, load_checked_weights
from kseg.utils import runs

LAYERS = ("heads", "3+", "4+", "5+", "all")


# === Arguments ===
def add_arguments(command, parser):
    """Add the options of `command` ("train", "evaluate" or "predict") to `parser`."""
    parser.add_argument("--logs", default="logs", help="folder of the run folders (default logs)")
    parser.add_argument("--name", default=None,
                        help="run name (default: from the dataset; predict: newest run)")
    parser.add_argument("--config", default=None, metavar="JSON",
                        help='config overrides, e.g. \'{"IMAGES_PER_GPU": 1}\', or a .json file')
    parser.add_argument("--image-size", type=int, default=None,
                        help="square input side, a multiple of 64 (default: the config's)")
    if command in ("train", "evaluate"):
        data_arguments(parser, command)
    if command == "train":
        train_arguments(parser)
        return parser
    parser.add_argument("--weights", default="last", help="checkpoint path, 'last' or 'coco'")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="DETECTION_MIN_CONFIDENCE (default: the config's)")
    if command == "evaluate":
        parser.add_argument("--limit", type=int, default=None, help="evaluate the first N images")
        parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold of the mAP")
        parser.add_argument("--out", default=None, help="write the metrics to this JSON file")
    else:
        parser.add_argument("--images", nargs="+", required=True,
                            help="image files or folders of images")
        parser.add_argument("--out", required=True, help="output folder")
        parser.add_argument("--splash", action="store_true",
                            help="also write color-splash PNGs (gray image, color instances)")
    return parser


def data_arguments(parser, command):
    parser.add_argument("--dataset", default="shapes",
                        help="'shapes' (generated) or a folder of VIA annotations "
                             "(<folder>/train/via_region_data.json, <folder>/val/...)")
    parser.add_argument("--format", choices=("via", "coco"), default=None,
                        help="annotation format (default: coco when --annotations is given)")
    parser.add_argument("--annotations", default=None, help="COCO: the instances JSON file")
    parser.add_argument("--images", default=None, help="COCO: the image folder")
    parser.add_argument("--subset", default=None,
                        help=f"VIA subset folder (default {'train' if command == 'train' else 'val'})")
    parser.add_argument("--annotation-file", default="via_region_data.json",
                        help="VIA JSON name in each subset folder; '{subset}' is replaced, "
                             "e.g. {subset}_multiclass.json")
    parser.add_argument("--class-attribute", default=None,
                        help="VIA region attribute naming the class (default: one class)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="validation share when the data has no val subset (COCO, one folder)")
    parser.add_argument("--shapes-count", type=int, default=500, help="shapes: training images")
    parser.add_argument("--seed", type=int, default=0)


def train_arguments(parser):
    parser.add_argument("--weights", default="none",
                        help="coco, imagenet, last, none (default) or a checkpoint path")
    parser.add_argument("--layers", choices=LAYERS, default=None,
                        help="layers to train (default: heads with coco/imagenet, else all)")
    parser.add_argument("--epochs", type=int, default=10, help="epoch to train up to")
    parser.add_argument("--steps", type=int, default=None, help="STEPS_PER_EPOCH")
    parser.add_argument("--val-steps", type=int, default=None, help="VALIDATION_STEPS")
    parser.add_argument("--lr", type=float, default=None, help="LEARNING_RATE")
    parser.add_argument("--augment", action="store_true", help="flips, zoom, brightness/contrast")
    add_scaling_arguments(parser)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                        help="Keras fit verbosity (2 also lists the trainable layers)")


# === Models and weights (the library's, under the names the CLI always had) ===
def load_weights(model, path, exclude=(), verbose=True):
    """Load `path` by layer name (`kseg.models.runs.load_checked_weights`)."""
    return load_checked_weights(model, path, exclude, verbose)


def inference_model(config, checkpoint, verbose=True):
    """An inference `MaskRCNN` with `checkpoint` loaded."""
    from kseg.models.mask_rcnn.model import MaskRCNN

    model = MaskRCNN("inference", config, model_dir=str(Path(checkpoint).parent))
    load_checked_weights(model, checkpoint, verbose=verbose)
    return model


def write_run_config(model):
    """Write the model's config as `config.json` in its log dir; returns the path."""
    if model.log_dir is None:
        model.set_log_dir()
    from kseg.saving.checkpoint import check_writable

    check_writable(model.log_dir)
    return runs.write_run_config(model.config, model.log_dir)


# === Commands ===
def train(args):
    """`kseg train maskrcnn`: returns the path of the last checkpoint."""
    from kseg.data import default_augmentation
    from kseg.models.mask_rcnn.model import MaskRCNN

    name = args.name or default_name(args)
    base = None
    if args.weights not in ("none", "coco", "imagenet"):
        resume = find_checkpoint(args.logs, name) if args.weights == "last" else args.weights
        base = run_config(resume)
    names = (base or {}).get("CLASS_NAMES")
    size = args.image_size or (base or {}).get("IMAGE_MAX_DIM")
    train_set, val_set = load_data(args, "train", names[1:] if names else None, size)
    config = train_config(args, train_set, name, base)
    path, exclude = initial_weights(args.weights, config, args.logs)  # fail fast when offline
    model = MaskRCNN("training", config, args.logs)
    if path is not None:
        load_weights(model, path, exclude)
    layers = args.layers or ("heads" if args.weights in ("coco", "imagenet") else "all")
    augmentation = default_augmentation("instance", seed=args.seed) if args.augment else None
    print(f"Training {layers} layers of {config.NAME} ({config.NUM_CLASSES} classes, "
          f"{len(train_set.image_ids)} images) up to epoch {args.epochs} in {model.log_dir}")
    model.train(train_set, val_set, config.LEARNING_RATE, args.epochs, layers,
                augmentation=augmentation, verbose=args.verbose)
    last = model.checkpoint_path.format(epoch=max(model.epoch, args.epochs))
    print(f"Last checkpoint: {last}")
    return last


evaluate_model = evaluate_instances  # the names the samples used before kseg.evaluate had them
format_report = format_instance_report


def evaluate(args):
    """`kseg evaluate maskrcnn`: returns the metrics dict."""
    from kseg.evaluate import write_json

    model, config, checkpoint = _inference_model(args, _inference_checkpoint(
        args, default_name(args)))
    names = getattr(config, "CLASS_NAMES", None)
    dataset, _ = load_data(args, "val", names[1:] if names else None, config.IMAGE_MAX_DIM)
    if dataset is None:
        raise CLIError(f"{args.dataset}: no validation data found; pass --subset NAME")
    image_ids = list(dataset.image_ids)[:args.limit] if args.limit else list(dataset.image_ids)
    result = evaluate_model(model, dataset, image_ids, iou=args.iou, verbose=1)
    result["checkpoint"] = str(checkpoint)
    print(format_report(result))
    if args.out:
        write_json(result, args.out)
        print(f"Wrote {args.out}")
    return result


def predict(args):
    """`kseg predict maskrcnn`: overlays (and splashes) + detections.json in --out."""
    from kseg.data import read_image
    from kseg.evaluate import detections_to_coco_results, write_json

    checkpoint = _inference_checkpoint(args, args.name)
    files = list_images(args.images)
    model, config, checkpoint = _inference_model(args, checkpoint)
    names = list(getattr(config, "CLASS_NAMES", None) or
                 ["BG", *(f"class_{i}" for i in range(1, config.NUM_CLASSES))])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images, detections = [], []
    for image_id, (path, stem) in enumerate(zip(files, _unique_stems(files))):
        image = read_image(path)
        det = model.detect([image])[0]
        _write_outputs(out, stem, image, det, names, args.splash)
        images.append({"id": image_id, "file_name": str(path), "height": image.shape[0],
                       "width": image.shape[1], "overlay": f"{stem}.png"})
        detections += detections_to_coco_results(image_id, det)
        print(f"{path}: {len(det['class_ids'])} instances")
    categories = [{"id": i, "name": n} for i, n in enumerate(names) if i > 0]
    write_json({"checkpoint": str(checkpoint), "images": images, "categories": categories,
                "detections": detections}, out / "detections.json")
    print(f"Wrote {len(files)} overlays and detections.json to {out}")
    return out


def _inference_model(args, checkpoint):
    """(inference MaskRCNN, config, checkpoint) of --weights, rebuilt from its run folder by
    `kseg.models.runs.load_inference_model` with the plain options and --config applied."""
    from kseg.models.runs import load_inference_model

    overrides = {**_option_overrides(args), **parse_overrides(args.config)}
    return load_inference_model(checkpoint, overrides,
                                weights=args.weights, kind="maskrcnn", verbose=True)


def _inference_checkpoint(args, name):
    """The weights path of evaluate/predict: 'coco', 'last', a run folder or a path."""
    if args.weights == "coco":
        from kseg import weights

        return weights.get("mask_rcnn_coco")
    from kseg.models.runs import resolve_checkpoint

    return resolve_checkpoint(args.weights, args.logs, name, kind="maskrcnn")


def _unique_stems(files):
    seen, stems = {}, []
    for path in files:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def _write_outputs(out, stem, image, det, names, splash):
    from kseg.utils.io import atomic_path
    from kseg.visualize import save_instances_png
    from kseg.visualize import splash as color_splash

    save_instances_png(str(out / f"{stem}.png"), image, det, names)
    if splash:
        from PIL import Image

        with atomic_path(out / f"{stem}_splash.png") as tmp:
            Image.fromarray(color_splash(image, det["masks"])).save(tmp)


def run(command, args):
    """Run `kseg COMMAND maskrcnn`; returns the exit status."""
    {"train": train, "evaluate": evaluate, "predict": predict}[command](args)
    return 0
