"""Matterport-compatible instance matching and VOC-style AP.

Conventions (same as Matterport ``mrcnn/utils.py``):

* boxes are ``[N, (y1, x1, y2, x2)]`` in pixels, ``y2``/``x2`` exclusive, so the
  area of a box is ``(y2 - y1) * (x2 - x1)``;
* instance masks are ``[H, W, N]`` (instances on the last axis);
* all-zero box rows are padding and are removed before matching.

Edge cases (documented behaviour, never NaN):

* gt exists, no predictions: AP = 0, recall 0;
* no gt, no predictions: AP = 1 (nothing to find, nothing wrongly found);
* no gt, some predictions: AP = 0 (every prediction is a false positive).

``evaluate_dataset_map`` leaves images without gt out of the mean by default
(``skip_empty_gt=True``), as COCO does.
"""

from __future__ import annotations

import numpy as np

# Matterport extract_bboxes (y2/x2 exclusive, empty mask -> zeros), shared
# with the input pipeline.
from kseg.data.pipelines.molding import extract_bboxes as _extract_bboxes

__all__ = [
    "compute_overlaps",
    "compute_overlaps_masks",
    "compute_matches",
    "compute_ap",
    "compute_ap_range",
    "compute_recall",
    "evaluate_dataset_map",
]


def _as_boxes(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    return boxes.reshape(-1, 4)


def compute_overlaps(boxes1, boxes2):
    """IoU matrix ``[N1, N2]`` between two sets of ``(y1, x1, y2, x2)`` boxes."""
    b1 = _as_boxes(boxes1)
    b2 = _as_boxes(boxes2)
    if b1.shape[0] == 0 or b2.shape[0] == 0:
        return np.zeros((b1.shape[0], b2.shape[0]), dtype=np.float32)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    y1 = np.maximum(b1[:, None, 0], b2[None, :, 0])
    x1 = np.maximum(b1[:, None, 1], b2[None, :, 1])
    y2 = np.minimum(b1[:, None, 2], b2[None, :, 2])
    x2 = np.minimum(b1[:, None, 3], b2[None, :, 3])
    inter = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
    union = area1[:, None] + area2[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou.astype(np.float32)


def compute_overlaps_masks(masks1, masks2):
    """IoU matrix ``[N1, N2]`` between ``[H, W, N1]`` and ``[H, W, N2]`` masks.

    Non-boolean masks are binarised at 0.5.
    """
    m1 = np.asarray(masks1)
    m2 = np.asarray(masks2)
    n1 = m1.shape[-1] if m1.ndim == 3 else 0
    n2 = m2.shape[-1] if m2.ndim == 3 else 0
    if n1 == 0 or n2 == 0:
        return np.zeros((n1, n2), dtype=np.float32)
    if m1.shape[:2] != m2.shape[:2]:
        raise ValueError(
            f"mask sizes differ: {m1.shape[:2]} vs {m2.shape[:2]}")
    f1 = (m1.reshape(-1, n1) > 0.5).astype(np.float64)
    f2 = (m2.reshape(-1, n2) > 0.5).astype(np.float64)
    area1 = f1.sum(axis=0)
    area2 = f2.sum(axis=0)
    inter = f1.T @ f2
    union = area1[:, None] + area2[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou.astype(np.float32)


def _prepare_gt(gt_boxes, gt_class_ids, gt_masks):
    """Drop all-zero (padding) gt boxes, keep masks aligned."""
    boxes = _as_boxes(gt_boxes)
    class_ids = np.asarray(gt_class_ids).reshape(-1)
    keep = np.any(boxes != 0, axis=1)
    masks = None
    if gt_masks is not None:
        masks = np.asarray(gt_masks)
        if masks.ndim == 3 and masks.shape[-1] == keep.shape[0]:
            masks = masks[..., keep]
    return boxes[keep], class_ids[keep], masks


def _prepare_predictions(pred_boxes, pred_class_ids, pred_scores, pred_masks,
                         score_threshold=0.0):
    """Drop padding and low-score predictions, sort by descending score.

    Returns ``(boxes, class_ids, scores, masks, order)`` where ``order``
    indexes the original prediction arrays.
    """
    boxes = _as_boxes(pred_boxes)
    class_ids = np.asarray(pred_class_ids).reshape(-1)
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    keep = np.any(boxes != 0, axis=1) & (scores >= score_threshold)
    idx = np.where(keep)[0]
    # Stable sort: ties keep their input order.
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    masks = None
    if pred_masks is not None:
        masks = np.asarray(pred_masks)
        if masks.ndim == 3:
            masks = masks[..., idx]
    return boxes[idx], class_ids[idx], scores[idx], masks, idx


def compute_matches(gt_boxes, gt_class_ids, gt_masks,
                    pred_boxes, pred_class_ids, pred_scores, pred_masks,
                    iou_threshold=0.5, score_threshold=0.0):
    """Greedy matching of predictions to gt, highest score first.

    Returns ``(gt_match, pred_match, overlaps)``:

    * ``gt_match`` ``[N_gt]``: index of the matched (sorted) prediction or -1;
    * ``pred_match`` ``[N_pred]``: index of the matched gt or -1, predictions
      in descending score order;
    * ``overlaps`` ``[N_pred, N_gt]``: mask IoU (box IoU when ``gt_masks`` or
      ``pred_masks`` is None), rows in the same sorted order.

    A prediction takes the highest-IoU gt not yet matched if that IoU is
    >= ``iou_threshold`` and the class ids agree. Unlike Matterport (which by
    mistake compared IoUs against it) ``score_threshold`` filters
    predictions: those scoring below it are dropped before matching, so they
    are neither true nor false positives. With the default 0.0 both agree.
    """
    gt_boxes, gt_class_ids, gt_masks = _prepare_gt(
        gt_boxes, gt_class_ids, gt_masks)
    pred_boxes, pred_class_ids, _, pred_masks, _ = _prepare_predictions(
        pred_boxes, pred_class_ids, pred_scores, pred_masks, score_threshold)
    if gt_masks is not None and pred_masks is not None:
        overlaps = compute_overlaps_masks(pred_masks, gt_masks)
    else:
        overlaps = compute_overlaps(pred_boxes, gt_boxes)
    n_pred, n_gt = pred_boxes.shape[0], gt_boxes.shape[0]
    pred_match = -1 * np.ones(n_pred, dtype=np.float64)
    gt_match = -1 * np.ones(n_gt, dtype=np.float64)
    for i in range(n_pred):
        for j in np.argsort(-overlaps[i], kind="stable"):
            if gt_match[j] > -1:
                continue
            if overlaps[i, j] < iou_threshold:
                break
            if pred_class_ids[i] == gt_class_ids[j]:
                gt_match[j] = i
                pred_match[i] = j
                break
    return gt_match, pred_match, overlaps


def _ap_from_matches(gt_match, pred_match):
    """VOC AP (area under the monotone PR envelope) from match vectors."""
    n_gt, n_pred = len(gt_match), len(pred_match)
    if n_gt == 0:
        # Padded curves whose area equals the documented AP (1 or 0).
        if n_pred == 0:
            return 1.0, np.array([1.0, 1.0]), np.array([0.0, 1.0])
        recalls = np.concatenate([np.zeros(n_pred + 1), [1.0]])
        return 0.0, np.zeros(n_pred + 2), recalls
    tp = np.cumsum(pred_match > -1)
    precisions = tp / (np.arange(n_pred) + 1.0)
    recalls = tp.astype(np.float64) / n_gt
    precisions = np.concatenate([[0.0], precisions, [0.0]])
    recalls = np.concatenate([[0.0], recalls, [1.0]])
    # Monotone envelope: each precision becomes the max to its right.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    idx = np.where(recalls[:-1] != recalls[1:])[0] + 1
    ap = np.sum((recalls[idx] - recalls[idx - 1]) * precisions[idx])
    return float(ap), precisions, recalls


def compute_ap(gt_boxes, gt_class_ids, gt_masks,
               pred_boxes, pred_class_ids, pred_scores, pred_masks,
               iou_threshold=0.5, score_threshold=0.0):
    """AP at one IoU threshold (Matterport / VOC2010+ all-point interpolation).

    Returns ``(mAP, precisions, recalls, overlaps)``; ``precisions`` and
    ``recalls`` are padded with the (0, 1) end points like Matterport. Pass
    ``gt_masks=None`` / ``pred_masks=None`` for box AP.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks,
        pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold, score_threshold)
    ap, precisions, recalls = _ap_from_matches(gt_match, pred_match)
    return ap, precisions, recalls, overlaps


def compute_ap_range(gt_box, gt_class_id, gt_mask,
                     pred_box, pred_class_id, pred_score, pred_mask,
                     iou_thresholds=None, verbose=1):
    """Mean AP over IoU thresholds (default 0.50:0.05:0.95)."""
    if iou_thresholds is None:
        iou_thresholds = np.arange(10) * 0.05 + 0.5
    aps = []
    for t in iou_thresholds:
        ap = compute_ap(gt_box, gt_class_id, gt_mask,
                        pred_box, pred_class_id, pred_score, pred_mask,
                        iou_threshold=t)[0]
        aps.append(ap)
        if verbose:
            print(f"AP @{t:.2f}:\t {ap:.3f}")
    mean = float(np.mean(aps)) if len(aps) else 0.0
    if verbose and len(aps):
        print(f"AP @{iou_thresholds[0]:.2f}-{iou_thresholds[-1]:.2f}:\t "
              f"{mean:.3f}")
    return mean


def compute_recall(pred_boxes, gt_boxes, iou):
    """Fraction of gt boxes hit by some prediction with IoU >= ``iou``.

    Returns ``(recall, positive_ids)``; ``positive_ids`` are the prediction
    indices whose best IoU reaches ``iou``. No gt gives recall 1.0 (nothing
    to recall); gt without predictions gives 0.0.
    """
    pred = _as_boxes(pred_boxes)
    gt = _as_boxes(gt_boxes)
    if gt.shape[0] == 0:
        return 1.0, np.zeros(0, dtype=np.int64)
    if pred.shape[0] == 0:
        return 0.0, np.zeros(0, dtype=np.int64)
    overlaps = compute_overlaps(pred, gt)
    iou_max = overlaps.max(axis=1)
    iou_argmax = overlaps.argmax(axis=1)
    positive_ids = np.where(iou_max >= iou)[0]
    matched = set(iou_argmax[positive_ids].tolist())
    return len(matched) / gt.shape[0], positive_ids


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def evaluate_dataset_map(detect_fn, dataset, image_ids, iou_threshold=0.5,
                         verbose=1, batch_size=1, skip_empty_gt=True):
    """Per-image mask and box AP over a Matterport-style dataset.

    ``detect_fn(list_of_images)`` returns one Matterport detect dict per
    image (``rois``, ``class_ids``, ``scores``, ``masks`` in original image
    coordinates). Images are passed in lists of exactly ``batch_size``; the
    last one is padded by repeating its final image (extra results dropped).

    Returns a dict with ``mask_map`` / ``box_map`` (means at
    ``iou_threshold``), the same values under ``mask_mapNN`` / ``box_mapNN``
    (``NN = round(100 * iou_threshold)``, i.e. ``mask_map50`` by default),
    ``per_image`` (list of ``{"image_id", "mask_ap", "box_ap", "num_gt",
    "num_pred"}``), ``mask_aps`` / ``box_aps`` (lists aligned with
    ``image_ids``), ``num_images`` (images in the mean) and
    ``iou_threshold``. Images without gt get AP per the module docstring and
    are left out of the means when ``skip_empty_gt``.
    """
    image_ids = list(image_ids)
    progbar = None
    if verbose:
        import keras

        progbar = keras.utils.Progbar(len(image_ids), verbose=verbose)
    per_image = []
    done = 0
    for chunk in _batches(image_ids, max(1, int(batch_size))):
        images = [dataset.load_image(i) for i in chunk]
        padded = images + [images[-1]] * (batch_size - len(images))
        results = detect_fn(padded)
        for image_id, image, det in zip(chunk, images, results):
            gt_masks, gt_class_ids = dataset.load_mask(image_id)
            gt_masks = np.asarray(gt_masks).astype(bool)
            if gt_masks.ndim == 2:
                gt_masks = gt_masks[..., None]
            gt_class_ids = np.abs(np.asarray(gt_class_ids).reshape(-1))
            gt_boxes = _extract_bboxes(gt_masks)
            rois = _as_boxes(det["rois"])
            pred_masks = np.asarray(det["masks"])
            if pred_masks.ndim == 3 and pred_masks.shape[-1] and \
                    pred_masks.shape[:2] != gt_masks.shape[:2]:
                raise ValueError(
                    f"image {image_id}: detection masks "
                    f"{pred_masks.shape[:2]} != gt masks "
                    f"{gt_masks.shape[:2]}; detect_fn must return masks in "
                    "original image coordinates")
            if pred_masks.ndim != 3:
                pred_masks = np.zeros(image.shape[:2] + (0,), dtype=bool)
            args = (det["class_ids"], det["scores"])
            mask_ap = compute_ap(gt_boxes, gt_class_ids, gt_masks,
                                 rois, *args, pred_masks,
                                 iou_threshold=iou_threshold)[0]
            box_ap = compute_ap(gt_boxes, gt_class_ids, None,
                                rois, *args, None,
                                iou_threshold=iou_threshold)[0]
            per_image.append({
                "image_id": image_id,
                "mask_ap": mask_ap,
                "box_ap": box_ap,
                "num_gt": int(gt_boxes.shape[0]),
                "num_pred": int(rois.shape[0]),
            })
            done += 1
            if progbar is not None:
                progbar.update(done, values=[("mask_AP", mask_ap),
                                             ("box_AP", box_ap)])
    used = [r for r in per_image if r["num_gt"] > 0 or not skip_empty_gt]
    mask_map = float(np.mean([r["mask_ap"] for r in used])) if used else 0.0
    box_map = float(np.mean([r["box_ap"] for r in used])) if used else 0.0
    tag = int(round(100 * iou_threshold))
    return {
        "mask_map": mask_map,
        "box_map": box_map,
        f"mask_map{tag}": mask_map,
        f"box_map{tag}": box_map,
        "iou_threshold": float(iou_threshold),
        "num_images": len(used),
        "per_image": per_image,
        "mask_aps": [r["mask_ap"] for r in per_image],
        "box_aps": [r["box_ap"] for r in per_image],
    }
