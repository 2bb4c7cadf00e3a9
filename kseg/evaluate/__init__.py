"""Evaluation: Matterport-compatible AP, COCO metrics, semantic metrics.

``kseg.evaluate.compute_ap`` etc. keep Matterport ``mrcnn/utils.py``
signatures and return values.

    matching.py    box / mask overlaps, matches, AP (Matterport's utils)
    coco.py        COCO AP through pycocotools
    instances.py   an instance model over a dataset: mAP + COCO AP, and its report
    semantic.py    confusion matrices, IoU, dice, KITTI MaxF, tables and JSON

May import: kseg.data, kseg.utils (models are passed in, never imported).
"""

from .coco import (
    COCO_STAT_NAMES,
    build_coco_gt,
    coco_evaluate,
    detections_to_coco_results,
)
from .instances import evaluate_instances, format_instance_report
from .matching import (
    _extract_bboxes as _extract_bboxes,
)
from .matching import (
    compute_ap,
    compute_ap_range,
    compute_matches,
    compute_overlaps,
    compute_overlaps_masks,
    compute_recall,
    evaluate_dataset_map,
)
from .semantic import (
    confusion_matrix,
    dice_per_class,
    format_table,
    iou_per_class,
    kitti_road_maxf,
    mean_dice,
    mean_iou,
    pixel_accuracy,
    write_json,
)

__all__ = [
    "COCO_STAT_NAMES",
    "build_coco_gt",
    "coco_evaluate",
    "compute_ap",
    "compute_ap_range",
    "compute_matches",
    "compute_overlaps",
    "compute_overlaps_masks",
    "compute_recall",
    "confusion_matrix",
    "detections_to_coco_results",
    "dice_per_class",
    "evaluate_dataset_map",
    "evaluate_instances",
    "format_instance_report",
    "format_table",
    "iou_per_class",
    "kitti_road_maxf",
    "mean_dice",
    "mean_iou",
    "pixel_accuracy",
    "write_json",
]
