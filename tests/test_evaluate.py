"""Hand-checked numbers for kseg.evaluate (matching/AP, COCO, semantic)."""

import json
import os

import numpy as np
import pytest

from kseg.evaluate import (
    coco_evaluate,
    compute_ap,
    compute_ap_range,
    compute_matches,
    compute_overlaps,
    compute_overlaps_masks,
    compute_recall,
    confusion_matrix,
    detections_to_coco_results,
    dice_per_class,
    evaluate_dataset_map,
    format_table,
    iou_per_class,
    kitti_road_maxf,
    mean_dice,
    mean_iou,
    pixel_accuracy,
    write_json,
)
from kseg.evaluate.matching import _extract_bboxes

H, W = 64, 64


def rect_mask(y1, x1, y2, x2, shape=(H, W)):
    m = np.zeros(shape, dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def stack(*masks, shape=(H, W)):
    if not masks:
        return np.zeros(shape + (0,), dtype=bool)
    return np.stack(masks, axis=-1)


# ---------------------------------------------------------------------------
# overlaps
# ---------------------------------------------------------------------------

def test_compute_overlaps_hand_values():
    b1 = np.array([[0, 0, 10, 10]])
    b2 = np.array([[0, 0, 10, 10], [0, 5, 10, 15], [20, 20, 30, 30]])
    # second: intersection 10x5=50, union 100+100-50=150
    np.testing.assert_allclose(compute_overlaps(b1, b2), [[1.0, 1 / 3, 0.0]],
                               rtol=1e-6)
    assert compute_overlaps(np.zeros((0, 4)), b2).shape == (0, 3)


def test_compute_overlaps_masks_hand_values():
    m1 = stack(rect_mask(0, 0, 2, 2, (4, 4)), np.zeros((4, 4), bool),
               shape=(4, 4))
    m2 = stack(rect_mask(0, 1, 2, 3, (4, 4)), shape=(4, 4))
    # areas 4 and 4, intersection 2 -> 2 / 6; empty vs anything -> 0, not NaN
    ov = compute_overlaps_masks(m1, m2)
    np.testing.assert_allclose(ov, [[1 / 3], [0.0]], rtol=1e-6)
    assert compute_overlaps_masks(m1, np.zeros((4, 4, 0))).shape == (2, 0)


def test_extract_bboxes_exclusive():
    m = stack(rect_mask(3, 5, 7, 9), np.zeros((H, W), bool))
    np.testing.assert_array_equal(_extract_bboxes(m),
                                  [[3, 5, 7, 9], [0, 0, 0, 0]])


# ---------------------------------------------------------------------------
# matching / AP
# ---------------------------------------------------------------------------

GT_A = (10, 10, 20, 20)
GT_B = (30, 30, 40, 40)


def gt_two():
    boxes = np.array([GT_A, GT_B])
    masks = stack(rect_mask(*GT_A), rect_mask(*GT_B))
    return boxes, np.array([1, 1]), masks


def test_perfect_prediction_ap_is_one():
    boxes, cls, masks = gt_two()
    ap, prec, rec, ov = compute_ap(boxes, cls, masks, boxes, cls,
                                   np.array([0.9, 0.8]), masks)
    assert ap == pytest.approx(1.0)
    assert ov.shape == (2, 2)
    assert np.all(np.isfinite(prec)) and np.all(np.isfinite(rec))


def test_false_positive_ranked_first():
    boxes, cls, masks = gt_two()
    fp_box = (50, 50, 60, 60)  # overlaps nothing
    # input order deliberately not sorted by score
    pred_boxes = np.array([GT_A, fp_box])
    pred_scores = np.array([0.8, 0.9])
    pred_masks = stack(rect_mask(*GT_A), rect_mask(*fp_box))
    gt_match, pred_match, ov = compute_matches(
        boxes, cls, masks, pred_boxes, np.array([1, 1]), pred_scores,
        pred_masks)
    # sorted by score: [fp (0.9), A (0.8)]
    np.testing.assert_array_equal(pred_match, [-1, 0])
    np.testing.assert_array_equal(gt_match, [1, -1])
    ap, prec, rec, _ = compute_ap(boxes, cls, masks, pred_boxes,
                                  np.array([1, 1]), pred_scores, pred_masks)
    # Ranked: FP, TP. precision [0, 1/2], recall [0, 1/2] of 2 gt.
    # Padded: p=[0, 0, .5, 0], r=[0, 0, .5, 1]; envelope p=[.5, .5, .5, 0].
    # AP = (0.5 - 0) * 0.5 + (1 - 0.5) * 0 = 0.25
    assert ap == pytest.approx(0.25)
    np.testing.assert_allclose(rec, [0, 0, 0.5, 1])
    np.testing.assert_allclose(prec, [0.5, 0.5, 0.5, 0])


def test_matching_prefers_higher_score_and_checks_class():
    boxes = np.array([GT_A])
    masks = stack(rect_mask(*GT_A))
    # pred0: exact but lower score; pred1: IoU 100/120 but higher score
    pred_boxes = np.array([GT_A, (10, 10, 20, 22)])
    pred_masks = stack(rect_mask(*GT_A), rect_mask(10, 10, 20, 22))
    gt_match, pred_match, _ = compute_matches(
        boxes, [1], masks, pred_boxes, [1, 1], [0.5, 0.9], pred_masks)
    np.testing.assert_array_equal(pred_match, [0, -1])  # the 0.9 one wins
    np.testing.assert_array_equal(gt_match, [0])
    # wrong class: no match even at IoU 1
    gt_match, pred_match, _ = compute_matches(
        boxes, [1], masks, pred_boxes[:1], [2], [0.9], pred_masks[..., :1])
    assert gt_match[0] == -1 and pred_match[0] == -1


def test_empty_cases_no_nan():
    boxes, cls, masks = gt_two()
    empty_b, empty_m = np.zeros((0, 4)), np.zeros((H, W, 0), bool)
    ap, prec, rec, ov = compute_ap(boxes, cls, masks, empty_b, [], [],
                                   empty_m)
    assert ap == 0.0 and ov.shape == (0, 2)
    assert np.all(np.isfinite(prec)) and np.all(np.isfinite(rec))
    # no gt, no predictions -> 1.0 (documented); no gt with preds -> 0.0
    assert compute_ap(empty_b, [], empty_m, empty_b, [], [], empty_m)[0] == 1
    ap, prec, rec, _ = compute_ap(empty_b, [], empty_m, boxes, cls, [.9, .8],
                                  masks)
    assert ap == 0.0 and np.all(np.isfinite(prec + rec))


def test_padding_rows_trimmed_and_box_ap():
    boxes, cls, masks = gt_two()
    padded_boxes = np.concatenate([boxes, np.zeros((2, 4))])
    padded_cls = np.array([1, 1, 0, 0])
    padded_masks = np.concatenate([masks, np.zeros((H, W, 2), bool)], -1)
    ap = compute_ap(padded_boxes, padded_cls, padded_masks, boxes, cls,
                    [.9, .8], masks)[0]
    assert ap == pytest.approx(1.0)
    # box AP (masks None): half-width shift gives IoU 1/3 -> unmatched
    shifted = boxes + np.array([0, 5, 0, 5])
    assert compute_ap(boxes, cls, None, shifted, cls, [.9, .8], None)[0] == 0


def test_compute_ap_range_hand_value():
    gt_boxes = np.array([GT_A])
    gt_masks = stack(rect_mask(*GT_A))
    pred = (10, 10, 20, 26)  # IoU = 100 / 160 = 0.625
    pm = stack(rect_mask(*pred))
    # matched at 0.50, 0.55, 0.60 only -> 3 / 10
    ap = compute_ap_range(gt_boxes, [1], gt_masks, np.array([pred]), [1],
                          [0.9], pm, verbose=0)
    assert ap == pytest.approx(0.3)


def test_compute_recall():
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 16], [50, 50, 60, 60]])
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    recall, positive_ids = compute_recall(pred, gt, 0.5)
    assert recall == pytest.approx(0.5)
    np.testing.assert_array_equal(positive_ids, [0, 1])
    assert compute_recall(np.zeros((0, 4)), gt, 0.5)[0] == 0.0


# ---------------------------------------------------------------------------
# dataset-level
# ---------------------------------------------------------------------------

class TinyDataset:
    """Minimal stand-in with the Matterport Dataset API."""

    def __init__(self, instances, crowd=None):
        # instances: image_id -> list of (class_id, (y1, x1, y2, x2))
        self.instances = instances
        self.class_names = ["BG", "square", "bar"]
        self.num_classes = 3
        self.image_ids = np.arange(len(instances))
        self.image_info = [{"id": i, "height": H, "width": W}
                           for i in range(len(instances))]
        if crowd is not None:
            for i, flags in crowd.items():
                self.image_info[i]["iscrowd"] = flags

    def load_image(self, image_id):
        return np.full((H, W, 3), 128, dtype=np.uint8)

    def load_mask(self, image_id):
        inst = self.instances[image_id]
        masks = stack(*[rect_mask(*b) for _, b in inst])
        return masks, np.array([c for c, _ in inst], dtype=np.int32)

    def image_reference(self, image_id):
        return f"tiny-{image_id}"


def det_from(items):
    """items: list of (class_id, box, score)."""
    return {
        "rois": np.array([b for _, b, _ in items], np.int32).reshape(-1, 4),
        "class_ids": np.array([c for c, _, _ in items], np.int32),
        "scores": np.array([s for _, _, s in items], np.float32),
        "masks": stack(*[rect_mask(*b) for _, b, _ in items]),
    }


def test_evaluate_dataset_map():
    ds = TinyDataset({0: [(1, GT_A), (2, GT_B)],
                      1: [(1, GT_A), (1, GT_B)],
                      2: []})
    dets = {0: det_from([(1, GT_A, .9), (2, GT_B, .8)]),
            1: det_from([(1, (50, 50, 60, 60), .9), (1, GT_A, .8)]),
            2: det_from([])}
    calls = []
    order = iter([0, 1, 2, 2])  # batch_size 2: [0, 1], then [2, 2 (pad)]

    def detect_fn(images):
        calls.append(len(images))
        return [dets[next(order)] for _ in images]

    res = evaluate_dataset_map(detect_fn, ds, [0, 1, 2], batch_size=2,
                               verbose=1)
    assert calls == [2, 2]
    # image 0 perfect (1.0), image 1 FP-first (0.25), image 2 no gt (skipped)
    assert res["mask_map50"] == pytest.approx(0.625)
    assert res["box_map50"] == pytest.approx(0.625)
    assert res["num_images"] == 2
    assert res["mask_aps"] == pytest.approx([1.0, 0.25, 1.0])
    assert [r["image_id"] for r in res["per_image"]] == [0, 1, 2]


# ---------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------

def test_coco_perfect_and_half_overlap():
    ds = TinyDataset({0: [(1, GT_A), (2, GT_B)], 1: [(1, GT_A)]})
    perfect = {0: det_from([(1, GT_A, .9), (2, GT_B, .8)]),
               1: det_from([(1, GT_A, .7)])}
    res = coco_evaluate(ds, perfect, [0, 1])
    for kind in ("bbox", "segm"):
        assert res[kind]["AP"] == pytest.approx(1.0)
        assert res[kind]["AP50"] == pytest.approx(1.0)
        assert res[kind]["APs"] == pytest.approx(1.0)
        assert res[kind]["APl"] == -1.0  # no large objects
    # box and mask IoU 100/160 = 0.625: matched at .50/.55/.60 only
    half = {0: det_from([(1, (10, 10, 20, 26), .9)])}
    ds1 = TinyDataset({0: [(1, GT_A)]})
    res = coco_evaluate(ds1, half, [0])
    for kind in ("bbox", "segm"):
        assert res[kind]["AP50"] == pytest.approx(1.0)
        assert res[kind]["AP75"] == pytest.approx(0.0)
        assert res[kind]["AP"] == pytest.approx(0.3)


def test_coco_crowd_and_empty():
    # second instance is crowd (negative class id): a detection on it is
    # ignored rather than counted as a false positive
    ds = TinyDataset({0: [(1, GT_A), (-1, GT_B)]})
    dets = {0: det_from([(1, GT_B, .95), (1, GT_A, .9)])}
    assert coco_evaluate(ds, dets, [0], iou_type="segm")["segm"]["AP"] == \
        pytest.approx(1.0)
    ds2 = TinyDataset({0: [(1, GT_A), (1, GT_B)]}, crowd={0: [0, 1]})
    assert coco_evaluate(ds2, dets, [0], iou_type="bbox")["bbox"]["AP"] == \
        pytest.approx(1.0)
    empty = coco_evaluate(ds, {0: det_from([])}, [0])
    assert empty["bbox"]["AP"] == 0.0 and empty["segm"]["AP"] == 0.0


def test_detections_to_coco_results_json():
    from pycocotools import mask as mask_utils

    det = det_from([(2, (3, 4, 10, 12), .5)])
    res = detections_to_coco_results(np.int64(7), det)
    text = json.dumps(res)
    back = json.loads(text)[0]
    assert back["image_id"] == 7 and back["category_id"] == 2
    assert back["bbox"] == [4.0, 3.0, 8.0, 7.0]
    decoded = mask_utils.decode(back["segmentation"])
    np.testing.assert_array_equal(decoded.astype(bool),
                                  rect_mask(3, 4, 10, 12))
    res = detections_to_coco_results(1, det, class_id_to_category={2: 18},
                                     include_masks=False)
    assert res[0]["category_id"] == 18 and "segmentation" not in res[0]


# ---------------------------------------------------------------------------
# semantic
# ---------------------------------------------------------------------------

def test_confusion_and_scores():
    y_true = np.array([[0, 0, 1], [1, 2, 2], [255, 255, 255]])
    y_pred = np.array([[0, 1, 1], [1, 2, 0], [2, 2, 2]])
    cm = confusion_matrix(y_true, y_pred, 3, ignore_index=255)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    # IoU: 1/(2+2-1), 2/(2+3-2), 1/(2+1-1)
    np.testing.assert_allclose(iou_per_class(cm), [1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(cm) == pytest.approx(0.5)
    np.testing.assert_allclose(dice_per_class(cm), [2 / 4, 4 / 5, 2 / 3])
    assert mean_dice(cm) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)
    # absent class 3 is NaN per class and skipped by the mean
    cm4 = confusion_matrix(y_true, y_pred, 4, ignore_index=255)
    assert np.isnan(iou_per_class(cm4)[3])
    assert mean_iou(cm4) == pytest.approx(0.5)
    assert pixel_accuracy(np.zeros((2, 2))) == 0.0
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0, 5], 3)


def test_kitti_road_maxf_hand_case():
    prob = np.array([[0.9, 0.8], [0.3, 0.1]])
    gt = np.array([[1, 0], [1, 0]], bool)
    # t in (0.8, 0.9]: P=1,   R=1/2, F=2/3
    # t in (0.3, 0.8]: P=1/2, R=1/2, F=1/2
    # t in (0.1, 0.3]: P=2/3, R=1,   F=0.8   <- max
    # t <= 0.1:        P=1/2, R=1,   F=2/3
    r = kitti_road_maxf(prob, gt)
    assert r["MaxF"] == pytest.approx(0.8)
    assert r["PRE"] == pytest.approx(2 / 3) and r["REC"] == pytest.approx(1)
    assert 0.1 < r["threshold"] <= 0.3
    # 11-point AP: recall levels 0..0.5 -> max precision 1 (6 levels),
    # 0.6..1.0 -> 2/3 (5 levels)
    assert r["AP"] == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    # list input sums counts over images
    r2 = kitti_road_maxf([prob[:1], prob[1:]], [gt[:1], gt[1:]])
    assert r2["MaxF"] == pytest.approx(0.8)
    # valid mask drops the 0.8 negative -> perfect at t in (0.1, 0.3]
    valid = np.array([[1, 0], [1, 1]], bool)
    assert kitti_road_maxf(prob, gt, valid_mask=valid)["MaxF"] == \
        pytest.approx(1.0)
    assert kitti_road_maxf(prob, np.zeros_like(gt))["MaxF"] == 0.0


def test_format_table_and_write_json(tmp_path):
    text = format_table([["road", 0.5, 3], ["car", float("nan"), 12]],
                        ["class", "IoU", "n"])
    lines = text.splitlines()
    assert lines[0].split() == ["class", "IoU", "n"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["road", "0.5000", "3"]
    assert lines[3].split() == ["car", "n/a", "12"]
    assert len({len(line) for line in lines[1:]}) == 1  # aligned columns
    path = tmp_path / "sub" / "m.json"
    write_json({"a": np.float32(0.5), "b": np.arange(3), "c": float("nan"),
                "d": np.int64(4)}, path)
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1, 2],
                                            "c": None, "d": 4}
    assert os.listdir(path.parent) == ["m.json"]  # no temp file left
