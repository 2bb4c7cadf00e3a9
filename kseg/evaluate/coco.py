"""COCO metrics through pycocotools ``COCOeval``, built fully in memory.

Ground truth comes from a Matterport-style dataset (``load_mask``,
``class_names``, ``image_info``); category ids are the dataset's internal
class ids (1..num_classes-1). Crowd regions: a negative class id from
``load_mask`` (Matterport's COCO loader convention) or a truthy entry of
``image_info[i]["iscrowd"]`` (list aligned with the instances) marks an
instance as ``iscrowd=1``. Instances with an empty mask are skipped (as
Matterport's COCO loader does).
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

from .matching import _as_boxes, _extract_bboxes

__all__ = ["coco_evaluate", "detections_to_coco_results", "build_coco_gt",
           "COCO_STAT_NAMES"]

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
                   "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _encode(mask):
    """Compressed RLE of one ``[H, W]`` mask with a ``str`` counts field."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    if isinstance(rle["counts"], bytes):
        rle["counts"] = rle["counts"].decode("ascii")
    rle["size"] = [int(v) for v in rle["size"]]
    return rle


def _category(class_id, class_id_to_category):
    class_id = int(class_id)
    if class_id_to_category is None:
        return class_id
    if callable(class_id_to_category):
        return int(class_id_to_category(class_id))
    return int(class_id_to_category[class_id])


def detections_to_coco_results(image_id, det, class_id_to_category=None,
                               include_masks=True):
    """COCO result dicts (JSON-serialisable) for one Matterport detect dict.

    Each entry has ``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``
    (from ``rois`` ``(y1, x1, y2, x2)``), ``score`` and, if
    ``include_masks``, ``segmentation`` as compressed RLE with ``str``
    counts. ``class_id_to_category`` (dict or callable) maps internal class
    ids to dataset category ids; identity by default.
    """
    rois = _as_boxes(det["rois"])
    class_ids = np.asarray(det["class_ids"]).reshape(-1)
    scores = np.asarray(det["scores"], dtype=np.float64).reshape(-1)
    masks = det.get("masks") if include_masks else None
    if masks is not None:
        masks = np.asarray(masks)
    results = []
    for i in range(rois.shape[0]):
        y1, x1, y2, x2 = (float(v) for v in rois[i])
        entry = {
            "image_id": int(image_id),
            "category_id": _category(class_ids[i], class_id_to_category),
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(scores[i]),
        }
        if masks is not None and masks.ndim == 3 and i < masks.shape[-1]:
            entry["segmentation"] = _encode(masks[:, :, i] > 0.5)
        results.append(entry)
    return results


def build_coco_gt(dataset, image_ids):
    """In-memory ``pycocotools.coco.COCO`` ground truth for ``image_ids``."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    images, annotations = [], []
    ann_id = 1  # COCOeval treats annotation id 0 as "unmatched"
    for image_id in image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        masks = np.asarray(masks).astype(bool)
        if masks.ndim == 2:
            masks = masks[..., None]
        class_ids = np.asarray(class_ids).reshape(-1)
        info = {}
        if hasattr(dataset, "image_info"):
            with contextlib.suppress(IndexError, KeyError, TypeError):
                info = dataset.image_info[image_id]
        height = info.get("height", masks.shape[0])
        width = info.get("width", masks.shape[1])
        images.append({"id": int(image_id), "height": int(height),
                       "width": int(width)})
        crowd_flags = info.get("iscrowd")
        boxes = _extract_bboxes(masks)
        for k in range(class_ids.shape[0]):
            if not masks[:, :, k].any():
                continue  # fully occluded/cropped: undetectable, skip
            rle = _encode(masks[:, :, k])
            crowd = bool(class_ids[k] < 0)
            if crowd_flags is not None and k < len(crowd_flags):
                crowd = crowd or bool(crowd_flags[k])
            y1, x1, y2, x2 = (int(v) for v in boxes[k])
            annotations.append({
                "id": ann_id,
                "image_id": int(image_id),
                "category_id": int(abs(class_ids[k])),
                "segmentation": rle,
                "area": float(mask_utils.area(rle)),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "iscrowd": int(crowd),
            })
            ann_id += 1
    class_names = list(getattr(dataset, "class_names", []))
    num_classes = int(getattr(dataset, "num_classes", len(class_names)))
    categories = [{"id": c, "name": class_names[c] if c < len(class_names)
                   else str(c)} for c in range(1, num_classes)]
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": categories}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _run_cocoeval(coco_gt, results, iou_type, image_ids, verbose):
    from pycocotools.cocoeval import COCOeval

    if not results:
        # loadRes cannot take an empty list; COCOeval would give 0 AP.
        return {name: 0.0 for name in COCO_STAT_NAMES}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.params.imgIds = [int(i) for i in image_ids]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    if verbose:
        print(f"COCO {iou_type}:\n{sink.getvalue()}")
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}


def coco_evaluate(dataset, detections, image_ids=None,
                  iou_type=("bbox", "segm"), verbose=0):
    """COCO AP/AR via ``COCOeval`` for Matterport detect dicts.

    ``detections`` maps image id -> detect dict (``rois``, ``class_ids``,
    ``scores``, ``masks``). Returns ``{"bbox": {"AP", "AP50", "AP75", "APs",
    "APm", "APl", "AR1", ...}, "segm": {...}}`` for the requested types.
    Values are COCOeval's: -1 where a category/area range has no gt. With no
    detections at all every value is 0.0. Box and mask results are loaded
    separately so that segm areas come from the masks, not the boxes.
    """
    if image_ids is None:
        image_ids = list(detections.keys())
    image_ids = [int(i) for i in image_ids]
    if isinstance(iou_type, str):
        iou_type = (iou_type,)
    coco_gt = build_coco_gt(dataset, image_ids)
    out = {}
    for kind in iou_type:
        if kind not in ("bbox", "segm"):
            raise ValueError(f"unsupported iou_type {kind!r}")
        results = []
        for image_id in image_ids:
            det = detections.get(image_id)
            if det is None:
                continue
            for r in detections_to_coco_results(
                    image_id, det, include_masks=(kind == "segm")):
                if kind == "segm":
                    if "segmentation" not in r:
                        continue
                    r.pop("bbox")
                results.append(r)
        out[kind] = _run_cocoeval(coco_gt, results, kind, image_ids, verbose)
    return out
