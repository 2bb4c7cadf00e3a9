"""An instance model over a dataset: mask / box mAP at one IoU and COCO AP, as one dict.

    result = evaluate_instances(model, dataset, dataset.image_ids, iou=0.5)
    print(format_instance_report(result))

`model` is anything with Matterport's `detect(images) -> [{"rois", "class_ids",
"scores", "masks"}]` (a `MaskRCNN` in inference mode); every image is detected once.
"""

from .coco import COCO_STAT_NAMES, coco_evaluate
from .matching import evaluate_dataset_map
from .semantic import format_table


def evaluate_instances(model, dataset, image_ids, iou=0.5, verbose=0):
    """mAP@iou (masks and boxes) and COCO AP of `model` on `dataset` as one dict:
    mask_map, box_map (and mask_map50 ... for iou 0.5), iou_threshold, num_images,
    coco {"bbox": {...}, "segm": {...}}, per_image."""
    image_ids = [int(i) for i in image_ids]
    detections = []

    def detect(images):
        results = model.detect(images)
        detections.extend(results)
        return results

    result = evaluate_dataset_map(detect, dataset, image_ids, iou_threshold=iou,
                                  verbose=verbose, batch_size=1)
    coco = coco_evaluate(dataset, dict(zip(image_ids, detections)), image_ids)
    tag = int(round(100 * iou))
    return {"mask_map": result["mask_map"], "box_map": result["box_map"],
            f"mask_map{tag}": result["mask_map"], f"box_map{tag}": result["box_map"],
            "iou_threshold": iou, "num_images": result["num_images"], "coco": coco,
            "per_image": result["per_image"]}


def format_instance_report(result):
    """mAP lines and a COCO AP table (rows AP, AP50, ..., columns bbox, segm)."""
    iou = result["iou_threshold"]
    lines = [f"mask mAP@{iou:g}: {result['mask_map']:.4f}",
             f"box  mAP@{iou:g}: {result['box_map']:.4f}",
             f"({result['num_images']} images with ground truth)", ""]
    rows = [[name, result["coco"]["bbox"][name], result["coco"]["segm"][name]]
            for name in COCO_STAT_NAMES]
    lines.append(format_table(rows, ["COCO", "bbox", "segm"]))
    return "\n".join(lines)
