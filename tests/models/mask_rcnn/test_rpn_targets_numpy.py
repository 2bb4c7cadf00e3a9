"""RPN targets in NumPy (the reference of RpnTargetLayer): Matterport's matching rules on
hand-made anchors, sampling, speed."""

import time

import numpy as np
import pytest

from kseg.models.mask_rcnn.config import MaskRCNNConfig
from kseg.models.mask_rcnn.rpn_targets_numpy import build_rpn_targets, match_anchors
from kseg.ops.anchors import config_anchors

STD = np.array([0.1, 0.1, 0.2, 0.2])


def make_config(**overrides):
    values = dict(NAME="t", NUM_CLASSES=3, RPN_TRAIN_ANCHORS_PER_IMAGE=64)
    values.update(overrides)
    return MaskRCNNConfig(**values)


def decode(anchors, deltas, std=STD):
    """Apply normalized (dy, dx, log dh, log dw) deltas to anchors (numpy reference)."""
    deltas = deltas * std
    h = anchors[:, 2] - anchors[:, 0]
    w = anchors[:, 3] - anchors[:, 1]
    cy = anchors[:, 0] + 0.5 * h + deltas[:, 0] * h
    cx = anchors[:, 1] + 0.5 * w + deltas[:, 1] * w
    h = h * np.exp(deltas[:, 2])
    w = w * np.exp(deltas[:, 3])
    return np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=1)


# Hand-made anchors; comments give the IoU with the relevant gt box.
ANCHORS = np.array([
    [0, 0, 10, 10],      # 0: gt0 IoU 1.0 -> positive
    [0, 0, 10, 9],       # 1: gt0 IoU 0.9 -> positive
    [0, 5, 10, 15],      # 2: gt0 IoU 1/3 -> neutral
    [20, 20, 30, 30],    # 3: nothing -> negative
    [40, 40, 50, 50],    # 4: gt1 IoU 0.25, gt1's best anchor -> positive
    [50, 50, 60, 55],    # 5: gt1 IoU 0.125 -> negative
    [85, 85, 95, 95],    # 6: inside crowd -> neutral
    [99, 99, 109, 109],  # 7: crowd IoU 1/499 > 0.001 -> neutral
    [100, 100, 110, 110],  # 8: touches crowd only -> negative
], dtype=np.float64)
GT_BOXES = np.array([[0, 0, 10, 10], [40, 40, 60, 60], [80, 80, 100, 100]], np.int32)
GT_CLASS_IDS = np.array([1, 2, -1], np.int32)


def test_hand_made_positive_negative_sets():
    rpn_match, rpn_bbox = build_rpn_targets(ANCHORS, GT_CLASS_IDS, GT_BOXES, make_config(),
                                            np.random.default_rng(0))
    assert rpn_match.dtype == np.int32 and rpn_match.shape == (9,)
    assert np.flatnonzero(rpn_match == 1).tolist() == [0, 1, 4]
    assert np.flatnonzero(rpn_match == -1).tolist() == [3, 5, 8]
    assert np.flatnonzero(rpn_match == 0).tolist() == [2, 6, 7]
    assert rpn_bbox.shape == (64, 4) and rpn_bbox.dtype == np.float32
    decoded = decode(ANCHORS[[0, 1, 4]], rpn_bbox[:3].astype(np.float64))
    np.testing.assert_allclose(decoded, GT_BOXES[[0, 0, 1]], atol=1e-4)
    assert not rpn_bbox[3:].any()
    # Anchor 1 needs a real refinement: 10x9 -> 10x10, dx = 0.5 / 9 / 0.1.
    np.testing.assert_allclose(rpn_bbox[1], [0, 0.5 / 9 / 0.1, 0, np.log(10 / 9) / 0.2],
                               rtol=1e-5)


def test_without_crowd_those_anchors_are_negative():
    rpn_match, _ = build_rpn_targets(ANCHORS, GT_CLASS_IDS[:2], GT_BOXES[:2], make_config())
    assert np.flatnonzero(rpn_match == -1).tolist() == [3, 5, 6, 7, 8]


def test_best_anchor_rule_ties_and_unreachable_gt():
    anchors = np.array([[0, 0, 10, 10], [0, 10, 10, 20], [50, 50, 60, 60]], np.float64)
    # gt straddles anchors 0 and 1 equally (IoU 1/3 each): both become positive.
    gt = np.array([[0, 5, 10, 15], [200, 200, 210, 210]])  # second overlaps nothing
    rpn_match, rpn_bbox = build_rpn_targets(anchors, [1, 1], gt, make_config())
    assert rpn_match.tolist() == [1, 1, -1]
    np.testing.assert_allclose(decode(anchors[:2], rpn_bbox[:2].astype(np.float64)),
                               gt[[0, 0]], atol=1e-4)


def test_padding_and_zero_instances():
    config = make_config(RPN_TRAIN_ANCHORS_PER_IMAGE=4)
    for ids, boxes in [(np.zeros([0], np.int32), np.zeros([0, 4])),
                       (np.zeros([3], np.int32), np.zeros([3, 4]))]:
        rpn_match, rpn_bbox = build_rpn_targets(ANCHORS, ids, boxes, config,
                                                np.random.default_rng(1))
        assert rpn_match.shape == (9,) and (rpn_match == 1).sum() == 0
        assert (rpn_match == -1).sum() == 4
        assert rpn_bbox.shape == (4, 4) and not rpn_bbox.any()


def matterport_match(anchors, gt_class_ids, gt_boxes):
    """Matterport's build_rpn_targets before subsampling, with an [A, N] IoU matrix."""
    def overlaps(a, b):
        y1 = np.maximum(a[:, None, 0], b[None, :, 0])
        x1 = np.maximum(a[:, None, 1], b[None, :, 1])
        y2 = np.minimum(a[:, None, 2], b[None, :, 2])
        x2 = np.minimum(a[:, None, 3], b[None, :, 3])
        inter = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        return inter / (area_a[:, None] + area_b[None, :] - inter)

    match = np.zeros(len(anchors), np.int32)
    crowd = gt_class_ids < 0
    no_crowd = np.ones(len(anchors), bool)
    if crowd.any():
        no_crowd = overlaps(anchors, gt_boxes[crowd]).max(axis=1) < 0.001
    iou = overlaps(anchors, gt_boxes[~crowd])
    iou_max = iou.max(axis=1)
    match[(iou_max < 0.3) & no_crowd] = -1
    match[np.argwhere(iou == iou.max(axis=0))[:, 0]] = 1
    match[iou_max >= 0.7] = 1
    return match, np.flatnonzero(~crowd)[iou.argmax(axis=1)]


def test_matches_matterport_reference_on_real_anchors():
    config = make_config(IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256)
    anchors = config_anchors(config)
    rng = np.random.default_rng(3)
    corner = rng.uniform(0, 200, (12, 2))
    boxes = np.round(np.concatenate([corner, corner + rng.uniform(8, 120, (12, 2))], 1))
    class_ids = np.array([1, 2, 1, -1, 1, 2, 2, 1, 1, 2, 1, 2])
    match, pos_gt = match_anchors(anchors, class_ids, boxes)
    expected, argmax = matterport_match(anchors, class_ids, boxes)
    np.testing.assert_array_equal(match, expected)
    np.testing.assert_array_equal(pos_gt, argmax[expected == 1])


def test_subsampling_counts_and_determinism():
    config = make_config(IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256, RPN_TRAIN_ANCHORS_PER_IMAGE=32)
    anchors = config_anchors(config)
    # 32 x 32 boxes on the stride-4 grid: each matches many shifted anchors (IoU >= 0.7).
    boxes = np.array([[16, 16, 48, 48], [100, 60, 132, 92], [150, 150, 182, 182],
                      [60, 200, 92, 232], [200, 20, 232, 52]])
    ids = np.array([1, 2, 1, 2, 2])
    full, _ = match_anchors(anchors, ids, boxes)
    assert (full == 1).sum() > 16  # enough positives to need subsampling
    a = build_rpn_targets(anchors, ids, boxes, config, np.random.default_rng(5))
    b = build_rpn_targets(anchors, ids, boxes, config, np.random.default_rng(5))
    c = build_rpn_targets(anchors, ids, boxes, config, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    rpn_match, rpn_bbox = a
    assert (rpn_match == 1).sum() == 16 and (rpn_match != 0).sum() == 32
    assert np.all(full[rpn_match == 1] == 1) and np.all(full[rpn_match == -1] == -1)
    # Every sampled positive decodes to one of the gt boxes.
    decoded = decode(anchors[rpn_match == 1], rpn_bbox[:16].astype(np.float64))
    err = np.abs(decoded[:, None, :] - boxes[None]).max(axis=2).min(axis=1)
    assert err.max() < 1e-3


def test_fast_on_a_1024_image():
    config = make_config()  # 1024 x 1024: 261888 anchors
    anchors = config_anchors(config)
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 900, (100, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(10, 120, (100, 2))], 1)
    start = time.perf_counter()
    rpn_match, _ = build_rpn_targets(anchors, np.ones(100, np.int32), boxes, config, rng)
    elapsed = time.perf_counter() - start
    assert len(anchors) == 261888 and (rpn_match != 0).sum() == 64
    assert elapsed < 2.0, f"build_rpn_targets took {elapsed:.2f} s for 100 boxes"


@pytest.mark.parametrize("n", [0, 1])
def test_rng_none_works(n):
    boxes = GT_BOXES[:n]
    rpn_match, _ = build_rpn_targets(ANCHORS, GT_CLASS_IDS[:n], boxes, make_config())
    assert rpn_match.shape == (9,)
