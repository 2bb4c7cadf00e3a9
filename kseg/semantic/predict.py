"""Predicting and evaluating FCN / U-Net models at the ORIGINAL image size.

    class_maps, probabilities = predict_semantic(model, config, images)
    results = evaluate_semantic(model, val_dataset, config)
    print(results_table(results))

Images are molded as in training (`resize_image` with the config's IMAGE_RESIZE_MODE;
"crop" predicts the whole image padded to a multiple of 64), predicted, the window
of the real image cut out and its probabilities resized (bilinear) back.

Shape shorthand:
    images: a list of [H_i, W_i, 3] uint8 RGB (any sizes).
    class map [H, W] int32; probabilities [H, W, K] float32, K = NUM_CLASSES (a 1-channel
    sigmoid output becomes [1 - p, p]).
"""

import numpy as np

from kseg.data.pipelines.molding import resize, resize_image
from kseg.evaluate.semantic import (
    confusion_matrix,
    dice_per_class,
    format_table,
    iou_per_class,
    kitti_road_maxf,
    mean_dice,
    mean_iou,
    pixel_accuracy,
)


def mold_semantic_image(image, config):
    """[H, W, 3] uint8 -> (molded [h, w, 3] float32 0..255, window (y1, x1, y2, x2))."""
    mode = "pad64" if config.IMAGE_RESIZE_MODE == "crop" else config.IMAGE_RESIZE_MODE
    molded, window, _, _, _ = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=mode)
    return molded.astype(np.float32), window


def output_probabilities(output, activation):
    """Model output [..., C] (probabilities / logits, C = 1 for binary) -> [..., K] probs."""
    from scipy.special import expit, softmax

    output = np.asarray(output, dtype=np.float32)
    if activation == "logits":
        output = expit(output) if output.shape[-1] == 1 else softmax(output, axis=-1)
    if output.shape[-1] == 1:
        output = np.concatenate([1.0 - output, output], axis=-1)
    return output


def _batches(molded, batch_size):
    """Runs of consecutive indices with equal molded shapes, at most batch_size long."""
    start = 0
    for end in range(1, len(molded) + 1):
        if end == len(molded) or end - start == batch_size \
                or molded[end][0].shape != molded[start][0].shape:
            yield list(range(start, end))
            start = end


def predict_semantic(model, config, images, batch_size=None, flip=False):
    """Class maps and probabilities at each image's original size (see module docstring).

    `flip=True` (test-time augmentation) averages the probabilities of each image and of
    its horizontal mirror (mirrored back): twice the inference time.

    Returns:
        class_maps: list of [H_i, W_i] int32; probabilities: list of [H_i, W_i, K] float32.
    """
    molded = [mold_semantic_image(np.asarray(image), config) for image in images]
    class_maps, probabilities = [], []
    for indices in _batches(molded, batch_size or config.BATCH_SIZE):
        batch = np.stack([molded[i][0] for i in indices])
        outputs = output_probabilities(model.predict_on_batch(batch), config.OUTPUT_ACTIVATION)
        if flip:
            mirrored = model.predict_on_batch(np.ascontiguousarray(batch[:, :, ::-1]))
            mirrored = output_probabilities(mirrored, config.OUTPUT_ACTIVATION)[:, :, ::-1]
            outputs = 0.5 * (outputs + mirrored)
        for i, output in zip(indices, outputs):
            y1, x1, y2, x2 = molded[i][1]
            height, width = np.asarray(images[i]).shape[:2]
            probs = output[y1:y2, x1:x2]
            if probs.shape[:2] != (height, width):
                probs = resize(probs, (height, width), order=1).astype(np.float32)
            probabilities.append(probs)
            class_maps.append(probs.argmax(axis=-1).astype(np.int32))
    return class_maps, probabilities


def summarize(matrix, class_names, extra=None):
    """Scores dict from a [K, K] confusion matrix (rows gt): per-class IoU / Dice, means."""
    ious, dices = iou_per_class(matrix), dice_per_class(matrix)
    results = {
        "class_names": list(class_names),
        "iou": {name: float(v) for name, v in zip(class_names, ious)},
        "dice": {name: float(v) for name, v in zip(class_names, dices)},
        "mean_iou": mean_iou(matrix), "mean_dice": mean_dice(matrix),
        "pixel_accuracy": pixel_accuracy(matrix),
        "confusion_matrix": np.asarray(matrix).tolist(),
    }
    results.update(extra or {})
    return results


def _class_names(dataset, num_classes):
    names = list(getattr(dataset, "class_names", []))
    return names if len(names) == num_classes else [f"class_{i}" for i in range(num_classes)]


def evaluate_semantic(model, dataset, config, image_ids=None, batch_size=None, flip=False):
    """Per-class IoU / Dice, mean IoU, pixel accuracy of `model` on a kseg `Dataset`,
    at original image size; binary tasks add best-threshold F "maxf" and "ap" (KITTI
    road's MaxF / AP, on class 1's probability). `flip`: test-time horizontal flip (see
    `predict_semantic`). Returns a dict (see `summarize`) with "num_images"."""
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    num_classes = config.NUM_CLASSES
    matrix = np.zeros((num_classes, num_classes), np.int64)
    road_probs, road_gts, valids = [], [], []
    batch = batch_size or max(config.BATCH_SIZE, 1)
    for start in range(0, len(image_ids), batch):
        ids = image_ids[start:start + batch]
        images = [dataset.load_image(i) for i in ids]
        gts = [dataset.load_semantic_mask(i) for i in ids]
        class_maps, probs = predict_semantic(model, config, images, batch, flip=flip)
        for gt, class_map, prob in zip(gts, class_maps, probs):
            matrix += confusion_matrix(gt, class_map, num_classes, config.IGNORE_INDEX)
            if num_classes == 2:
                road_probs.append(prob[..., 1])
                road_gts.append(gt == 1)
                valids.append(gt != config.IGNORE_INDEX if config.IGNORE_INDEX is not None
                              else np.ones(gt.shape, bool))
    extra = {"num_images": len(image_ids)}
    if num_classes == 2 and road_probs:
        kitti = kitti_road_maxf(road_probs, road_gts, valid_mask=valids)
        extra.update(maxf=kitti["MaxF"], ap=kitti["AP"])
    return summarize(matrix, _class_names(dataset, num_classes), extra)


def _foreground_frequency(dataset, image_ids, grid):
    """Mean over images of the per-class frequency maps, resized to `grid` -> [gh, gw, K]."""
    total = None
    for image_id in image_ids:
        class_map = dataset.load_semantic_mask(image_id)
        onehot = np.eye(dataset.num_classes, dtype=np.float32)[np.clip(class_map, 0,
                                                                       dataset.num_classes - 1)]
        onehot = resize(onehot, grid, order=1)
        total = onehot if total is None else total + onehot
    return total / max(len(image_ids), 1)


def mean_mask_prior(train_dataset, val_dataset, ignore_index=None, grid=(128, 128)):
    """Scores of two trivial predictors on `val_dataset`, for reference:

    "mean_mask": the per-pixel most frequent class of the training masks (the mean
        training mask thresholded at 0.5 for a binary task), resized to each image;
    "all_foreground": class 1 everywhere (e.g. all-road).
    Returns {"mean_mask": results, "all_foreground": results} (see `summarize`).
    """
    num_classes = val_dataset.num_classes
    prior = _foreground_frequency(train_dataset, train_dataset.image_ids, grid).argmax(-1)
    names = _class_names(val_dataset, num_classes)
    matrices = {key: np.zeros((num_classes, num_classes), np.int64)
                for key in ("mean_mask", "all_foreground")}
    for image_id in val_dataset.image_ids:
        gt = val_dataset.load_semantic_mask(image_id)
        guess = resize(prior, gt.shape, order=0).astype(np.int64)
        matrices["mean_mask"] += confusion_matrix(gt, guess, num_classes, ignore_index)
        matrices["all_foreground"] += confusion_matrix(gt, np.ones_like(gt), num_classes,
                                                       ignore_index)
    return {key: summarize(m, names) for key, m in matrices.items()}


def trivial_priors(train_dataset, val_dataset, ignore_index=None, grid=(128, 128)):
    """`mean_mask_prior`'s two predictors plus "all_background" (class 0 everywhere), on
    `val_dataset`: {"all_background", "all_foreground", "mean_mask": results}."""
    priors = mean_mask_prior(train_dataset, val_dataset, ignore_index, grid)
    counts = np.asarray(priors["all_foreground"]["confusion_matrix"]).sum(axis=1)
    matrix = np.zeros((len(counts), len(counts)), np.int64)
    matrix[:, 0] = counts  # every ground-truth pixel predicted as class 0
    return {"all_background": summarize(matrix, priors["all_foreground"]["class_names"]),
            "all_foreground": priors["all_foreground"], "mean_mask": priors["mean_mask"]}


def comparison_table(named_results):
    """One line per predictor ({name: results}): foreground IoU (class 1), mean IoU, pixel
    accuracy; e.g. the model beside `trivial_priors` on the same images."""
    rows = []
    for name, results in named_results.items():
        foreground = results["class_names"][1] if len(results["class_names"]) > 1 else None
        iou = results["iou"][foreground] if foreground else float("nan")
        rows.append([name, iou, results["mean_iou"], results["pixel_accuracy"]])
    first = next(iter(named_results.values()))
    label = f"{first['class_names'][1]} IoU" if len(first["class_names"]) > 1 else "IoU"
    return format_table(rows, ["predictor", label, "mean IoU", "pixel acc."])


def results_table(results):
    """Per-class IoU / Dice table plus the means, as text."""
    rows = [[name, results["iou"][name], results["dice"][name]]
            for name in results["class_names"]]
    rows.append(["mean", results["mean_iou"], results["mean_dice"]])
    text = format_table(rows, ["class", "IoU", "Dice"])
    text += f"\npixel accuracy {results['pixel_accuracy']:.4f}"
    if "maxf" in results:
        text += f"\nbest-threshold F (MaxF) {results['maxf']:.4f}  AP {results['ap']:.4f}"
    return text
