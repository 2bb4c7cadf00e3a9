"""The semantic models' whole jobs: train then evaluate, evaluate a checkpoint, predict a
folder of images. The `kseg` command line and the samples call these.

    history, results = train_and_evaluate(config, train, val, epochs=10, logs="logs")
    results = evaluate_checkpoint("logs/fcn20260101T1200", val)         # a run folder
    paths = predict_folder("logs/.../kseg_fcn_0010.weights.h5", "photos/", "out/")

Checkpoints are rebuilt with their run's `config.json` by
`kseg.models.runs.load_inference_model`.
"""

import time
from pathlib import Path

import numpy as np

__all__ = ["evaluate_checkpoint", "predict_folder", "report", "train_and_evaluate",
           "write_overview"]


def train_and_evaluate(config, train, val, epochs, logs="logs", weights=None,
                       augmentation="default", verbose=2, flip=False):
    """Train (resuming from `weights` "last" / a path), then evaluate on `val` at original
    size and print the table beside the trivial priors (`report`). `augmentation`:
    "default" (`default_augmentation("semantic")`), None, or anything `apply_augmentation`
    takes; `flip`: test-time flips. Returns (history, results)."""
    from kseg.data.pipelines.augment import default_augmentation
    from kseg.models.runs import build_semantic_model
    from kseg.semantic.predict import evaluate_semantic
    from kseg.semantic.train import InMemoryDataset, train_semantic

    model = build_semantic_model(config)
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


def report(results, config, train, val, flip=False):
    """Print the model's table and, when `train` is given, the model beside the trivial
    priors on `val` (`trivial_priors`: all background, all foreground, the mean training
    mask); adds them to `results["priors"]`. Returns `results`."""
    from kseg.semantic.predict import comparison_table, results_table, trivial_priors

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


def write_overview(model, config, dataset, path, count=4, candidates=40):
    """`save_semantic_comparison_png` of the `count` images with the most foreground among
    the first `candidates` of `dataset` (so rare classes show); returns `path`."""
    from kseg.semantic.predict import predict_semantic
    from kseg.visualize import save_semantic_comparison_png

    ids = list(dataset.image_ids)[:candidates]
    masks = {i: dataset.load_semantic_mask(i) for i in ids}
    chosen = sorted(ids, key=lambda i: -float(np.mean(masks[i] > 0)))[:count]
    images = [dataset.load_image(i) for i in chosen]
    predictions, _ = predict_semantic(model, config, images)
    rows = [(image, masks[i], pred) for image, i, pred in zip(images, chosen, predictions)]
    names = config.CLASS_NAMES or [f"class_{k}" for k in range(config.NUM_CLASSES)]
    return save_semantic_comparison_png(path, rows, names)


def _rebuilt(checkpoint, config, kind=None):
    """(model, config, checkpoint): rebuilt from the run, or built from `config` when given."""
    from kseg.models.runs import build_semantic_model, load_inference_model

    if config is None:
        return load_inference_model(checkpoint, kind=kind)
    from kseg.saving.files import load_weights_atomic

    model = build_semantic_model(config)
    load_weights_atomic(model, checkpoint)
    return model, config, checkpoint


def evaluate_checkpoint(checkpoint, val, out=None, config=None, kind=None, train=None,
                        flip=False):
    """Evaluate `checkpoint` (a file or run folder; its run's config unless `config` is
    given; `kind` "fcn" / "unet" refuses other runs) on `val` at original size (`flip`:
    test-time flips); print the table, beside the trivial priors when `train` is given;
    write JSON `out`; returns the results."""
    from kseg.evaluate.semantic import write_json
    from kseg.semantic.predict import evaluate_semantic

    model, config, checkpoint = _rebuilt(checkpoint, config, kind)
    results = evaluate_semantic(model, val, config, flip=flip)
    results["weights"] = str(checkpoint)
    report(results, config, train, val, flip)
    if out:
        write_json(results, out)
        print(f"wrote {out}")
    return results


def predict_folder(checkpoint, image_dir, out_dir, config=None, kind=None):
    """Overlay PNGs (`<stem>_overlay.png`) and mask PNGs (`<stem>_mask.png`: 0/255 for a
    binary model, else class indices) for every image in `image_dir`; returns the paths."""
    from PIL import Image

    from kseg.data.image_io import IMAGE_EXTENSIONS, read_image
    from kseg.semantic.predict import predict_semantic
    from kseg.utils.io import atomic_path
    from kseg.visualize import save_overlay_png

    model, config, checkpoint = _rebuilt(checkpoint, config, kind)
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
