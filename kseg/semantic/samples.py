"""The command line the semantic samples share (`samples/road/road.py`, `samples/smoke/smoke.py`).

    python samples/<name>/<name>.py train    [--dataset DIR] [--epochs N] [--steps N] ...
    python samples/<name>/<name>.py evaluate [--dataset DIR] [--weights last|PATH] [--out F]
    python samples/<name>/<name>.py predict  --images DIR --out DIR [--weights last|PATH]
    python samples/<name>/<name>.py prior    [--dataset DIR]      # the trivial baselines

A sample supplies its Config class, a `(train, val)` loader and its augmentation;
`sample_parser` builds the arguments (a sample may add its own, e.g. `--format`), and
`run_sample` carries out the command. It prints which groups (drives, source photos) went
to training and validation, and scores the model beside the trivial priors (all
background, all foreground, the mean training mask) on the same validation images.
"""

import argparse

__all__ = ["print_priors", "run_sample", "sample_config", "sample_parser"]


def sample_parser(description, dataset_help, default_epochs):
    """The sample's `argparse.ArgumentParser` (command, data, schedule, weights, output)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", choices=("train", "evaluate", "predict", "prior"))
    parser.add_argument("--dataset", default=None, help=dataset_help)
    parser.add_argument("--epochs", type=int, default=default_epochs)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch")
    parser.add_argument("--image-size", type=int, default=None, help="square side (x64)")
    parser.add_argument("--weights", default=None,
                        help="train: none|last|PATH (resume); evaluate: last (default)|PATH")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--images", default=None,
                        help="predict: folder of images (any size, .jpg/.png/...)")
    parser.add_argument("--out", default=None,
                        help="evaluate: JSON results file; predict: folder for the PNGs")
    parser.add_argument("--val-groups", default=None,
                        help="comma-separated validation groups (file-name prefix before "
                             "the first '_': a drive, a source photo); default: the sample's")
    parser.add_argument("--tta-flip", action="store_true",
                        help="evaluate with test-time horizontal flips (2x inference)")
    parser.add_argument("--encoder-weights", default=None,
                        help="train: 'imagenet' (Keras' cached file, never downloaded) or a "
                             "path: a full-width pretrained encoder (U-Net: VGG16)")
    return parser


def sample_config(config_class, args):
    """`config_class()` with the `--steps` / `--image-size` / `--encoder-weights` overrides
    of `args` (pretrained weights need the full-width encoder; a plain U-Net gets VGG16)."""
    from kseg.config import UNetConfig

    overrides = {}
    if getattr(args, "encoder_weights", None):
        overrides.update(ENCODER_WEIGHTS=args.encoder_weights, ENCODER_WIDTH=1.0)
        if issubclass(config_class, UNetConfig) and not config_class.BACKBONE:
            overrides["BACKBONE"] = "vgg16"
    if args.steps:
        overrides["STEPS_PER_EPOCH"] = args.steps
    if args.image_size:
        overrides.update(IMAGE_MIN_DIM=args.image_size, IMAGE_MAX_DIM=args.image_size)
    return config_class(**overrides)


def print_priors(train, val):
    """Print the trivial predictors' scores on `val` (see `kseg.semantic.predict.trivial_priors`:
    all background, all foreground, mean training mask) and their comparison table;
    returns {"mean_mask": results, "all_foreground": results}."""
    from kseg.semantic.predict import comparison_table, results_table, trivial_priors

    priors = trivial_priors(train, val)
    for key, results in priors.items():
        print(f"\n{key}:\n{results_table(results)}")
    print(f"\n{comparison_table(priors)}")
    return {key: priors[key] for key in ("mean_mask", "all_foreground")}


def run_sample(args, config_class, train, val, augmentation):
    """Carry out `args.command` on the (train, val) datasets.

    Returns: "prior" -> the priors dict; "train" -> (history, validation results);
    "evaluate" -> the validation results of the checkpoint (`--weights`, default the last
    of the newest run under `--logs`, rebuilt from the run's `config.json`); "predict" ->
    the image paths, with `<stem>_overlay.png` and `<stem>_mask.png` written to `--out`.
    `train` / `val` may be None for "predict".
    """
    from kseg.semantic import jobs

    if args.command == "predict":
        if not args.images or not args.out:
            raise SystemExit("predict needs --images DIR and --out DIR")
        checkpoint, config = _trained(args, config_class)
        return jobs.predict_folder(checkpoint, args.images, args.out, config=config)
    from kseg.data.splits import describe_split

    print(f"{len(train.image_ids)} training and {len(val.image_ids)} validation images")
    if getattr(train, "groups", None):
        print(describe_split(train, val))
    if args.command == "prior":
        return print_priors(train, val)
    if args.command == "train":
        config = sample_config(config_class, args)
        weights = None if args.weights in (None, "none") else args.weights
        return jobs.train_and_evaluate(config, train, val, args.epochs, args.logs, weights,
                                       augmentation=augmentation, flip=args.tta_flip)
    checkpoint, config = _trained(args, config_class)
    return jobs.evaluate_checkpoint(checkpoint, val, args.out, config=config, train=train,
                                    flip=args.tta_flip)


def _trained(args, config_class):
    """(checkpoint, config): `--weights` (default: the last checkpoint of the newest run in
    `--logs`) and the config.json of its run (the defaults when there is none)."""
    from kseg.models.runs import load_run_config, resolve_checkpoint

    checkpoint = resolve_checkpoint(args.weights or "last", args.logs, config_class.NAME)
    config = load_run_config(checkpoint, config_class=config_class) or sample_config(
        config_class, args)
    return checkpoint, config
